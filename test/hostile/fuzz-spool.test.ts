// Seeded fuzzing of the spool directory with the real daemon and a real Kafka broker: files
// dropped the way the native hook drops them (a temporary ".tmp.*" file renamed to
// "<kind>.<jobid>.<sec>.<nsec>.<pid>.jch"), with valid messages, broken framing (bad magic,
// lying lengths, empty, truncated, garbage, over MaxMessageBytes, huge sparse files) and the
// same hostile environments as the socket; a valid jobcomp/script environment of a known
// job id every 50th file. The daemon imports them while they arrive.
//
// What must hold: the daemon never dies; every file is removed once processed; every valid
// record reaches Kafka exactly once and unchanged; every broken file is kept in quarantine
// exactly once, whole, except files larger than a message can be, which are moved whole to
// rejected/; memory stays bounded (a spool file is not read whole into memory).

import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
  predictHookEnv,
  preview,
  readPublished,
  settledStatus,
  sleep,
  tally,
  type Prediction,
  isAlive,
  reportFuzzRun,
  startFuzzRun,
  stopFuzzRun,
} from './fuzz-kit';
import { generateEnv, HEAVY_ENV_CASES, jobcompEnv, KNOWN_ID_BASE } from './hook-inputs';

jest.setTimeout(240_000);

const SEED = fuzzSeed('fuzz-spool', 0x5eed0003);
const CASES = fuzzCases(10_000);
const CLUSTER = 'fuzzspool';
const PARAMS = 'enable_job_start,poll_interval=0.05';
const MAX_MESSAGE = 1024 * 1024;
const HOOK_CONF = `MaxMessageBytes=${MAX_MESSAGE}\nSpoolScanInterval=1`;
const KAFKA_MAX = 1_000_000;
const RSS_LIMIT_KB = 400 * 1024;
const ENABLE_JOB_START = true;
const BATCH = 250;

const suite = useBroker({ autoCreateTopics: true });

interface SpoolCase {
  index: number;
  kind: string;
  framing: string;
  name: string;
  /** the file's content; for sparse files, only its size */
  content: Buffer | { sparse: number };
  env: Buffer;
  knownJobId?: number;
}

const OVER_MAX_REAL = new Set([1717, 4747, 7171]);
/** Sparse files: no disk, but a reader that reads them whole needs that much memory. */
const SPARSE: Record<number, number> = { 9191: 600 * 1024 * 1024, 9393: 3 * 1024 * 1024 * 1024 };

function spoolName(index: number, kind: string, env: Buffer, rng: Rng): string {
  const text = env.toString('latin1');
  const id = /(?:^|\0)(?:JOBID|SLURM_JOB_ID)=([^\0]*)/.exec(text)?.[1];
  const safeId = id !== undefined && id !== '' && id.length < 100 && !/[/\0]/.test(id) ? id : 'unknown';
  const k = kind.startsWith('prolog') ? 'prolog' : kind === 'epilog' ? 'epilog' : kind === 'no-context' || kind === 'empty' || kind === 'binary-noise' ? 'unknown' : 'jobcomp';
  return `${k}.${safeId}.${1795319410 + Math.floor(index / 100)}.${String(index).padStart(9, '0')}.${rng.between(100, 99999)}.jch`;
}

function generate(index: number): SpoolCase {
  const rng = Rng.forCase(SEED, index);
  const content = generateEnv(rng, index);
  const env = content.env;
  const base = { index, kind: content.kind, env, knownJobId: content.knownJobId, name: spoolName(index, content.kind, env, rng) };
  const msg = frame(env);
  if (content.knownJobId !== undefined || HEAVY_ENV_CASES[index] !== undefined) return { ...base, framing: 'ok', content: msg };
  if (OVER_MAX_REAL.has(index)) {
    const big = envBlock(jobcompEnv(rng, 1).concat([['PAD', 'p'.repeat(MAX_MESSAGE + rng.int(200_000))]]));
    return { ...base, env: big, framing: 'over-max-real', content: frame(big) };
  }
  const sparse = SPARSE[index];
  if (sparse !== undefined) return { ...base, framing: `sparse-${Math.round(sparse / 2 ** 20)}MiB`, content: { sparse } };
  const framing = rng.weighted<string>([
    [70, 'ok'],
    [4, 'bad-magic'],
    [3, 'over-max-claim'],
    [4, 'short-claim'],
    [4, 'long-claim'],
    [2, 'empty-file'],
    [2, 'partial-header'],
    [3, 'garbage'],
  ]);
  switch (framing) {
    case 'bad-magic': {
      let magic = rng.pick([Buffer.from('jch1'), Buffer.from('JCH2'), Buffer.alloc(4), rng.bytes(4)]);
      if (magic.equals(Buffer.from('JCH1'))) magic = Buffer.from('JCH0');
      return { ...base, framing, content: frame(env, env.length, magic) };
    }
    case 'over-max-claim':
      return { ...base, framing, content: frame(env, rng.between(MAX_MESSAGE + 1, 0xffffffff)) };
    case 'short-claim':
      return env.length === 0 ? { ...base, framing: 'ok', content: msg } : { ...base, framing, content: frame(env, rng.int(env.length)) };
    case 'long-claim':
      return { ...base, framing, content: frame(env, env.length + rng.between(1, 1000)) };
    case 'empty-file':
      return { ...base, framing, content: Buffer.alloc(0) };
    case 'partial-header':
      return { ...base, framing, content: msg.subarray(0, rng.between(1, 7)) };
    case 'garbage': {
      let g = rng.bytes(rng.between(1, 3000));
      if (g.subarray(0, 4).equals(Buffer.from('JCH1'))) g = Buffer.concat([Buffer.from('X'), g]);
      return { ...base, framing, content: g };
    }
    default:
      return { ...base, framing: 'ok', content: msg };
  }
}

/** Files larger than header + MaxMessageBytes: moved whole to rejected/, not quarantined. */
function isOversized(c: SpoolCase): boolean {
  return c.framing === 'over-max-real' || c.framing.startsWith('sparse-');
}

/** What the daemon must do with the file: quarantine it, or the record it holds. */
function expectation(c: SpoolCase): { quarantines: number; prediction: Prediction | undefined } {
  if (isOversized(c)) return { quarantines: 0, prediction: undefined };
  if (c.framing !== 'ok') return { quarantines: 1, prediction: undefined };
  const prediction = predictHookEnv(c.env, ENABLE_JOB_START);
  const q = prediction.kind === 'quarantined' || prediction.kind === 'internal-error' || (prediction.kind === 'stored' && prediction.payload.length > KAFKA_MAX) ? 1 : 0;
  return { quarantines: q, prediction };
}

/** Drop a file the way the hook does: a temporary file, then a rename. */
function drop(dir: string, c: SpoolCase): void {
  const tmp = join(dir, `.tmp.${c.name}`);
  if (Buffer.isBuffer(c.content)) writeFileSync(tmp, c.content);
  else {
    const fd = openSync(tmp, 'w');
    ftruncateSync(fd, c.content.sparse);
    closeSync(fd);
  }
  renameSync(tmp, join(dir, c.name));
}

function spoolFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.jch')) : [];
}

function describeCase(c: SpoolCase): string {
  return `file #${c.index} ${c.name} (${c.kind}, framing ${c.framing}): ${Buffer.isBuffer(c.content) ? preview(c.content) : `sparse, ${c.content.sparse} bytes of zeros`}`;
}

it(`survives ${CASES} hostile spool files and keeps every record they hold`, async () => {
  const startDaemon = (o: Partial<Parameters<typeof suite.daemon>[0]> = {}): Promise<DaemonProcess> => suite.daemon({ clusterName: CLUSTER, params: PARAMS, hookConf: HOOK_CONF, ...o });
  const run = await startFuzzRun(startDaemon, 50);
  const { started, first, rss, sup } = run;
  const spool = first.spoolDir;
  const holding = join(first.dir, 'holding');
  mkdirSync(holding, { recursive: true });

  const cases = new Map<string, SpoolCase>();
  const problems: string[] = [];
  const culprits: { c: SpoolCase; stderr: string }[] = [];

  /** After a crash: take every waiting file out, restart, and put them back one by one. */
  const isolate = async (): Promise<void> => {
    const waiting = spoolFiles(spool).sort();
    for (const n of waiting) renameSync(join(spool, n), join(holding, n));
    await sup.ensureAlive();
    for (const n of waiting) {
      const before = sup.crashes.length;
      renameSync(join(holding, n), join(spool, n));
      const deadline = Date.now() + 10_000;
      while (existsSync(join(spool, n)) && isAlive(sup.daemon) && Date.now() < deadline) await sleep(10);
      if (!isAlive(sup.daemon)) {
        await sup.daemon.exited;
        await sleep(0);
        const c = cases.get(n) as SpoolCase;
        culprits.push({ c, stderr: sup.crashes[sup.crashes.length - 1]?.stderr ?? '' });
        renameSync(join(spool, n), join(holding, `culprit.${n}`));
        if (sup.crashes.length === before) await sleep(100);
        await sup.ensureAlive();
      }
    }
  };

  /** Wait until at most `left` files wait; false when nothing moved for `stallMs`. */
  const drain = async (left: number, stallMs: number): Promise<boolean> => {
    let count = spoolFiles(spool).length;
    let moved = Date.now();
    while (count > left) {
      if (!isAlive(sup.daemon)) {
        await sup.daemon.exited;
        await isolate();
        moved = Date.now();
      }
      await sleep(20);
      const now = spoolFiles(spool).length;
      if (now < count) moved = Date.now();
      count = now;
      if (Date.now() - moved > stallMs) return false;
    }
    return true;
  };

  for (let from = 0; from < CASES; from += BATCH) {
    for (let i = from; i < Math.min(CASES, from + BATCH); i++) {
      const c = generate(i);
      cases.set(c.name, c);
      drop(spool, c);
    }
    if (!(await drain(BATCH / 2, 15_000))) problems.push(`the import stalled with ${spoolFiles(spool).length} files waiting: ${spoolFiles(spool).slice(0, 5).join(', ')}`);
  }
  await drain(0, 10_000);
  const fuzzMs = Date.now() - started;
  const left = spoolFiles(spool);
  for (const n of left) {
    const c = cases.get(n);
    problems.push(`never removed: ${c ? describeCase(c) : n}`);
  }
  const d = await sup.ensureAlive();
  const rejectedDir = join(spool, 'rejected');
  const rejected = existsSync(rejectedDir) ? readdirSync(rejectedDir).sort() : [];
  const oversized = [...cases.values()].filter((c) => isOversized(c) && !culprits.some((x) => x.c === c)).map((c) => c.name).sort();
  if (JSON.stringify(rejected) !== JSON.stringify(oversized)) problems.push(`rejected/ holds ${JSON.stringify(rejected)}, expected the oversized files ${JSON.stringify(oversized)}`);

  // It still imports: a valid record of a new known id.
  const probeId = KNOWN_ID_BASE + 99_999;
  const probeEnv = envBlock(jobcompEnv(new Rng(SEED), probeId));
  const probe: SpoolCase = { index: -1, kind: 'probe', framing: 'ok', name: `jobcomp.${probeId}.1.2.3.jch`, content: frame(probeEnv), env: probeEnv };
  drop(spool, probe);
  await drain(0, 10_000);
  if (spoolFiles(spool).includes(probe.name)) problems.push('the probe file was not imported');

  // Expected: quarantines, and what reaches each topic.
  let expectedQuarantined = 0;
  const expectedPayloads = new Map<string, 1>();
  const byTopic = { finish: new Set<string>(), start: new Set<string>() };
  const removed = [...cases.values(), probe].filter((c) => !left.includes(c.name) && !culprits.some((x) => x.c === c));
  for (const c of removed) {
    const e = expectation(c);
    expectedQuarantined += e.quarantines;
    if (e.prediction?.kind === 'stored' && e.prediction.payload.length <= KAFKA_MAX) {
      expectedPayloads.set(e.prediction.dedupKey, 1);
      (e.prediction.event === 2 ? byTopic.start : byTopic.finish).add(e.prediction.dedupKey);
    }
  }
  const status = await settledStatus(d.configFile, expectedQuarantined, 30_000);
  const published = await readPublished(suite.broker().bootstrapServers, [
    { topic: CLUSTER, event: 1, want: byTopic.finish.size },
    { topic: `${CLUSTER}-job-start`, event: 2, want: byTopic.start.size },
  ]);
  const total = published.total;
  problems.push(...published.problems, ...comparePublished(expectedPayloads, published.seen, sup.crashes.length > 0));
  const missingKnown = missingKnownRecords(published.jobIds, CASES, KNOWN_ID_BASE, probeId);

  const alive = stopFuzzRun(run, d);
  const all = [...cases.values()];
  const report = {
    seed: SEED,
    cases: CASES,
    fuzzSeconds: fuzzMs / 1000,
    totalSeconds: (Date.now() - started) / 1000,
    kinds: tally(all.map((c) => c.kind)),
    framings: tally(all.map((c) => c.framing)),
    predictions: tally(all.map((c) => (c.framing === 'ok' ? (expectation(c).prediction?.kind ?? '?') : 'bad-framing'))),
    crashes: sup.crashes.length,
    culprits: culprits.map(({ c }) => `#${c.index} ${c.kind}`),
    left: left.length,
    quarantined: { status: status.quarantined, expected: expectedQuarantined },
    published: { total, expected: expectedPayloads.size },
    backlog: status.backlog,
    rss: rss.report,
    problems: problems.length,
  };

  // Every failure in one list, most important first. After a crash, files the daemon had
  // committed but not yet removed are imported again: duplicates (not published twice) or a
  // second quarantine, so the quarantine count is then only bounded.
  const failures = [
    ...commonFailures({ culprits: culprits.map(({ c, stderr }) => ({ description: describeCase(c), stderr })), sup, alive, problems, missingKnown, backlog: status.backlog, rss, rssLimitKb: RSS_LIMIT_KB }),
    ...(status.quarantined === expectedQuarantined || (sup.crashes.length > 0 && status.quarantined >= expectedQuarantined && status.quarantined <= expectedQuarantined + BATCH)
      ? []
      : [`status says ${status.quarantined} quarantined, expected ${expectedQuarantined}`]),
    ...(total === expectedPayloads.size || (sup.crashes.length > 0 && total > expectedPayloads.size) ? [] : [`${total} messages published, expected ${expectedPayloads.size}`]),
  ];
  reportFuzzRun('fuzz-spool', report, failures);
});
