// Conservation and liveness, ported from rsyslog's failresume test and Vector's
// conservation scenario, then pushed further: 50,000 sequenced records through each ingest
// path at full speed while jobcompd is killed with SIGKILL at ten random moments (records
// are being committed, produced and confirmed all the while) and the broker is stopped
// and started twice. Every
// record whose sender got a success answer must be in Kafka; duplicates only from records
// the killed process had in flight (at most MaxInFlight per kill); the backlog drains; a
// fresh record goes through. Deterministic from a seed (CONSERVATION_SEED), printed.

import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { consumeAll } from '../../tools/kafka/consume';
import { useBroker } from '../helpers/broker-suite';
import { post, type DaemonProcess } from '../helpers/daemon';
import { numberedBodies } from '../helpers/records';
import { records } from '../helpers/slurm-suite';
import { encodeRequest } from '../../src/sources/hook-protocol';
import { faultSchedule, prng, RestartableDaemon, until, type Fault, type Kill } from './faults';

const N = Number(process.env.CONSERVATION_N ?? 50_000);
const SEED = Number(process.env.CONSERVATION_SEED ?? 20261122);
jest.setTimeout(600_000);

const suite = useBroker({ autoCreateTopics: true });

beforeAll(() => {
  process.stdout.write(`conservation: N=${N} seed=${SEED} (CONSERVATION_SEED=${SEED} repeats this run)\n`);
});

type Path = 'http' | 'socket' | 'spool';

/** One sender: returns once record i got a success answer (retrying while jobcompd is down). */
type Sender = (i: number) => Promise<void>;

function httpSender(daemon: RestartableDaemon, bodies: Buffer[]): Sender {
  return async (i) => {
    for (;;) {
      const r = await post(daemon.current.url, bodies[i] as Buffer).catch(() => undefined);
      if (r?.status === 201) return;
      await new Promise((resolve) => setTimeout(resolve, 50)); // Slurm would wait 30 s
    }
  };
}

function jobEnv(jobId: number): Map<string, string> {
  return new Map(Object.entries({ JOBID: String(jobId), UID: '0', GID: '0', USERNAME: 'root', GROUPNAME: 'root', PROCS: '1', NODECNT: '1', NODES: 'localhost', PARTITION: 'debug', EXITCODE: '0:0', DERIVED_EC: '0:0', JOBSTATE: 'COMPLETED', START: '1795319410', END: '1795319411', SUBMIT: '1795319409', JOBNAME: `seq${jobId}` }));
}

function hookMessage(jobId: number): Buffer {
  return encodeRequest(Buffer.from([...jobEnv(jobId)].map(([k, v]) => `${k}=${v}\0`).join(''), 'latin1'));
}

/** A file dropped in the spool directory as the hook writes it (temporary file, rename). */
function spool(dir: string, jobId: number, i: number): void {
  const name = `jobcomp.${jobId}.${Date.now()}.${i}.${process.pid}.jch`;
  writeFileSync(join(dir, `.tmp.${i}`), hookMessage(jobId));
  renameSync(join(dir, `.tmp.${i}`), join(dir, name));
}

/** The answer's status byte, or undefined when the daemon did not answer within timeoutMs. */
function askHookSocket(socketPath: string, message: Buffer, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(socketPath);
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => resolve(chunks.length > 0 ? Buffer.concat(chunks).toString('latin1', 0, 1) : undefined));
    socket.end(message);
  });
}

/**
 * The hook's contract over the socket, in-process (spawning the native hook 50,000 times
 * from Node would take this machine a quarter of an hour; the real hook under kill -9 is
 * test/slurm/burst-kill.test.ts): success is an "A"/"D" answer, or, when jobcompd is down,
 * slow or answers "E", the record spooled, which is what the hook then does before exit 0.
 */
function socketSender(daemon: RestartableDaemon, firstJobId: number): Sender {
  const { hookSocket, spoolDir } = daemon.current;
  return async (i) => {
    const status = await askHookSocket(hookSocket, hookMessage(firstJobId + i), 2000);
    if (status === 'A' || status === 'D') return;
    spool(spoolDir, firstJobId + i, i);
  };
}

const SPOOL_AHEAD = 2000;
const SPOOL_FILES_PER_SECOND = 1000;

/**
 * Files dropped in the spool directory as the hook writes them: success is the rename.
 * Unpaced, 50,000 files are written and imported in a few seconds, before the chain of
 * kills (each a restart of a second or more) has got far; so the files come at a steady
 * SPOOL_FILES_PER_SECOND (the run then lasts about as long as the HTTP one), and the
 * writers also wait while more than SPOOL_AHEAD files are waiting (jobcompd down), so that
 * the kills fall while files are being imported, committed and produced.
 */
function spoolSender(daemon: RestartableDaemon, firstJobId: number): Sender {
  const dir = daemon.current.spoolDir;
  mkdirSync(dir, { recursive: true });
  const waiting = (): number => readdirSync(dir).length;
  const started = Date.now();
  return async (i) => {
    const due = started + (i * 1000) / SPOOL_FILES_PER_SECOND - Date.now();
    if (due > 0) await new Promise((resolve) => setTimeout(resolve, due)); // the pace is the point
    if (i % 100 === 0) {
      while (waiting() > SPOOL_AHEAD) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    spool(dir, firstJobId + i, i);
  };
}

async function runFault(f: Fault, daemon: RestartableDaemon): Promise<void> {
  if (f.kind === 'kill') {
    await daemon.killAfter(f.afterMs);
    return;
  }
  await suite.broker().stop();
  await new Promise((resolve) => setTimeout(resolve, f.downMs)); // the length of the outage is the point
  await suite.broker().restart();
}

/** Send record 0..n-1 with `concurrency` workers while the faults fire at their progress points. */
async function sendUnderFaults(n: number, concurrency: number, send: Sender, faults: Fault[], daemon: RestartableDaemon): Promise<void> {
  let next = 0;
  let done = 0;
  const pending = [...faults];
  let faulting: Promise<void> = Promise.resolve();
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await send(i);
      done += 1;
      while (pending.length > 0 && (pending[0] as Fault).at <= done) {
        const f = pending.shift() as Fault;
        faulting = faulting.then(() => runFault(f, daemon));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await faulting;
}

/**
 * Read the topic until every job id of [first, first+n) is there; the message count shows
 * duplicates. `before`: messages already in the topic ahead of the sequence.
 * `moreThanTwice`: job ids that came out three times or more (in flight at two kills).
 */
async function consumeSequence(topic: string, first: number, n: number, before = 0): Promise<{ messages: number; missing: number[]; moreThanTwice: number }> {
  let count = before + n;
  for (let attempt = 0; attempt < 20; attempt++) {
    const recs = records(await consumeAll(suite.broker().bootstrapServers, topic, { count, timeoutMs: 120_000 }).catch(() => []));
    const seen = new Map<number, number>();
    for (const r of recs) seen.set(r.jobid, (seen.get(r.jobid) ?? 0) + 1);
    const missing = Array.from({ length: n }, (_, i) => first + i).filter((id) => !seen.has(id));
    const moreThanTwice = [...seen.values()].filter((c) => c > 2).length;
    if (missing.length === 0) return { messages: recs.length - before, missing, moreThanTwice };
    count = recs.length + missing.length;
  }
  throw new Error(`records still missing from ${topic} after 20 reads`);
}

async function backlog(d: DaemonProcess): Promise<number> {
  const res = await fetch(`${d.adminUrl}/status`).catch(() => undefined);
  return res ? ((await res.json()) as { backlog: number }).backlog : -1;
}

function describeKill(k: Kill, i: number): string {
  return (
    `  kill ${i + 1}: in the wait before it +${k.committed} committed, +${k.produced} produced, +${k.delivered} delivered; ` +
    `${k.inFlight} in flight, backlog ${k.backlog}; ${k.inStateAtRestart} rows at the restart, bound ${k.duplicateBound}`
  );
}

let live: RestartableDaemon | undefined;
afterEach(async () => {
  await live?.current.stop('SIGKILL');
  live = undefined;
});

describe.each(['http', 'socket', 'spool'] as Path[])('through %s', (path) => {
  it(`every acknowledged record of ${N} reaches Kafka across 10 kill -9 and 2 broker outages; then it drains and stays live`, async () => {
    const random = prng(SEED ^ path.length * 7919);
    const faults = faultSchedule(random, N, 10, 2);
    const topic = `cons-${path}`;
    const first = 1_000_000 * (['http', 'socket', 'spool'].indexOf(path) + 1);
    const daemon = await RestartableDaemon.start({
      bootstrapServers: suite.broker().bootstrapServers,
      clusterName: topic,
      rdkafka: 'enable.idempotence=true\n',
      // one log line per record would slow a 50,000-record run down to the pace of the log pipe
      extraConf: 'LogLevel=info',
    });
    live = daemon;
    const started = Date.now();
    const send =
      path === 'http' ? httpSender(daemon, numberedBodies(N, first)) : path === 'socket' ? socketSender(daemon, first) : spoolSender(daemon, first);
    await sendUnderFaults(N, 32, send, faults, daemon);
    const sentIn = Date.now() - started;

    const { messages, missing, moreThanTwice } = await consumeSequence(topic, first, N);
    expect(missing).toEqual([]);
    const duplicates = messages - N;
    const { kills } = daemon;
    process.stdout.write(
      `${path}: ${N} records sent in ${(sentIn / 1000).toFixed(1)} s with ${kills.length} kills and 2 broker outages; ` +
        `${messages} messages, ${duplicates} duplicate(s), ${moreThanTwice} job id(s) more than twice; ` +
        `bound: the sum over the kills of min(MaxInFlight=${daemon.maxInFlight}, rows at the restart) = ${daemon.duplicateBound}\n` +
        `${kills.map(describeKill).join('\n')}\n`,
    );
    expect(kills).toHaveLength(10);
    expect(duplicates).toBeLessThanOrEqual(daemon.duplicateBound);
    // the kills fell while records were being committed, were in flight, and while delivery reports were being served
    expect(kills.filter((k) => k.committed > 0).length).toBeGreaterThan(0);
    expect(kills.filter((k) => k.inFlight > 0).length).toBeGreaterThan(0);
    expect(kills.filter((k) => k.delivered > 0).length).toBeGreaterThan(0);

    // liveness: the backlog drains, the spool empties, and a fresh record goes through
    const d = daemon.current;
    await until('the backlog to drain', async () => (await backlog(d)) === 0, 120_000);
    expect(readdirSync(d.spoolDir).filter((f) => f.endsWith('.jch'))).toEqual([]);
    const fresh = numberedBodies(1, first + N)[0] as Buffer;
    expect((await post(d.url, fresh)).status).toBe(201);
    await consumeSequence(topic, first + N, 1, messages);
  });
});
