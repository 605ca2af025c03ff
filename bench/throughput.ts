// Durable end-to-end throughput: records/s from the first byte sent to the last delivery
// report, through the HTTP path and the hook socket, at saturation for --seconds; next to
// kcat -P producing the same payloads to the same broker (no durability: the ceiling).
// The two paths run by turns (pairedSeries). Also the HTTP path with 10 and 100
// partitions, HTTP with DedupWindow at its default (every other row runs without it), and
// the floor under both paths: the same senders against a Node.js server that answers at
// once and keeps nothing (answer-only-server.ts), with its CPU per record.
//
//   node dist/bench/throughput.js [--seconds 60] [--runs 3] [--partition-seconds 20] [--only http|socket|http-keepalive [--dedup-window <seconds>] [--senders <n>]]
//
// The senders send as Slurm does (lib.ts): HTTP a new connection per record, as
// jobcomp/elasticsearch's curl handle per record; the socket a connection per record, as
// the native hook. One row keeps the keep-alive HTTP clients the bench used until the
// fifteenth session, to compare with earlier runs.
//
// --only runs one path with 1 partition (to profile it: BENCH_CPU_PROF=<dir>) and saves
// nothing, so the figures docs/benchmarks.md quotes stay those of a full run; --senders 1
// sends one record at a time, as jobcomp/elasticsearch's one agent thread does.

import type { KafkaBroker } from '../tools/kafka/broker';
import {
  BenchDaemon,
  esBodyOf,
  hookMessage,
  hookSender,
  httpSender,
  keepAliveHttpSender,
  kcatProduce,
  note,
  option,
  runBench,
  payloadOf,
  publishedPayload,
  removeFileDir,
  saveResult,
  startAnswerOnlyServer,
  saturate,
  spread,
  startBroker,
  writePayloadFile,
  type Sender,
  type Spread,
} from './lib';
import { defaultDaemonConfig } from '../src/config/daemon-conf';
import { HEADER_BYTES } from '../src/sources/hook-protocol';

/** Enough to saturate two cores without queueing thousands of requests in the client. */
export const CONCURRENCY = 32;
/** [jobcompd] DedupWindow's default, in seconds */
const DEFAULT_DEDUP_WINDOW_SECONDS = defaultDaemonConfig().dedupWindowMs / 1000;

type Path = 'http' | 'socket' | 'http-keepalive';

interface Run {
  records: number;
  seconds: number;
  perSecond: number;
  kcatPerSecond: number;
  /** CPU the daemon used (every thread, from /proc) per record, first byte sent to last delivery report */
  daemonCpuUs: number;
  /** CPU this process (the load generator) used per record while sending */
  senderCpuUs: number;
}

let topicSeq = 0;

function senderFor(path: Path, senders: number, httpPort: number, socketPath: string, body: (i: number) => Buffer, message: (i: number) => Buffer): { send: Sender; close(): void } {
  if (path === 'http-keepalive') return keepAliveHttpSender(httpPort, body, senders);
  return { send: path === 'http' ? httpSender(httpPort, body) : hookSender(socketPath, message), close: () => undefined };
}

/** One run: jobcompd at saturation, then kcat with exactly the payloads jobcompd published. */
async function oneRun(broker: KafkaBroker, path: Path, seconds: number, partitions: number, dedupWindowSeconds: number, senders: number): Promise<Run> {
  const topic = `tp-${path}-${partitions}p-${++topicSeq}`;
  await broker.createTopic(topic, partitions);
  await broker.createTopic(`${topic}-kcat`, partitions);
  const daemon = await BenchDaemon.start({ bootstrapServers: broker.bootstrapServers, clusterName: topic, dedupWindowSeconds });
  const firstJobId = topicSeq * 10_000_000;
  const body = esBodyOf(firstJobId);
  const message = (i: number): Buffer => hookMessage(firstJobId + i);
  try {
    const { send, close } = senderFor(path, senders, daemon.httpPort, daemon.socketPath, body, message);
    const cpu0 = daemon.cpuSeconds();
    const sender0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const records = await saturate(send, senders, { durationMs: seconds * 1000 });
    const sender = process.cpuUsage(sender0);
    close();
    const t1 = await daemon.waitDelivered(records);
    const daemonCpuUs = (1e6 * (daemon.cpuSeconds() - cpu0)) / records;
    const senderCpuUs = (sender.user + sender.system) / records;
    const elapsed = Number(t1 - t0) / 1e9;

    const payloads = Array.from({ length: records }, (_, i) => (path !== 'socket' ? payloadOf(body(i)) : publishedPayload({ kind: 'hook', environment: message(i).subarray(HEADER_BYTES) })));
    const file = writePayloadFile(payloads);
    const kcatSeconds = await kcatProduce(broker.bootstrapServers, `${topic}-kcat`, file);
    removeFileDir(file);
    const run = { records, seconds: elapsed, perSecond: records / elapsed, kcatPerSecond: records / kcatSeconds, daemonCpuUs, senderCpuUs };
    note(
      `${path}, ${partitions} partition(s): ${records} records in ${elapsed.toFixed(1)} s = ${run.perSecond.toFixed(0)}/s, daemon ${daemonCpuUs.toFixed(1)} µs CPU/record, sender ${senderCpuUs.toFixed(1)} µs; kcat ${run.kcatPerSecond.toFixed(0)}/s`,
    );
    return run;
  } finally {
    await daemon.stop();
  }
}

export interface Row {
  what: string;
  partitions: number;
  seconds: number;
  runs: number;
  jobcompd: Spread;
  kcat: Spread;
  daemonCpuUsPerRecord: Spread;
  senderCpuUsPerRecord: Spread;
  /** median jobcompd / median kcat */
  ratio: number;
}

function rowOf(what: string, seconds: number, partitions: number, results: Run[]): Row {
  const jobcompd = spread(results.map((r) => r.perSecond));
  const kcat = spread(results.map((r) => r.kcatPerSecond));
  return {
    what,
    partitions,
    seconds,
    runs: results.length,
    jobcompd,
    kcat,
    daemonCpuUsPerRecord: spread(results.map((r) => r.daemonCpuUs)),
    senderCpuUsPerRecord: spread(results.map((r) => r.senderCpuUs)),
    ratio: jobcompd.median / kcat.median,
  };
}

/** `dedupWindowSeconds` > 0: the duplicate check on, as the daemon's default is (the other rows run without it). */
export async function series(broker: KafkaBroker, path: Path, seconds: number, partitions: number, runs: number, dedupWindowSeconds = 0, senders = CONCURRENCY): Promise<Row> {
  const results: Run[] = [];
  for (let i = 0; i < runs; i++) results.push(await oneRun(broker, path, seconds, partitions, dedupWindowSeconds, senders));
  return rowOf(dedupWindowSeconds > 0 ? `${path}, DedupWindow=${dedupWindowSeconds}` : path, seconds, partitions, results);
}

/**
 * The two paths run by turns, each pair in the other order than the last (http then socket,
 * socket then http, ...): this machine's speed drifts over minutes, and three runs of one
 * path followed by three of the other compared two different machines (docs/benchmark-rounds.md,
 * thirteenth session). Each pair's socket / HTTP ratio is kept too.
 */
async function pairedSeries(broker: KafkaBroker, seconds: number, runs: number): Promise<{ http: Row; socket: Row; socketOverHttp: Spread }> {
  const results: Record<'http' | 'socket', Run[]> = { http: [], socket: [] };
  for (let i = 0; i < runs; i++) {
    for (const path of i % 2 === 0 ? (['http', 'socket'] as const) : (['socket', 'http'] as const)) results[path].push(await oneRun(broker, path, seconds, 1, 0, CONCURRENCY));
  }
  const ratios = results.socket.map((r, i) => r.perSecond / (results.http[i] as Run).perSecond);
  return { http: rowOf('http', seconds, 1, results.http), socket: rowOf('socket', seconds, 1, results.socket), socketOverHttp: spread(ratios) };
}

/** The same senders against answer-only-server.ts: what receiving and answering alone costs. */
export interface FloorRow {
  what: Path;
  seconds: number;
  runs: number;
  perSecond: Spread;
  serverCpuUsPerRecord: Spread;
  senderCpuUsPerRecord: Spread;
}

async function floorSeries(path: Path, seconds: number, runs: number, senders: number): Promise<FloorRow> {
  const results: { perSecond: number; serverCpuUs: number; senderCpuUs: number }[] = [];
  for (let i = 0; i < runs; i++) {
    const server = await startAnswerOnlyServer(path === 'socket' ? 'socket' : 'http');
    try {
      const { send, close } = senderFor(path, senders, Number(server.address), server.address, esBodyOf(0), hookMessage);
      const cpu0 = server.cpuSeconds();
      const sender0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const records = await saturate(send, senders, { durationMs: seconds * 1000 });
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
      const sender = process.cpuUsage(sender0);
      close();
      const r = { perSecond: records / elapsed, serverCpuUs: (1e6 * (server.cpuSeconds() - cpu0)) / records, senderCpuUs: (sender.user + sender.system) / records };
      note(`answer-only server, ${path}: ${r.perSecond.toFixed(0)}/s, server ${r.serverCpuUs.toFixed(1)} µs CPU/record, sender ${r.senderCpuUs.toFixed(1)} µs`);
      results.push(r);
    } finally {
      await server.stop();
    }
  }
  return {
    what: path,
    seconds,
    runs,
    perSecond: spread(results.map((r) => r.perSecond)),
    serverCpuUsPerRecord: spread(results.map((r) => r.serverCpuUs)),
    senderCpuUsPerRecord: spread(results.map((r) => r.senderCpuUs)),
  };
}

export interface Throughput {
  rows: Row[];
  floor: FloorRow[];
  /** concurrent senders of every row and floor */
  senders: number;
  /** the socket path's records/s over HTTP's, run by run in alternated pairs; undefined with --only */
  socketOverHttp?: Spread;
}

/**
 * `only`: one path, one partition, and `dedupWindowSeconds` (0: off) and `senders` (the
 * concurrent senders) for it; a full run always has CONCURRENCY senders.
 */
export async function throughputBench(opts: { seconds: number; runs: number; partitionSeconds: number; only?: Path; dedupWindowSeconds?: number; senders?: number }): Promise<Throughput> {
  const senders = opts.only === undefined ? CONCURRENCY : (opts.senders ?? CONCURRENCY);
  const floor: FloorRow[] = [];
  for (const path of opts.only === undefined ? (['http', 'socket', 'http-keepalive'] as const) : [opts.only]) floor.push(await floorSeries(path, opts.partitionSeconds, opts.runs, senders));
  const broker = await startBroker();
  try {
    const rows: Row[] = [];
    if (opts.only !== undefined) {
      rows.push(await series(broker, opts.only, opts.seconds, 1, opts.runs, opts.dedupWindowSeconds, senders));
      return { rows, floor, senders };
    }
    const paired = await pairedSeries(broker, opts.seconds, opts.runs);
    rows.push(paired.http, paired.socket);
    for (const partitions of [10, 100]) rows.push(await series(broker, 'http', opts.partitionSeconds, partitions, opts.runs));
    // what a site runs: the duplicate check's default window, which every other row leaves off
    rows.push(await series(broker, 'http', opts.seconds, 1, opts.runs, DEFAULT_DEDUP_WINDOW_SECONDS));
    rows.push(await series(broker, 'http-keepalive', opts.partitionSeconds, 1, opts.runs));
    return { rows, floor, senders, socketOverHttp: paired.socketOverHttp };
  } finally {
    await broker.destroy();
  }
}

export function floorTable(rows: FloorRow[], senders = CONCURRENCY): string {
  const f = (s: Spread, digits: number): string => `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
  return [
    `| the same ${senders} sender${senders === 1 ? '' : 's'} against a Node.js server that only answers | saturation | records/s, median (min-max) | server CPU µs/record | load generator CPU µs/record |`,
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.seconds} s × ${r.runs} | ${f(r.perSecond, 0)} | ${f(r.serverCpuUsPerRecord, 1)} | ${f(r.senderCpuUsPerRecord, 1)} |`),
  ].join('\n');
}

/** The socket path against HTTP, pair by pair (target 2: at least as fast). */
export function pairedRatioLine(socketOverHttp: Spread | undefined): string {
  if (socketOverHttp === undefined) return '';
  const f = (x: number): string => x.toFixed(2);
  return `Socket / HTTP records/s, run by run in alternated pairs (1 partition): ${f(socketOverHttp.median)} (${f(socketOverHttp.min)}-${f(socketOverHttp.max)}).`;
}

export function throughputTable(rows: Row[]): string {
  const f = (s: Spread): string => `${s.median.toFixed(0)} (${s.min.toFixed(0)}-${s.max.toFixed(0)})`;
  const g = (s: Spread): string => `${s.median.toFixed(1)} (${s.min.toFixed(1)}-${s.max.toFixed(1)})`;
  return [
    '| path | partitions | saturation | jobcompd records/s, median (min-max) | daemon CPU µs/record | load generator CPU µs/record | kcat -P records/s | jobcompd / kcat |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.partitions} | ${r.seconds} s × ${r.runs} | ${f(r.jobcompd)} | ${g(r.daemonCpuUsPerRecord)} | ${g(r.senderCpuUsPerRecord)} | ${f(r.kcat)} | ${r.ratio.toFixed(2)} |`),
  ].join('\n');
}

function onlyOption(): Path | undefined {
  const i = process.argv.indexOf('--only');
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  if (v === 'http' || v === 'socket' || v === 'http-keepalive') return v;
  throw new Error(`--only takes http, socket or http-keepalive, not ${String(v)}`);
}

if (require.main === module) {
  const opts = { seconds: option('seconds', 60), runs: option('runs', 3), partitionSeconds: option('partition-seconds', 20), only: onlyOption(), dedupWindowSeconds: option('dedup-window', 0), senders: option('senders', CONCURRENCY) };
  runBench(async () => {
    const { rows, floor, senders, socketOverHttp } = await throughputBench(opts);
    process.stdout.write(`${throughputTable(rows)}\n\n${pairedRatioLine(socketOverHttp)}\n\n${floorTable(floor, senders)}\n`);
    if (opts.only === undefined) note(`saved ${saveResult('throughput', { options: opts, concurrency: CONCURRENCY, rows, floor, socketOverHttp })}`);
  });
}
