// A large backlog: 1,000,000 records in the state file (what a long broker outage leaves).
//   - start-up: exec to ready, with an empty state file and with the backlog;
//   - memory: peak RSS while holding the backlog (broker unreachable) and while draining it;
//   - drain: time until every record is delivered once the broker is there, records/s,
//     next to kcat -P producing the same payload file, and node-rdkafka alone producing
//     payloads like them from memory (rdkafka-alone.ts) with the drain's window
//     (MaxInFlight) and with the widest librdkafka's queue takes; and the drain's state-file
//     work alone, with no Kafka: reading the rows back and deleting them after "delivery"
//     (stateFileAlone). Together the two "alone" figures bound what the drain can reach.
//
//   node dist/bench/backlog.js [--records 1000000] [--runs 3] [--max-in-flight <MaxInFlight>]

import { once } from 'node:events';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultDaemonConfig } from '../src/config/daemon-conf';
import { Outbox } from '../src/outbox/outbox';
import { MIN_REFILL } from '../src/producer/dispatcher';
import { JobEvent } from '../src/record/job-record';
import { reserveLoopbackPorts } from '../tools/harness-common';
import type { KafkaBroker } from '../tools/kafka/broker';
import { produceWithNodeRdkafka } from './rdkafka-alone';
import { cpus } from 'node:os';
import { BenchDaemon, esBodyOf, kcatProduce, note, option, phaseCpu, runBench, payloadOf, removeFileDir, saveResult, sleep, spread, startBroker, writePayloadFile, type PhaseCpu, type Spread } from './lib';

const FILL_BATCH = 5000;
const HOLD_MS = 10_000;
/** distinct payloads node-rdkafka alone cycles through (a million would take 800 MB of the bench's memory) */
const RING = 10_000;
/** librdkafka's default queue.buffering.max.messages: the widest window its queue takes */
const LIBRDKAFKA_QUEUE_MESSAGES = 100_000;
/** librdkafka's own batch.num.messages, which jobcompd replaced with its page (librdkafka-settings.ts) */
const LIBRDKAFKA_BATCH_MESSAGES = 10_000;

/** Payload i: the captured kinds, job id 1 + i (made from nine serialized templates: a million serializations would dominate). */
export function payloadMaker(): (i: number) => Buffer {
  const body = esBodyOf(0);
  const templates = Array.from({ length: 9 }, (_, k) => payloadOf(body(k)).toString('latin1').replace(/^\{"jobid":\d+,/, ''));
  return (i) => Buffer.from(`{"jobid":${1 + i},${templates[i % 9] as string}`, 'latin1');
}

/** A state directory holding `n` undelivered records, committed the way the daemon commits them. */
async function prepareBacklog(n: number, payload: (i: number) => Buffer): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'jobcompd-bench-backlog-'));
  const outbox = Outbox.open(dir);
  const t0 = Date.now();
  for (let start = 0; start < n; start += FILL_BATCH) {
    const batch: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(n, start + FILL_BATCH); i++) {
      batch.push(outbox.append({ event: JobEvent.finish, jobId: 1 + i, payload: payload(i), source: 'http', receivedAt: Date.now() }));
    }
    await Promise.all(batch);
  }
  outbox.close();
  note(`backlog of ${n} records written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}

function copyState(from: string): string {
  const to = mkdtempSync(join(tmpdir(), 'jobcompd-bench-state-'));
  cpSync(from, to, { recursive: true });
  return to;
}

/**
 * The drain's state-file work alone, in this process, on a copy of the backlog: the
 * outbox's rows read back in pages of the dispatcher's MIN_REFILL, at most `window` of them
 * "in flight", each window deleted as if all were delivered (Outbox.ack: the daemon's group
 * commit, fdatasync and checkpoints) before the next is read. No Kafka, no dispatcher.
 * Seconds, and this process's CPU seconds (every thread: the fdatasyncs too).
 */
async function stateFileAlone(template: string, n: number, window: number): Promise<{ seconds: number; cpuSeconds: number }> {
  const dir = copyState(template);
  const outbox = Outbox.open(dir);
  try {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let cursor = 0;
    for (let done = 0; done < n; ) {
      let taken = 0;
      while (taken < window) {
        const rows = outbox.pendingAfter(cursor, Math.min(MIN_REFILL, window - taken));
        const last = rows[rows.length - 1];
        if (last === undefined) break;
        for (const row of rows) outbox.ack(row.id);
        cursor = last.id;
        taken += rows.length;
      }
      if (taken === 0) throw new Error(`the state file held ${done} of its ${n} records`);
      done += taken;
      await once(outbox, 'flushed');
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    if (outbox.backlogSize !== 0) throw new Error(`${outbox.backlogSize} rows left in the state file`);
    return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  } finally {
    outbox.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Sample RSS every 100 ms until `done` resolves; the peak in kB, and the peak of its
 * anonymous part (RssAnon: the RSS less the node executable's and the libraries' pages).
 */
async function peakRssWhile(d: BenchDaemon, done: Promise<unknown>): Promise<{ peakKb: number; anonPeakKb: number }> {
  let finished = false;
  void done.finally(() => (finished = true));
  let peak = 0;
  let anonPeak = 0;
  while (!finished) {
    const now = d.rssKb();
    peak = Math.max(peak, now.rss);
    anonPeak = Math.max(anonPeak, now.anon);
    await sleep(100);
  }
  const last = d.rssKb();
  return { peakKb: Math.max(peak, last.peak), anonPeakKb: Math.max(anonPeak, last.anon) };
}

interface Run {
  startupEmptyMs: number;
  startupBacklogMs: number;
  holdPeakMb: number;
  drainSeconds: number;
  drainPeakMb: number;
  drainAnonPeakMb: number;
  drainPerSecond: number;
  drainCpuUs: number;
  drainBrokerCpuUs: number;
  drainMachineCpuUs: number;
  kcatSeconds: number;
  kcatBrokerCpuUs: number;
  kcatMachineCpuUs: number;
  /** node-rdkafka alone, window MaxInFlight / librdkafka's queue */
  aloneWindowSeconds: number;
  aloneWindowCpuUs: number;
  aloneWindowBrokerCpuUs: number;
  aloneWindowMachineCpuUs: number;
  aloneLibrdkafkaBatchSeconds: number;
  aloneSeconds: number;
  stateFileSeconds: number;
  stateFileCpuUs: number;
}

async function oneRun(broker: KafkaBroker, template: string, n: number, payloadFile: string, run: number, maxInFlight: number, ring: Buffer[]): Promise<Run> {
  const producerConf = `MaxInFlight=${maxInFlight}`;
  const topic = `backlog-${run}`;
  await broker.createTopic(topic);
  await broker.createTopic(`${topic}-kcat`);

  const empty = await BenchDaemon.start({ bootstrapServers: broker.bootstrapServers, clusterName: topic });
  const startupEmptyMs = empty.startupMs;
  await empty.stop();

  // Holding: nobody listens on the broker port, so everything stays in the state file.
  const [unreachable] = (await reserveLoopbackPorts(1)) as [number];
  const stateDir = copyState(template);
  const holding = await BenchDaemon.start({ bootstrapServers: `127.0.0.1:${unreachable}`, clusterName: topic, stateDir });
  const startupBacklogMs = holding.startupMs;
  const { peakKb: holdPeakKb } = await peakRssWhile(holding, sleep(HOLD_MS));
  await holding.stop();

  // Draining: the same file, now with the broker.
  const brokerPid = broker.pid;
  if (brokerPid === undefined) throw new Error('the broker is not running');
  /** µs per record of the broker and of the whole machine, over a phase */
  const perRecord = (cpu: PhaseCpu): { broker: number; machine: number } => ({ broker: (1e6 * cpu.brokerSeconds) / n, machine: (1e6 * cpu.machineSeconds) / n });
  const drainCpu = phaseCpu(brokerPid);
  const t0 = process.hrtime.bigint();
  const draining = await BenchDaemon.start({ bootstrapServers: broker.bootstrapServers, clusterName: topic, stateDir, producerConf });
  const delivered = draining.waitDelivered(n);
  const { peakKb: drainPeakKb, anonPeakKb: drainAnonPeakKb } = await peakRssWhile(draining, delivered);
  const drainSeconds = Number((await delivered) - t0) / 1e9;
  const drainCpuUs = (1e6 * draining.cpuSeconds()) / n;
  const drainShares = perRecord(drainCpu());
  await draining.stop();
  rmSync(stateDir, { recursive: true, force: true });

  const kcatCpu = phaseCpu(brokerPid);
  const kcatSeconds = await kcatProduce(broker.bootstrapServers, `${topic}-kcat`, payloadFile);
  const kcatShares = perRecord(kcatCpu());
  await broker.createTopic(`${topic}-alone-window`);
  await broker.createTopic(`${topic}-alone`);
  await broker.createTopic(`${topic}-alone-librdkafka-batch`);
  const aloneWindowCpu = phaseCpu(brokerPid);
  const aloneWindow = await produceWithNodeRdkafka(broker.bootstrapServers, `${topic}-alone-window`, ring, n, maxInFlight);
  const aloneWindowShares = perRecord(aloneWindowCpu());
  const aloneLibrdkafkaBatch = await produceWithNodeRdkafka(broker.bootstrapServers, `${topic}-alone-librdkafka-batch`, ring, n, maxInFlight, `batch.num.messages=${LIBRDKAFKA_BATCH_MESSAGES}\n`);
  const alone = await produceWithNodeRdkafka(broker.bootstrapServers, `${topic}-alone`, ring, n, LIBRDKAFKA_QUEUE_MESSAGES);
  const stateFile = await stateFileAlone(template, n, maxInFlight);
  const r = {
    startupEmptyMs,
    startupBacklogMs,
    holdPeakMb: holdPeakKb / 1024,
    drainSeconds,
    drainPeakMb: drainPeakKb / 1024,
    drainAnonPeakMb: drainAnonPeakKb / 1024,
    drainPerSecond: n / drainSeconds,
    drainCpuUs,
    drainBrokerCpuUs: drainShares.broker,
    drainMachineCpuUs: drainShares.machine,
    kcatSeconds,
    kcatBrokerCpuUs: kcatShares.broker,
    kcatMachineCpuUs: kcatShares.machine,
    aloneWindowSeconds: aloneWindow.seconds,
    aloneWindowCpuUs: (1e6 * aloneWindow.cpuSeconds) / n,
    aloneWindowBrokerCpuUs: aloneWindowShares.broker,
    aloneWindowMachineCpuUs: aloneWindowShares.machine,
    aloneLibrdkafkaBatchSeconds: aloneLibrdkafkaBatch.seconds,
    aloneSeconds: alone.seconds,
    stateFileSeconds: stateFile.seconds,
    stateFileCpuUs: (1e6 * stateFile.cpuSeconds) / n,
  };
  note(`backlog run ${run}: ${JSON.stringify(r)}`);
  return r;
}

export interface BacklogFigures {
  records: number;
  runs: number;
  startupEmptyMs: Spread;
  startupBacklogMs: Spread;
  holdPeakMb: Spread;
  drainSeconds: Spread;
  drainPerSecond: Spread;
  drainPeakMb: Spread;
  drainAnonPeakMb: Spread;
  kcatSeconds: Spread;
  kcatPerSecond: Spread;
  maxInFlight: number;
  /** the daemon's CPU per record, from exec to the last delivery report (start-up included) */
  drainCpuUs: Spread;
  /**
   * The broker's CPU, and every process's on the machine (load generator, broker, bench), per
   * record over each phase: on a machine of `cores` cores shared by all of them, a phase
   * costing m µs of the machine per record cannot exceed cores × 1e6 / m records/s.
   */
  drainBrokerCpuUs: Spread;
  drainMachineCpuUs: Spread;
  kcatBrokerCpuUs: Spread;
  kcatMachineCpuUs: Spread;
  cores: number;
  aloneWindowPerSecond: Spread;
  aloneWindowCpuUs: Spread;
  aloneWindowBrokerCpuUs: Spread;
  aloneWindowMachineCpuUs: Spread;
  /** the same window with librdkafka's own batch.num.messages (before 2026-12-05's sixth session) */
  aloneLibrdkafkaBatchPerSecond: Spread;
  alonePerSecond: Spread;
  /** the drain's state-file work alone (stateFileAlone) */
  stateFilePerSecond: Spread;
  stateFileCpuUs: Spread;
}

/** maxInFlight: the daemon's MaxInFlight for the drain; undefined: its default */
export async function backlogBench(opts: { records: number; runs: number; maxInFlight?: number }): Promise<BacklogFigures> {
  const maxInFlight = opts.maxInFlight ?? defaultDaemonConfig().producer.maxInFlight;
  const payload = payloadMaker();
  const ring = Array.from({ length: Math.min(RING, opts.records) }, (_, i) => payload(i));
  const template = await prepareBacklog(opts.records, payload);
  const payloadFile = writePayloadFile(Array.from({ length: opts.records }, (_, i) => payload(i)));
  const broker = await startBroker();
  try {
    const runs: Run[] = [];
    for (let i = 1; i <= opts.runs; i++) runs.push(await oneRun(broker, template, opts.records, payloadFile, i, maxInFlight, ring));
    const of = (f: (r: Run) => number): Spread => spread(runs.map(f));
    return {
      records: opts.records,
      runs: opts.runs,
      startupEmptyMs: of((r) => r.startupEmptyMs),
      startupBacklogMs: of((r) => r.startupBacklogMs),
      holdPeakMb: of((r) => r.holdPeakMb),
      drainSeconds: of((r) => r.drainSeconds),
      drainPerSecond: of((r) => r.drainPerSecond),
      drainPeakMb: of((r) => r.drainPeakMb),
      drainAnonPeakMb: of((r) => r.drainAnonPeakMb),
      kcatSeconds: of((r) => r.kcatSeconds),
      kcatPerSecond: of((r) => opts.records / r.kcatSeconds),
      maxInFlight,
      drainCpuUs: of((r) => r.drainCpuUs),
      drainBrokerCpuUs: of((r) => r.drainBrokerCpuUs),
      drainMachineCpuUs: of((r) => r.drainMachineCpuUs),
      kcatBrokerCpuUs: of((r) => r.kcatBrokerCpuUs),
      kcatMachineCpuUs: of((r) => r.kcatMachineCpuUs),
      cores: cpus().length,
      aloneWindowPerSecond: of((r) => opts.records / r.aloneWindowSeconds),
      aloneWindowCpuUs: of((r) => r.aloneWindowCpuUs),
      aloneWindowBrokerCpuUs: of((r) => r.aloneWindowBrokerCpuUs),
      aloneWindowMachineCpuUs: of((r) => r.aloneWindowMachineCpuUs),
      aloneLibrdkafkaBatchPerSecond: of((r) => opts.records / r.aloneLibrdkafkaBatchSeconds),
      alonePerSecond: of((r) => opts.records / r.aloneSeconds),
      stateFilePerSecond: of((r) => opts.records / r.stateFileSeconds),
      stateFileCpuUs: of((r) => r.stateFileCpuUs),
    };
  } finally {
    await broker.destroy();
    rmSync(template, { recursive: true, force: true });
    removeFileDir(payloadFile);
  }
}

/** The records/s `cores` cores allow when each record costs the machine `machineUs` µs (the median's). */
function ceiling(cores: number, machineUs: Spread): string {
  return Math.round((cores * 1e6) / machineUs.median).toLocaleString('en');
}

export function backlogTable(f: BacklogFigures): string {
  const s = (x: Spread, digits = 0): string => `${x.median.toFixed(digits)} (${x.min.toFixed(digits)}-${x.max.toFixed(digits)})`;
  return [
    `| ${f.records.toLocaleString('en')} records in the state file, ${f.runs} runs | median (min-max) |`,
    '|---|---|',
    `| start-up, empty state file (exec to ready), ms | ${s(f.startupEmptyMs)} |`,
    `| start-up, with the backlog, ms | ${s(f.startupBacklogMs)} |`,
    `| peak RSS holding the backlog (broker unreachable), MB | ${s(f.holdPeakMb)} |`,
    `| drain: all delivered, s | ${s(f.drainSeconds, 1)} |`,
    `| drain: records/s | ${s(f.drainPerSecond)} |`,
    `| peak RSS while draining, MB | ${s(f.drainPeakMb)} |`,
    `| of which anonymous memory at its peak (RssAnon: RSS less the node executable's and the libraries' file-backed pages), MB | ${s(f.drainAnonPeakMb)} |`,
    `| kcat -P of the same payloads, s | ${s(f.kcatSeconds, 1)} |`,
    `| kcat -P records/s | ${s(f.kcatPerSecond)} |`,
    `| drain / kcat (records/s) | ${(f.drainPerSecond.median / f.kcatPerSecond.median).toFixed(2)} |`,
    `| drain: daemon CPU per record (every thread, start-up included), µs | ${s(f.drainCpuUs, 1)} |`,
    `| drain: the broker's CPU per record, µs | ${s(f.drainBrokerCpuUs, 1)} |`,
    `| drain: the whole machine's CPU per record (every process), µs; the most its ${f.cores} cores allow at that cost, records/s | ${s(f.drainMachineCpuUs, 1)}; ${ceiling(f.cores, f.drainMachineCpuUs)} |`,
    `| kcat -P: the broker's CPU per record, µs | ${s(f.kcatBrokerCpuUs, 1)} |`,
    `| kcat -P: the whole machine's CPU per record, µs; the most its cores allow at that cost, records/s | ${s(f.kcatMachineCpuUs, 1)}; ${ceiling(f.cores, f.kcatMachineCpuUs)} |`,
    `| node-rdkafka alone, at most MaxInFlight (${f.maxInFlight.toLocaleString('en')}) undelivered, records/s | ${s(f.aloneWindowPerSecond)} |`,
    `| node-rdkafka alone, at most MaxInFlight undelivered: CPU per record (its process), µs | ${s(f.aloneWindowCpuUs, 1)} |`,
    `| node-rdkafka alone, at most MaxInFlight undelivered: the broker's CPU per record, µs | ${s(f.aloneWindowBrokerCpuUs, 1)} |`,
    `| node-rdkafka alone, at most MaxInFlight undelivered: the whole machine's CPU per record, µs; the most its cores allow at that cost, records/s | ${s(f.aloneWindowMachineCpuUs, 1)}; ${ceiling(f.cores, f.aloneWindowMachineCpuUs)} |`,
    `| node-rdkafka alone, at most MaxInFlight undelivered, with librdkafka's batch.num.messages (${LIBRDKAFKA_BATCH_MESSAGES.toLocaleString('en')}) instead of jobcompd's, records/s | ${s(f.aloneLibrdkafkaBatchPerSecond)} |`,
    `| node-rdkafka alone, at most ${LIBRDKAFKA_QUEUE_MESSAGES.toLocaleString('en')} undelivered (librdkafka's queue), records/s | ${s(f.alonePerSecond)} |`,
    `| drain / node-rdkafka alone at the same window (records/s) | ${(f.drainPerSecond.median / f.aloneWindowPerSecond.median).toFixed(2)} |`,
    `| the drain's state-file work alone (rows read back in pages, deleted once "delivered", no Kafka), records/s | ${s(f.stateFilePerSecond)} |`,
    `| the drain's state-file work alone: CPU per record (every thread), µs | ${s(f.stateFileCpuUs, 1)} |`,
    `| node-rdkafka alone at the window and the state-file work alone, summed: CPU per record, µs (the least a drain doing both costs its process) | ${(f.aloneWindowCpuUs.median + f.stateFileCpuUs.median).toFixed(1)} |`,
  ].join('\n');
}

if (require.main === module) {
  const maxInFlight = option('max-in-flight', 0);
  const opts = { records: option('records', 1_000_000), runs: option('runs', 3), maxInFlight: maxInFlight > 0 ? maxInFlight : undefined };
  runBench(async () => {
    const figures = await backlogBench(opts);
    process.stdout.write(`${backlogTable(figures)}\n`);
    // a run with another MaxInFlight must not replace the figures docs/benchmarks.md quotes
    note(`saved ${saveResult(opts.maxInFlight === undefined ? 'backlog' : `backlog-max-in-flight-${opts.maxInFlight}`, figures)}`);
  });
}
