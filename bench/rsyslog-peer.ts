// A durable peer side by side: Debian's rsyslog (imrelp in, omkafka out, its queues on
// disk) against jobcompd's HTTP path, in one run, to the same broker, with the same records.
//
//   node dist/bench/rsyslog-peer.js [--peer-seconds 30] [--peer-runs 3] [--kill-records 20000] [--kills 3] [--kill-seed 20261204] [--quick]
//   (the same options in run-all.js; --quick: 5 s × 1 and 2,000 records)
//
// 1. Throughput: jobcompd's HTTP path (throughput.ts's own series, with kcat beside it), then
//    rsyslog at saturation over RELP for the same window, in each queue layout
//    (bench/rsyslogd.ts): records/s acknowledged to the RELP sender, and records/s arrived on
//    the topic; every message on the topic must be byte for byte the record sent.
// 2. The same fault both ways: --kill-records records, kill -9 of jobcompd (resp. rsyslogd) at
//    --kills seeded moments, restart in place, drain; then count the acknowledged records
//    missing from the topic (loss) and the extra copies (duplicates).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KafkaBroker } from '../tools/kafka/broker';
import { consumeAll, countMessages, type ConsumedMessage } from '../tools/kafka/consume';
import { mulberry32 } from '../test/helpers/random';
import { BenchDaemon, esBodyOf, httpSender, note, option, payloadOf, runBench, saturate, saveResult, sleep, spread, startBroker, type Sender, type Spread } from './lib';
import { RelpClient } from './relp-client';
import { RSYSLOG_QUEUES, Rsyslogd, syslogFrame, type RsyslogQueue } from './rsyslogd';
import { CONCURRENCY, series, type Row } from './throughput';

/** Outstanding RELP transactions: the sender's window, one connection. */
const RELP_WINDOW = 128;
/** A sender whose record was not acknowledged tries again this much later (Slurm would wait longer). */
const RETRY_MS = 50;
/**
 * The topic is complete once the peer says it is drained and the count has not moved for this
 * long (rsyslog's statistics come once a second, and a killed process's are gone).
 */
const SETTLE_MS = 5_000;
/**
 * A peer that never says it is drained: the count is taken once it has not moved for this
 * long, and the row says so. After its kill -9 run, rsyslog's disk queue once went 10
 * minutes without its statistics saying drained and the count standing still together
 * (2026-12-06, 13:53 UTC; which of the two was missing was not recorded).
 */
const UNDRAINED_SETTLE_MS = 60_000;
const TOPIC_TIMEOUT_MS = 10 * 60_000;

let seq = 0;

/** The record with job id firstJobId + i, as jobcompd publishes it: what rsyslog receives and must forward unchanged. */
function recordsFrom(firstJobId: number): { body: (i: number) => Buffer; record: (i: number) => Buffer } {
  const body = esBodyOf(firstJobId);
  return { body, record: (i) => payloadOf(body(i)) };
}

function jobIdOf(m: ConsumedMessage): number {
  return Number(/^\{"jobid":(\d+),/.exec(m.value?.toString('latin1') ?? '')?.[1] ?? NaN);
}

/** Resolves with the time the topic held `count` messages. */
async function waitForCount(brokers: string, topic: string, count: number): Promise<bigint> {
  const deadline = Date.now() + TOPIC_TIMEOUT_MS;
  for (;;) {
    if ((await countMessages(brokers, topic)) >= count) return process.hrtime.bigint();
    if (Date.now() > deadline) throw new Error(`${topic} did not reach ${count} messages`);
    await sleep(50);
  }
}

/** Messages on the topic that are not byte for byte the record of their job id. */
async function mismatched(brokers: string, topic: string, count: number, record: (jobId: number) => Buffer): Promise<number> {
  const messages = await consumeAll(brokers, topic, { count, timeoutMs: TOPIC_TIMEOUT_MS });
  return messages.filter((m) => m.value === null || !m.value.equals(record(jobIdOf(m)))).length;
}

// ---------------------------------------------------------------------------
// Throughput

interface RsyslogRun {
  records: number;
  ackPerSecond: number;
  topicPerSecond: number;
}

/** rsyslog at saturation for `seconds`: RELP acknowledgements, then arrival on the topic, then the bytes. */
async function rsyslogRun(broker: KafkaBroker, queue: RsyslogQueue, seconds: number): Promise<RsyslogRun> {
  const topic = `rs-${queue}-${++seq}`;
  await broker.createTopic(topic, 1);
  const firstJobId = 500_000_000 + seq * 10_000_000;
  const { record } = recordsFrom(firstJobId);
  const rsyslogd = await Rsyslogd.start({ bootstrapServers: broker.bootstrapServers, topic, queue });
  try {
    const relp = await RelpClient.open('127.0.0.1', rsyslogd.port, RELP_WINDOW);
    const t0 = process.hrtime.bigint();
    const records = await saturate((i) => relp.send(syslogFrame(record(i))), RELP_WINDOW, { durationMs: seconds * 1000 });
    const acked = process.hrtime.bigint();
    await relp.close();
    const arrived = await waitForCount(broker.bootstrapServers, topic, records);
    const wrong = await mismatched(broker.bootstrapServers, topic, records, (jobId) => record(jobId - firstJobId));
    if (wrong > 0) throw new Error(`${wrong} message(s) on ${topic} differ from the record sent`);
    const run = { records, ackPerSecond: records / (Number(acked - t0) / 1e9), topicPerSecond: records / (Number(arrived - t0) / 1e9) };
    note(`rsyslog (${queue}): ${records} records, ${run.ackPerSecond.toFixed(0)}/s acknowledged, ${run.topicPerSecond.toFixed(0)}/s on the topic, bytes identical`);
    return run;
  } finally {
    await rsyslogd.stop();
  }
}

interface RsyslogRow {
  queue: RsyslogQueue;
  seconds: number;
  runs: number;
  acknowledged: Spread;
  onTopic: Spread;
}

async function rsyslogSeries(broker: KafkaBroker, queue: RsyslogQueue, seconds: number, runs: number): Promise<RsyslogRow> {
  const results: RsyslogRun[] = [];
  for (let i = 0; i < runs; i++) results.push(await rsyslogRun(broker, queue, seconds));
  return { queue, seconds, runs, acknowledged: spread(results.map((r) => r.ackPerSecond)), onTopic: spread(results.map((r) => r.topicPerSecond)) };
}

// ---------------------------------------------------------------------------
// kill -9 both ways

interface KillPoint {
  /** after this many acknowledged records */
  at: number;
  /** then this much later */
  afterMs: number;
}

/** The kill moments of a run of n records, from a seed: the same for both peers. */
function killSchedule(seed: number, n: number, kills: number): KillPoint[] {
  const random = mulberry32(seed);
  return Array.from({ length: kills }, () => ({ at: Math.floor((0.1 + random() * 0.8) * n), afterMs: Math.floor(random() * 100) })).sort((a, b) => a.at - b.at);
}

/** What the fault run drives: a sender that returns once record i is acknowledged, and a kill -9 with its restart. */
interface Peer {
  send: Sender;
  concurrency: number;
  killAndRestart(): Promise<void>;
  /** true when the peer says it holds nothing more to forward (jobcompd: its backlog; rsyslog: its statistics) */
  drained(): Promise<boolean>;
  stop(): Promise<void>;
}

/** Keeps trying record i until it is acknowledged, as a source that must not lose it would. */
function untilAcknowledged(attempt: Sender): Sender {
  return async (i) => {
    for (;;) {
      if (await attempt(i).then(() => true, () => false)) return;
      await sleep(RETRY_MS);
    }
  };
}

async function jobcompdPeer(broker: KafkaBroker, topic: string, body: (i: number) => Buffer): Promise<Peer> {
  const stateDir = mkdtempSync(join(tmpdir(), 'jobcompd-bench-state-'));
  const start = (): Promise<BenchDaemon> => BenchDaemon.start({ bootstrapServers: broker.bootstrapServers, clusterName: topic, stateDir });
  let daemon = await start();
  let http = httpSender(daemon.httpPort, body);
  return {
    send: untilAcknowledged((i) => http(i)),
    concurrency: CONCURRENCY,
    async killAndRestart() {
      await daemon.kill();
      daemon = await start();
      http = httpSender(daemon.httpPort, body);
    },
    drained: async () => (await daemon.status()).backlog === 0,
    async stop() {
      await daemon.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

async function rsyslogPeer(broker: KafkaBroker, topic: string, queue: RsyslogQueue, record: (i: number) => Buffer): Promise<Peer> {
  const rsyslogd = await Rsyslogd.start({ bootstrapServers: broker.bootstrapServers, topic, queue });
  let session: Promise<RelpClient> | undefined;
  // one session shared by all senders; the first sender to find it lost opens the next
  const relp = async (): Promise<RelpClient> => {
    const seen = session;
    const client = seen === undefined ? undefined : await seen.catch(() => undefined);
    if (client !== undefined && !client.failed) return client;
    if (session === seen) session = RelpClient.open('127.0.0.1', rsyslogd.port, RELP_WINDOW);
    return session as Promise<RelpClient>;
  };
  return {
    send: untilAcknowledged(async (i) => (await relp()).send(syslogFrame(record(i)))),
    concurrency: RELP_WINDOW,
    killAndRestart: () => rsyslogd.killAndRestart(),
    drained: () => Promise.resolve(rsyslogd.drained()),
    async stop() {
      await (await session?.catch(() => undefined))?.close();
      await rsyslogd.stop();
    },
  };
}

/**
 * Records 0..n-1, each until acknowledged, while the kills fire at their progress points.
 * Returns how many records had been handed out to senders at each kill.
 */
async function sendUnderKills(peer: Peer, n: number, schedule: KillPoint[]): Promise<number[]> {
  const handedOutAtKill: number[] = [];
  let next = 0;
  let acknowledged = 0;
  const pending = [...schedule];
  let killing: Promise<void> = Promise.resolve();
  const worker = async (): Promise<void> => {
    while (next < n) {
      await peer.send(next++);
      acknowledged += 1;
      while (pending.length > 0 && (pending[0] as KillPoint).at <= acknowledged) {
        const k = pending.shift() as KillPoint;
        killing = killing.then(async () => {
          await sleep(k.afterMs); // the moment is the point: seeded
          handedOutAtKill.push(next);
          await peer.killAndRestart();
        });
      }
    }
  };
  await Promise.all(Array.from({ length: peer.concurrency }, worker));
  await killing;
  return handedOutAtKill;
}

/**
 * The topic's message count once the peer is drained and the count has not moved for
 * SETTLE_MS, or, while the peer never says it is drained, for UNDRAINED_SETTLE_MS.
 */
async function settledCount(brokers: string, topic: string, peer: Peer): Promise<{ count: number; drained: boolean }> {
  const deadline = Date.now() + TOPIC_TIMEOUT_MS;
  let last = -1;
  let unchangedSince = Date.now();
  let drainedSince: number | undefined;
  for (;;) {
    const count = await countMessages(brokers, topic);
    const now = Date.now();
    if (count !== last) {
      last = count;
      unchangedSince = now;
      drainedSince = undefined;
    }
    if (!(await peer.drained())) drainedSince = undefined;
    else drainedSince ??= now;
    // drainedSince is reset with every new count, so it never precedes unchangedSince
    if (drainedSince !== undefined && now - drainedSince >= SETTLE_MS) return { count, drained: true };
    if (now - unchangedSince >= UNDRAINED_SETTLE_MS) return { count, drained: false };
    if (now > deadline) throw new Error(`${topic} still growing after ${TOPIC_TIMEOUT_MS} ms`);
    await sleep(250);
  }
}

interface FaultRow {
  peer: string;
  records: number;
  kills: number;
  seconds: number;
  messages: number;
  /** acknowledged records not on the topic */
  lost: number;
  /** messages beyond one per record */
  duplicates: number;
  /** messages that are not the record of their job id */
  mismatched: number;
  /** records handed out to the senders when each kill fired, and the lost records' numbers (the first 50): where the losses fell */
  handedOutAtKill: number[];
  lostRecords: number[];
  /** false: the peer never said it was drained, and the count was taken after UNDRAINED_SETTLE_MS without a new message */
  peerDrained: boolean;
}

async function faultRun(broker: KafkaBroker, name: string, n: number, schedule: KillPoint[], makePeer: (topic: string, record: (i: number) => Buffer, body: (i: number) => Buffer) => Promise<Peer>): Promise<FaultRow> {
  const topic = `kill-${name}-${++seq}`;
  await broker.createTopic(topic, 1);
  const firstJobId = 900_000_000 + seq * 1_000_000;
  const { body, record } = recordsFrom(firstJobId);
  const peer = await makePeer(topic, record, body);
  try {
    const t0 = Date.now();
    const handedOutAtKill = await sendUnderKills(peer, n, schedule);
    const seconds = (Date.now() - t0) / 1000;
    const { count, drained } = await settledCount(broker.bootstrapServers, topic, peer);
    const messages = count === 0 ? [] : await consumeAll(broker.bootstrapServers, topic, { count, timeoutMs: TOPIC_TIMEOUT_MS });
    const seen = new Set<number>();
    let wrong = 0;
    for (const m of messages) {
      const i = jobIdOf(m) - firstJobId;
      if (m.value === null || !(i >= 0 && i < n) || !m.value.equals(record(i))) wrong += 1;
      else seen.add(i);
    }
    const lostRecords = Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(i));
    const row = { peer: name, records: n, kills: schedule.length, seconds, messages: messages.length, lost: lostRecords.length, duplicates: messages.length - wrong - seen.size, mismatched: wrong, handedOutAtKill, lostRecords: lostRecords.slice(0, 50), peerDrained: drained };
    note(`kill -9 × ${row.kills}, ${name}: ${n} acknowledged in ${seconds.toFixed(1)} s; ${row.messages} messages, lost ${row.lost}, duplicates ${row.duplicates}, mismatched ${row.mismatched}`);
    note(`  records handed out at the kills: ${handedOutAtKill.join(', ')}; lost: ${row.lostRecords.join(', ')}`);
    if (!drained) note(`  ${name} never said it was drained: counted after ${UNDRAINED_SETTLE_MS / 1000} s without a new message on the topic`);
    return row;
  } finally {
    await peer.stop();
  }
}

// ---------------------------------------------------------------------------

export interface PeerOptions {
  seconds: number;
  runs: number;
  records: number;
  kills: number;
  seed: number;
}

export interface PeerFigures {
  options: PeerOptions;
  relpWindow: number;
  httpConcurrency: number;
  jobcompd: Row;
  rsyslog: RsyslogRow[];
  faults: FaultRow[];
}

export async function rsyslogPeerBench(opts: PeerOptions): Promise<PeerFigures> {
  const broker = await startBroker();
  try {
    const jobcompd = await series(broker, 'http', opts.seconds, 1, opts.runs);
    const rsyslog: RsyslogRow[] = [];
    for (const queue of RSYSLOG_QUEUES) rsyslog.push(await rsyslogSeries(broker, queue, opts.seconds, opts.runs));
    const schedule = killSchedule(opts.seed, opts.records, opts.kills);
    note(`kill schedule (seed ${opts.seed}): ${schedule.map((k) => `after ${k.at} acknowledged + ${k.afterMs} ms`).join(', ')}`);
    const faults = [await faultRun(broker, 'jobcompd', opts.records, schedule, (topic, _record, body) => jobcompdPeer(broker, topic, body))];
    for (const queue of RSYSLOG_QUEUES) faults.push(await faultRun(broker, `rsyslog-${queue}`, opts.records, schedule, (topic, record) => rsyslogPeer(broker, topic, queue, record)));
    return { options: opts, relpWindow: RELP_WINDOW, httpConcurrency: CONCURRENCY, jobcompd, rsyslog, faults };
  } finally {
    await broker.destroy();
  }
}

export function rsyslogPeerTable(f: PeerFigures): string {
  const m = (s: Spread): string => `${s.median.toFixed(0)} (${s.min.toFixed(0)}-${s.max.toFixed(0)})`;
  const j = f.jobcompd;
  return [
    '| durable forwarder | window | records/s acknowledged to the sender, median (min-max) | records/s on the topic | kcat -P (same run) |',
    '|---|---|---|---|---|',
    `| jobcompd, HTTP, ${f.httpConcurrency} senders, a connection per record as Slurm sends | ${j.seconds} s × ${j.runs} | — | ${m(j.jobcompd)} | ${m(j.kcat)} |`,
    ...f.rsyslog.map((r) => `| rsyslog, RELP window ${f.relpWindow}, ${r.queue} queue | ${r.seconds} s × ${r.runs} | ${m(r.acknowledged)} | ${m(r.onTopic)} | |`),
    '',
    `| kill -9 × ${f.options.kills} (seed ${f.options.seed}) | records acknowledged | messages on the topic | lost (acknowledged, not on the topic) | duplicates | wrong bytes | send time |`,
    '|---|---|---|---|---|---|---|',
    ...f.faults.map((r) => `| ${r.peer}${r.peerDrained ? '' : ` (never said it was drained: counted after ${UNDRAINED_SETTLE_MS / 1000} s without a new message)`} | ${r.records} | ${r.messages} | ${r.lost} | ${r.duplicates} | ${r.mismatched} | ${r.seconds.toFixed(1)} s |`),
  ].join('\n');
}

/** --quick: the small size, to check it all works. */
export function peerOptions(quick: boolean): PeerOptions {
  const q = (small: number, full: number): number => (quick ? small : full);
  return { seconds: option('peer-seconds', q(5, 30)), runs: option('peer-runs', q(1, 3)), records: option('kill-records', q(2000, 20_000)), kills: option('kills', 3), seed: option('kill-seed', 20261204) };
}

if (require.main === module) {
  runBench(async () => {
    const quick = process.argv.includes('--quick');
    const figures = await rsyslogPeerBench(peerOptions(quick));
    process.stdout.write(`${rsyslogPeerTable(figures)}\n`);
    note(`saved ${saveResult(quick ? 'rsyslog-peer-quick' : 'rsyslog-peer', figures)}`);
  });
}
