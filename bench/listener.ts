// The Kafka listener (docs/kafka-listener.md): one payload file produced by kcat -P
//   (a) to jobcompd's listener, which commits every record (fdatasync) before it answers
//       the produce request, then publishes it upstream to the broker;
//   (b) straight to the same broker (no durability: the ceiling);
// in the same run, with the same client and settings both ways. For (a): the rate at which
// records are acknowledged to the producer (kcat exits once every record has its answer)
// and the rate at which they arrive upstream (the daemon's delivered count), the daemon's
// CPU per record (/proc, every thread) and its peak RSS (VmHWM; a fresh daemon per run).
//
//   node dist/bench/listener.js [--records 500000] [--runs 3]
//
// kcat runs with librdkafka's defaults, which are what jobcomp/kafka runs with (it sets
// nothing): acks=all, linger.ms=5, no compression (what docs/kafka-listener.md advises on
// loopback), no idempotence; plus kcatProduce's larger local queue, so that kcat never
// waits for room in it.

import { reserveLoopbackPorts } from '../tools/harness-common';
import type { KafkaBroker } from '../tools/kafka/broker';
import { payloadMaker } from './backlog';
import { BenchDaemon, kcatProduce, note, option, removeFileDir, runBench, saveResult, spread, startBroker, writePayloadFile, type Spread } from './lib';

interface Run {
  /** kcat's start to its exit: every record acknowledged by the listener */
  ackSeconds: number;
  /** kcat's start to the last upstream delivery report */
  upstreamSeconds: number;
  /** the daemon's CPU seconds from kcat's start to its exit, and to the last delivery */
  cpuAckSeconds: number;
  cpuSeconds: number;
  peakRssKb: number;
  /** the state file's transactions until every record was acknowledged (new records and deletions of delivered ones) */
  transactionsAck: number;
  /** kcat straight to the broker */
  directSeconds: number;
}

async function oneRun(broker: KafkaBroker, payloadFile: string, n: number, run: number): Promise<Run> {
  const topic = `listener-${run}`;
  await broker.createTopic(topic);
  await broker.createTopic(`${topic}-direct`);
  const [port] = (await reserveLoopbackPorts(1)) as [number];
  const daemon = await BenchDaemon.start({ bootstrapServers: broker.bootstrapServers, clusterName: topic, kafkaListen: `127.0.0.1:${port}` });
  let r: Omit<Run, 'directSeconds'>;
  try {
    const cpu0 = daemon.cpuSeconds();
    const t0 = process.hrtime.bigint();
    const ackSeconds = await kcatProduce(`127.0.0.1:${port}`, topic, payloadFile);
    const cpuAck = daemon.cpuSeconds();
    const transactionsAck = (await daemon.metrics()).get('jobcompd_state_transaction_seconds_count') ?? NaN;
    const upstreamSeconds = Number((await daemon.waitDelivered(n)) - t0) / 1e9;
    r = { ackSeconds, upstreamSeconds, cpuAckSeconds: cpuAck - cpu0, cpuSeconds: daemon.cpuSeconds() - cpu0, peakRssKb: daemon.rssKb().peak, transactionsAck };
  } finally {
    await daemon.stop();
  }
  const directSeconds = await kcatProduce(broker.bootstrapServers, `${topic}-direct`, payloadFile);
  note(
    `listener run ${run}: acknowledged ${(n / r.ackSeconds).toFixed(0)}/s, upstream ${(n / r.upstreamSeconds).toFixed(0)}/s, ` +
      `${((1e6 * r.cpuSeconds) / n).toFixed(1)} µs CPU/record, ${r.transactionsAck} transactions until acknowledged, peak RSS ${(r.peakRssKb / 1024).toFixed(0)} MB; kcat direct ${(n / directSeconds).toFixed(0)}/s`,
  );
  return { ...r, directSeconds };
}

export interface ListenerFigures {
  records: number;
  runs: number;
  ackPerSecond: Spread;
  upstreamPerSecond: Spread;
  directPerSecond: Spread;
  /** median / median */
  ackRatio: number;
  upstreamRatio: number;
  cpuAckUsPerRecord: Spread;
  cpuUsPerRecord: Spread;
  peakRssMb: Spread;
  /** records per state-file transaction until acknowledged (deletions of delivered rows share them) */
  recordsPerTransaction: Spread;
}

export async function listenerBench(opts: { records: number; runs: number }): Promise<ListenerFigures> {
  const payload = payloadMaker();
  const payloadFile = writePayloadFile(Array.from({ length: opts.records }, (_, i) => payload(i)));
  const broker = await startBroker();
  try {
    const runs: Run[] = [];
    for (let i = 1; i <= opts.runs; i++) runs.push(await oneRun(broker, payloadFile, opts.records, i));
    const of = (f: (r: Run) => number): Spread => spread(runs.map(f));
    const ackPerSecond = of((r) => opts.records / r.ackSeconds);
    const upstreamPerSecond = of((r) => opts.records / r.upstreamSeconds);
    const directPerSecond = of((r) => opts.records / r.directSeconds);
    return {
      records: opts.records,
      runs: opts.runs,
      ackPerSecond,
      upstreamPerSecond,
      directPerSecond,
      ackRatio: ackPerSecond.median / directPerSecond.median,
      upstreamRatio: upstreamPerSecond.median / directPerSecond.median,
      cpuAckUsPerRecord: of((r) => (1e6 * r.cpuAckSeconds) / opts.records),
      cpuUsPerRecord: of((r) => (1e6 * r.cpuSeconds) / opts.records),
      peakRssMb: of((r) => r.peakRssKb / 1024),
      recordsPerTransaction: of((r) => opts.records / r.transactionsAck),
    };
  } finally {
    await broker.destroy();
    removeFileDir(payloadFile);
  }
}

export function listenerTable(f: ListenerFigures): string {
  const s = (x: Spread, digits = 0): string => `${x.median.toFixed(digits)} (${x.min.toFixed(digits)}-${x.max.toFixed(digits)})`;
  return [
    `| ${f.records.toLocaleString('en')} records by kcat -P, ${f.runs} runs | median (min-max) |`,
    '|---|---|',
    `| (a) through the listener: acknowledged to the producer, records/s | ${s(f.ackPerSecond)} |`,
    `| (a) through the listener: arrived upstream, records/s | ${s(f.upstreamPerSecond)} |`,
    `| (b) straight to the broker, records/s | ${s(f.directPerSecond)} |`,
    `| (a) / (b): acknowledged, arrived upstream | ${f.ackRatio.toFixed(2)}, ${f.upstreamRatio.toFixed(2)} |`,
    `| daemon CPU per record until acknowledged, µs | ${s(f.cpuAckUsPerRecord, 1)} |`,
    `| daemon CPU per record until arrived upstream, µs | ${s(f.cpuUsPerRecord, 1)} |`,
    `| daemon peak RSS, MB | ${s(f.peakRssMb)} |`,
    `| records per state-file transaction until acknowledged | ${s(f.recordsPerTransaction)} |`,
  ].join('\n');
}

if (require.main === module) {
  const opts = { records: option('records', 500_000), runs: option('runs', 3) };
  runBench(async () => {
    const figures = await listenerBench(opts);
    process.stdout.write(`${listenerTable(figures)}\n`);
    note(`saved ${saveResult('listener', figures)}`);
  });
}
