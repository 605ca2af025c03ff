// Seeded fuzzing of the native hook's Unix socket ("JCH1" | uint32 BE length | "K=V\0"...)
// with the real daemon and a real Kafka broker, by a client that breaks the protocol on
// purpose: bad magic, lying lengths, messages over MaxMessageBytes, truncated messages,
// bytes after the message, slow senders; and environments that are empty, without a
// context, mistyped, binary or huge. A valid jobcomp/script environment of a known job id
// every 50th case.
//
// What must hold: the daemon never dies; every connection gets a well-formed answer
// (A/Q/D/I with a message) or, for a sender that stops mid-message, is closed after
// [hook] Timeout; every record answered A reaches Kafka exactly once and unchanged; every
// malformed message is quarantined exactly once; memory stays bounded.

import { connect } from 'node:net';
import { useBroker } from '../helpers/broker-suite';
import type { DaemonProcess } from '../helpers/daemon';
import { Rng } from '../helpers/random';
import {
  commonFailures,
  comparePublished,
  envBlock,
  frame,
  fuzzCases,
  fuzzSeed,
  missingKnownRecords,
  pool,
  predictHookEnv,
  preview,
  readPublished,
  settledStatus,
  sleep,
  tally,
  type Prediction,
  reportFuzzRun,
  startFuzzRun,
  stopFuzzRun,
} from './fuzz-kit';
import { generateEnv, HEAVY_ENV_CASES, jobcompEnv, KNOWN_ID_BASE } from './hook-inputs';

jest.setTimeout(240_000);

const SEED = fuzzSeed('fuzz-socket', 0x5eed0002);
const CASES = fuzzCases(10_000);
const CONCURRENCY = 32;
const CLUSTER = 'fuzzsock';
const PARAMS = 'enable_job_start,poll_interval=0.05';
const MAX_MESSAGE = 1024 * 1024;
const HOOK_TIMEOUT_MS = 1000;
const HOOK_CONF = `Timeout=${HOOK_TIMEOUT_MS / 1000}\nMaxMessageBytes=${MAX_MESSAGE}`;
const KAFKA_MAX = 1_000_000;
const RSS_LIMIT_KB = 400 * 1024;
const ENABLE_JOB_START = true;

const suite = useBroker({ autoCreateTopics: true });

// ---------------------------------------------------------------------------
// Cases: content (an environment) and how it is framed and sent

type Finish = 'wait' | 'half-close' | 'close';

interface Plan {
  writes: Buffer[];
  gapMs: number;
  finish: Finish;
}

type Expect =
  /** answered according to the environment */
  | { type: 'content' }
  /** extra bytes written a little later: the content's answer, or Q for the extra bytes */
  | { type: 'content-or-extra' }
  /** a framing error, answered Q */
  | { type: 'Q' }
  /** a header announcing more than MaxMessageBytes: answered E (not committed), so the hook spools it whole */
  | { type: 'E' }
  /** a sender that stops mid-message: closed after [hook] Timeout, nothing kept */
  | { type: 'timeout' }
  /** we close without reading the answer; what the daemon must keep */
  | { type: 'client-closed'; quarantines: 0 | 1 }
  /** we connect and half-close without a byte: the daemon closes, nothing kept */
  | { type: 'nothing' };

interface SockCase {
  index: number;
  kind: string;
  framing: string;
  env: Buffer;
  plan: Plan;
  expect: Expect;
  knownJobId?: number;
}

const OVER_MAX_REAL = new Set([1717, 4747, 7171]);

function generate(index: number): SockCase {
  const rng = Rng.forCase(SEED, index);
  const content = generateEnv(rng, index);
  const env = content.env;
  const msg = frame(env);
  const base = { index, kind: content.kind, env, knownJobId: content.knownJobId };
  const one = (writes: Buffer[], finish: Finish, framing: string, expect: Expect, gapMs = 0): SockCase => ({ ...base, framing, plan: { writes, gapMs, finish }, expect });

  if (content.knownJobId !== undefined || HEAVY_ENV_CASES[index] !== undefined) return one([msg], 'wait', 'ok', { type: 'content' });
  if (OVER_MAX_REAL.has(index)) {
    const big = envBlock(jobcompEnv(rng, 1).concat([['PAD', 'p'.repeat(MAX_MESSAGE + rng.int(200_000))]]));
    return { ...one([frame(big)], 'wait', 'over-max-real', { type: 'E' }), env: big };
  }
  const framing = rng.weighted<string>([
    [60, 'ok'],
    [6, 'ok-split'],
    [4, 'bad-magic'],
    [3, 'over-max-claim'],
    [4, 'short-claim'],
    [4, 'long-claim-half-close'],
    [0.5, 'long-claim-wait'],
    [4, 'truncated-close'],
    [3, 'truncated-half-close'],
    [0.3, 'partial-header-wait'],
    [1, 'zero-bytes-close'],
    [1, 'zero-bytes-half-close'],
    [3, 'extra-same-write'],
    [2, 'extra-late-write'],
    [3, 'garbage-stream'],
  ]);
  const withLength = (length: number): Buffer => frame(env, length);
  switch (framing) {
    case 'ok-split': {
      const cuts = Array.from({ length: rng.between(1, 4) }, () => rng.int(msg.length)).sort((a, b) => a - b);
      const parts: Buffer[] = [];
      let from = 0;
      for (const c of [...cuts, msg.length]) {
        parts.push(msg.subarray(from, c));
        from = c;
      }
      return one(parts.filter((p) => p.length > 0), 'wait', framing, { type: 'content' }, rng.between(1, 15));
    }
    case 'bad-magic': {
      let magic = rng.pick([Buffer.from('jch1'), Buffer.from('JCH2'), Buffer.from('JCH\0'), Buffer.alloc(4), Buffer.from('POST'), Buffer.from('1HCJ'), rng.bytes(4)]);
      if (magic.equals(Buffer.from('JCH1'))) magic = Buffer.from('JCH0');
      return one([frame(env, env.length, magic)], rng.chance(0.5) ? 'wait' : 'half-close', framing, { type: 'Q' });
    }
    case 'over-max-claim':
      return one([withLength(rng.between(MAX_MESSAGE + 1, 0xffffffff))], rng.chance(0.5) ? 'wait' : 'half-close', framing, { type: 'E' });
    case 'short-claim':
      if (env.length === 0) return one([msg], 'wait', 'ok', { type: 'content' });
      return one([withLength(rng.int(env.length))], 'wait', framing, { type: 'Q' });
    case 'long-claim-half-close':
      return one([withLength(env.length + rng.between(1, 1000))], 'half-close', framing, { type: 'Q' });
    case 'long-claim-wait':
      return one([withLength(env.length + rng.between(1, 1000))], 'wait', framing, { type: 'timeout' });
    case 'truncated-close':
      return one([msg.subarray(0, rng.between(1, msg.length - 1))], 'close', framing, { type: 'client-closed', quarantines: 1 });
    case 'truncated-half-close':
      return one([msg.subarray(0, rng.between(1, msg.length - 1))], 'half-close', framing, { type: 'Q' });
    case 'partial-header-wait':
      return one([msg.subarray(0, rng.between(1, 7))], 'wait', framing, { type: 'timeout' });
    case 'zero-bytes-close':
      return one([], 'close', framing, { type: 'client-closed', quarantines: 0 });
    case 'zero-bytes-half-close':
      return one([], 'half-close', framing, { type: 'nothing' });
    case 'extra-same-write':
      return one([Buffer.concat([msg, rng.bytes(rng.between(1, 100))])], 'wait', framing, { type: 'Q' });
    case 'extra-late-write':
      return one([msg, rng.bytes(rng.between(1, 100))], 'wait', framing, { type: 'content-or-extra' }, 50);
    case 'garbage-stream': {
      let g = rng.bytes(rng.between(1, 3000));
      if (g.subarray(0, 4).equals(Buffer.from('JCH1'))) g = Buffer.concat([Buffer.from('X'), g]);
      return one([g], 'half-close', framing, { type: 'Q' });
    }
    default:
      return one([msg], 'wait', 'ok', { type: 'content' });
  }
}

// ---------------------------------------------------------------------------
// The client

interface Exchange {
  received: Buffer;
  ms: number;
  error?: string;
  clientTimeout?: boolean;
}

function exchange(path: string, plan: Plan, timeoutMs = 5000): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let done = false;
    const sock = connect(path);
    const finish = (extra: Partial<Exchange> = {}): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ received: Buffer.concat(chunks), ms: Date.now() - started, error, ...extra });
    };
    const timer = setTimeout(() => {
      sock.destroy();
      finish({ clientTimeout: true });
    }, timeoutMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (err) => (error ??= err.message));
    sock.on('close', () => finish());
    sock.on('connect', () => {
      void (async () => {
        for (let i = 0; i < plan.writes.length; i++) {
          if (i > 0 && plan.gapMs > 0) {
            await sleep(plan.gapMs);
            // Timers run before the poll phase: read what came meanwhile first, or a write
            // refused because the daemon answered and closed would destroy the socket with
            // the answer unread.
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
          if (sock.destroyed || sock.readableEnded) return;
          sock.write(plan.writes[i] as Buffer);
        }
        if (plan.finish === 'half-close') sock.end();
        if (plan.finish === 'close') {
          sock.end();
          sock.once('finish', () => sock.destroy());
        }
      })();
    });
  });
}

interface Answer {
  status: string;
  message: string;
}

/** status byte | uint32 BE length | message, and nothing else. */
function parseAnswer(b: Buffer): Answer | string {
  if (b.length < 5) return `${b.length} bytes, not an answer`;
  const length = b.readUInt32BE(1);
  const status = String.fromCharCode(b[0] as number);
  if (!'AQDIE'.includes(status)) return `unknown status byte 0x${(b[0] as number).toString(16)}`;
  if (b.length !== 5 + length) return `length says ${length}, ${b.length - 5} bytes follow`;
  if (length === 0) return `status ${status} without a message`;
  return { status, message: b.subarray(5).toString('utf8') };
}

// ---------------------------------------------------------------------------
// Judging

interface Result {
  c: SockCase;
  prediction: Prediction;
  answer?: Answer;
  /** quarantines this case must have caused */
  quarantines: number;
  problem?: string;
  /** sent again after the daemon died with it in flight: the first attempt may have been committed */
  rerun?: boolean;
}

function judge(c: SockCase, prediction: Prediction, x: Exchange): Result {
  const r: Result = { c, prediction, quarantines: 0 };
  const fail = (problem: string): Result => ({ ...r, problem });
  if (x.clientTimeout) return fail(`neither answered nor closed within 5 s (received ${preview(x.received)})`);
  const e = c.expect;
  if (e.type === 'client-closed') return { ...r, quarantines: e.quarantines };
  if (e.type === 'timeout' || e.type === 'nothing') {
    if (x.received.length > 0) return fail(`expected the connection to be closed without an answer, got ${preview(x.received)}`);
    if (e.type === 'timeout' && (x.ms < HOOK_TIMEOUT_MS * 0.9 || x.ms > HOOK_TIMEOUT_MS + 2500)) return fail(`closed after ${x.ms} ms, expected about [hook] Timeout = ${HOOK_TIMEOUT_MS} ms`);
    return r;
  }
  const a = parseAnswer(x.received);
  if (typeof a === 'string') return fail(`no well-formed answer: ${a}${x.error ? ` (${x.error})` : ''}`);
  r.answer = a;
  if (a.status === 'Q') r.quarantines = 1;
  if (e.type === 'E') return a.status === 'E' ? r : fail(`expected E for a message over MaxMessageBytes, got ${a.status}: ${a.message}`);
  if (a.status === 'E') return fail(`answered E (not committed): ${a.message}`);
  if (e.type === 'Q') return a.status === 'Q' ? r : fail(`expected Q for a malformed message, got ${a.status}: ${a.message}`);
  if (e.type === 'content-or-extra' && a.status === 'Q' && /bytes after the message/.test(a.message)) return r;
  switch (prediction.kind) {
    case 'stored':
      return a.status === 'A' || a.status === 'D' ? r : fail(`expected A or D, got ${a.status}: ${a.message}`);
    case 'quarantined':
      return a.status === 'Q' && a.message === prediction.reason ? r : fail(`expected Q "${prediction.reason}", got ${a.status}: ${a.message}`);
    case 'ignored':
      return a.status === 'I' ? r : fail(`expected I, got ${a.status}: ${a.message}`);
    case 'internal-error':
      return a.status === 'Q' ? r : fail(`expected Q (the mapper throws ${prediction.error}), got ${a.status}: ${a.message}`);
  }
}

function describeCase(c: SockCase): string {
  return `case #${c.index} (${c.kind}, framing ${c.framing}, finish ${c.plan.finish}) sends ${c.plan.writes.map((w) => preview(w)).join(' | then | ') || 'nothing'}`;
}

it(`survives ${CASES} hostile hook connections and keeps every record it acknowledged`, async () => {
  const startDaemon = (o: Partial<Parameters<typeof suite.daemon>[0]> = {}): Promise<DaemonProcess> => suite.daemon({ clusterName: CLUSTER, params: PARAMS, hookConf: HOOK_CONF, ...o });
  const run = await startFuzzRun(startDaemon);
  const { started, rss, sup } = run;

  const results: Result[] = [];
  const lost: SockCase[] = [];
  const answerExpected = (c: SockCase): boolean => c.expect.type !== 'client-closed' && c.expect.type !== 'timeout' && c.expect.type !== 'nothing';
  const runOne = async (c: SockCase, rerun = false): Promise<void> => {
    const prediction = predictHookEnv(c.env, ENABLE_JOB_START);
    const out = await sup.run(c.index, (d) => exchange(d.hookSocket, c.plan), (x) => (answerExpected(c) && x.received.length === 0) || (c.expect.type === 'timeout' && x.ms < HOOK_TIMEOUT_MS * 0.9));
    if (out.died) lost.push(c);
    else if (out.value) results.push({ ...judge(c, prediction, out.value), rerun });
    else results.push({ c, prediction, quarantines: 0, problem: `client error: ${out.error ?? '?'}`, rerun });
  };
  await pool(CASES, CONCURRENCY, (index) => runOne(generate(index)));
  const fuzzMs = Date.now() - started;

  // Cases in flight when the daemon died: again, one at a time, to find the one that kills it.
  const culprits: { c: SockCase; stderr: string }[] = [];
  for (const c of lost.splice(0).sort((a, b) => a.index - b.index)) {
    const before = sup.crashes.length;
    await runOne(c, true);
    if (sup.crashes.length > before || lost.includes(c)) culprits.push({ c, stderr: sup.crashes[sup.crashes.length - 1]?.stderr ?? '' });
  }
  const d = await sup.ensureAlive();

  // It still answers: a valid record of a new known id.
  const probeId = KNOWN_ID_BASE + 99_999;
  const probeEnv = envBlock(jobcompEnv(new Rng(SEED), probeId));
  const probe = parseAnswer((await exchange(d.hookSocket, { writes: [frame(probeEnv)], gapMs: 0, finish: 'wait' })).received);
  expect(probe).toMatchObject({ status: 'A' });

  const problems = results.filter((r) => r.problem !== undefined).map((r) => `${describeCase(r.c)}: ${r.problem ?? ''}`);
  const expectedPayloads = new Map<string, number>();
  const created = new Map<string, number>();
  let refusedByKafka = 0;
  let quarantines = 0;
  let rerunQuarantines = 0;
  const answeredA = new Set(results.filter((r) => r.answer?.status === 'A' && r.prediction.kind === 'stored').map((r) => (r.prediction as { dedupKey: string }).dedupKey));
  /** answered A, or (sent again after a crash) answered D for a record no other case got A for */
  const committed = (r: Result): boolean =>
    r.prediction.kind === 'stored' && r.c.expect.type !== 'Q' && (r.answer?.status === 'A' || (r.rerun === true && r.answer?.status === 'D' && !answeredA.has(r.prediction.dedupKey)));
  for (const r of results) {
    quarantines += r.quarantines;
    if (r.rerun) rerunQuarantines += r.quarantines;
    if (r.prediction.kind !== 'stored' || !committed(r)) continue;
    if (r.answer?.status === 'D' && created.has(r.prediction.dedupKey)) continue;
    created.set(r.prediction.dedupKey, (created.get(r.prediction.dedupKey) ?? 0) + 1);
    if (r.prediction.payload.length > KAFKA_MAX) refusedByKafka += 1;
    else expectedPayloads.set(r.prediction.dedupKey, (expectedPayloads.get(r.prediction.dedupKey) ?? 0) + 1);
  }
  const probePrediction = predictHookEnv(probeEnv, ENABLE_JOB_START);
  if (probePrediction.kind === 'stored') expectedPayloads.set(probePrediction.dedupKey, 1);
  for (const r of results) {
    if (r.answer?.status === 'D' && !r.rerun && r.prediction.kind === 'stored' && !created.has(r.prediction.dedupKey)) problems.push(`${describeCase(r.c)}: answered D, but no identical record was answered A`);
  }
  for (const [key, n] of created) if (n > 1) problems.push(`record ${key.slice(0, 12)} answered A ${n} times`);
  const expectedPublished = [...expectedPayloads.values()].reduce((a, b) => a + b, 0);
  const expectedQuarantined = quarantines + refusedByKafka;

  const status = await settledStatus(d.configFile, expectedQuarantined, 30_000);
  const expectedByTopic = (event: 1 | 2): number => results.filter((r) => r.prediction.kind === 'stored' && committed(r) && r.prediction.payload.length <= KAFKA_MAX && r.prediction.event === event).length + (event === 1 ? 1 : 0);
  const published = await readPublished(suite.broker().bootstrapServers, [
    { topic: CLUSTER, event: 1, want: expectedByTopic(1) },
    { topic: `${CLUSTER}-job-start`, event: 2, want: expectedByTopic(2) },
  ]);
  const total = published.total;
  problems.push(...published.problems, ...comparePublished(expectedPayloads, published.seen, sup.crashes.length > 0));
  const missingKnown = missingKnownRecords(published.jobIds, CASES, KNOWN_ID_BASE, probeId);

  const alive = stopFuzzRun(run, d);
  const quarantinedByFraming = tally(results.filter((r) => r.quarantines > 0).map((r) => (r.c.expect.type === 'content' || r.c.expect.type === 'content-or-extra' ? 'content' : r.c.framing)));
  const report = {
    seed: SEED,
    cases: CASES,
    fuzzSeconds: fuzzMs / 1000,
    totalSeconds: (Date.now() - started) / 1000,
    kinds: tally(results.map((r) => r.c.kind)),
    framings: tally(results.map((r) => r.c.framing)),
    answers: tally(results.map((r) => r.answer?.status ?? `none (${r.c.expect.type})`)),
    special: Object.fromEntries(results.filter((r) => HEAVY_ENV_CASES[r.c.index] !== undefined || OVER_MAX_REAL.has(r.c.index)).map((r) => [`#${r.c.index} ${r.c.kind}`, r.answer ? `${r.answer.status} ${r.answer.message.slice(0, 120)}` : (r.problem ?? '-')])),
    crashes: sup.crashes.length,
    culprits: culprits.map(({ c }) => `#${c.index} ${c.kind}`),
    quarantined: { status: status.quarantined, expected: expectedQuarantined, byFraming: quarantinedByFraming, refusedByKafka },
    published: { total, expected: expectedPublished },
    backlog: status.backlog,
    rss: rss.report,
    problems: problems.length,
  };

  // A case we closed without reading the answer, in flight when the daemon died, may not have been kept.
  const inFlightAtCrash = new Set(sup.crashes.flatMap((x) => x.inFlight));
  const lostUnanswered = results.filter((r) => r.c.expect.type === 'client-closed' && r.quarantines > 0 && inFlightAtCrash.has(r.c.index)).length;
  // Every failure in one list, most important first.
  const failures = [
    ...commonFailures({ culprits: culprits.map(({ c, stderr }) => ({ description: describeCase(c), stderr })), sup, alive, problems, missingKnown, backlog: status.backlog, rss, rssLimitKb: RSS_LIMIT_KB }),
    ...(status.quarantined >= expectedQuarantined - lostUnanswered && status.quarantined <= expectedQuarantined + (sup.crashes.length > 0 ? rerunQuarantines : 0)
      ? []
      : [`status says ${status.quarantined} quarantined, expected ${expectedQuarantined}; cases that must have been quarantined, by framing: ${JSON.stringify(quarantinedByFraming)}`]),
    ...(total === expectedPublished || (sup.crashes.length > 0 && total > expectedPublished) ? [] : [`${total} messages published, expected ${expectedPublished}`]),
  ];
  reportFuzzRun('fuzz-socket', report, failures);
});
