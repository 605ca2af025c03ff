// Seeded fuzzing of the Kafka listener of the RUNNING daemon (issue 13, test 4): a forked
// jobcompd with [kafka] Listen on and a real broker upstream, fed over raw TCP by the
// hostile clients of hostile-kafka.ts: bad frame sizes, bad CRCs, bad varints, truncated
// batches, lying and huge record counts, decompression bombs, unknown APIs and versions,
// garbage after a valid header, connections closed mid-frame, and bursts of connections up
// to and beyond MaxConnections; every 10th case, on its own connection, a valid Produce
// request of an idempotent producer, its sequence numbers in order.
//
// What must hold (docs/kafka-listener.md#refusals): each malformed case gets the protocol's
// error answer, or its connection closed; the daemon never exits; its RSS stays under
// RSS_LIMIT_KB; jobcompd_kafka_listener_refusals_total counts every refusal, by reason, and
// never E_KAFKA_INTERNAL; every valid record is delivered upstream exactly once, nothing else.

import { consumeAll } from '../../tools/kafka/consume';
import { KafkaErrorCode } from '../../src/kafka-protocol/api-keys';
import { KafkaProtocolCodes } from '../../src/errors';
import { useBroker } from '../helpers/broker-suite';
import { freePort, type DaemonProcess } from '../helpers/daemon';
import { produceRequest, readProduceResponse, recordBatch } from '../helpers/kafka-requests';
import { commonFailures, fuzzCases, fuzzSeed, reportFuzzRun, rssKb, settledStatus, startFuzzRun, stopFuzzRun, tally } from '../hostile/fuzz-kit';
import {
  acknowledgedValues,
  caseProblems,
  expectedRefusals,
  MAX_CONNECTIONS,
  MAX_REQUEST_BYTES,
  refusalsMatch,
  roundTrip,
  runHostileCases,
  slowest,
  TOPIC,
  validRecords,
} from './hostile-kafka';

jest.setTimeout(1_200_000);

const SEED = fuzzSeed('kafka-listener/fuzz-daemon', 0x6b6c6664);
const CASES = fuzzCases(10_000);
/**
 * The daemon alone runs at 100-150 MB here. What the listener may hold for clients is
 * bounded by its limits (docs/kafka-listener.md#refusals): MaxConnections (16) x (one
 * unfinished frame + 16 requests handled at once) x MaxRequestBytes (1 MiB), the records
 * of a request at most MaxRequestBytes decompressed with 64 bytes charged per record, so
 * at most ~15,000 record objects per request. This fuzzer keeps at most 8 cases in flight
 * (a pipelined case: 16 requests handled at once): far below that worst case, so 400 MB
 * (the other fuzzers' bound) leaves room for the collector and still catches growth per
 * case over 10,000; rssMbAfterEach1000 in the report shows the trend.
 */
const RSS_LIMIT_KB = 400 * 1024;

const suite = useBroker({ autoCreateTopics: true });

async function scrapeRefusals(adminUrl: string): Promise<Map<string, number>> {
  const body = await (await fetch(`${adminUrl}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of body.matchAll(/^jobcompd_kafka_listener_refusals_total\{reason="([^"]+)"\} (\d+)$/gm)) out.set(m[1] as string, Number(m[2]));
  return out;
}

function countBy(values: readonly Buffer[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of values) out.set(v.toString('latin1'), (out.get(v.toString('latin1')) ?? 0) + 1);
  return out;
}

it(`survives ${CASES} hostile Kafka connections, answers or closes each, counts the refusals, and delivers every valid record once`, async () => {
  const kafkaPort = await freePort();
  const startDaemon = (o: Partial<Parameters<typeof suite.daemon>[0]> = {}): Promise<DaemonProcess> =>
    suite.daemon({ clusterName: 'fuzzkafka', kafkaConf: `Listen=127.0.0.1:${kafkaPort}\nMaxConnections=${MAX_CONNECTIONS}\nMaxRequestBytes=${MAX_REQUEST_BYTES}`, ...o });
  const run = await startFuzzRun(startDaemon);
  const { started, rss, sup } = run;

  /** MB after each 1,000 cases: flat once warm if nothing grows per case */
  const rssByChunk: number[] = [];
  const hostile = await runHostileCases(SEED, CASES, kafkaPort, async (index, exchange, closeExpected) => {
    // a close nobody expected may be the daemon dying: the supervisor then waits a moment for its exit
    const out = await sup.run(index, exchange, (x) => x.closedByServer && !closeExpected);
    return out.value ?? `client error: ${out.error ?? '?'}${out.died ? ' (the daemon died)' : ''}`;
  }, () => rssByChunk.push(Math.round((rssKb(sup.daemon.proc.pid as number) ?? 0) / 1024)));
  const fuzzMs = Date.now() - started;
  const d = await sup.ensureAlive();

  // The listener still serves a well-behaved producer.
  const probe = validRecords(SEED, CASES + 1, 3);
  const probeAnswer = await roundTrip(kafkaPort, [produceRequest(1, TOPIC, recordBatch(probe))]);
  expect(probeAnswer.answer && readProduceResponse(probeAnswer.answer, 7).partitions[0]?.errorCode).toBe(KafkaErrorCode.none);

  const problems = caseProblems(hostile);
  // Every valid record acknowledged, upstream exactly once; nothing else.
  const expected = countBy([...acknowledgedValues(hostile), ...probe.map((p) => p.value as Buffer)]);
  const expectedTotal = [...expected.values()].reduce((a, b) => a + b, 0);
  const status = await settledStatus(d.configFile, 0, 120_000);
  const consumed = await consumeAll(suite.broker().bootstrapServers, TOPIC, { count: expectedTotal, timeoutMs: 120_000 }).catch((err: { received?: { value: Buffer | null }[]; message: string }) => {
    problems.push(`upstream: ${err.message}`);
    return err.received ?? [];
  });
  const seen = countBy(consumed.map((m) => m.value ?? Buffer.alloc(0)));
  for (const [v, n] of seen) if (n !== (expected.get(v) ?? 0)) problems.push(`upstream: ${v.slice(0, 120)} arrived ${n} times, expected ${expected.get(v) ?? 0}`);
  for (const [v] of expected) if (!seen.has(v)) problems.push(`upstream: ${v.slice(0, 120)} never arrived`);
  if (status.delivered !== expectedTotal) problems.push(`status says ${status.delivered} delivered, expected ${expectedTotal} (the valid records, nothing else)`);
  if (status.quarantined !== 0) problems.push(`status says ${status.quarantined} quarantined, expected 0`);

  // Every refusal counted, by reason; none of them an internal error.
  const refusals = await scrapeRefusals(d.adminUrl);
  const wanted = expectedRefusals(hostile);
  const sorted = (m: Map<string, number>): Record<string, number> => Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)));
  if (sup.crashes.length === 0 && !refusalsMatch(refusals, wanted)) {
    problems.push(`jobcompd_kafka_listener_refusals_total ${JSON.stringify(sorted(refusals))}, expected ${wanted.exact ? '' : 'at least '}${JSON.stringify(sorted(wanted.counts))}`);
  }
  if (refusals.has(KafkaProtocolCodes.internal)) problems.push(`connections closed for an internal error: ${JSON.stringify(d.logs.filter((l) => l.code === KafkaProtocolCodes.internal).slice(0, 3))}`);

  const alive = stopFuzzRun(run, d);
  const report = {
    seed: SEED,
    cases: CASES,
    fuzzSeconds: fuzzMs / 1000,
    casesPerSecond: Math.round(CASES / (fuzzMs / 1000)),
    totalSeconds: (Date.now() - started) / 1000,
    kinds: tally(hostile.results.map((r) => r.c.kind)),
    outcomes: tally(hostile.results.map((r) => `${r.c.expect.type}: ${r.outcome}`)),
    slowestAnswers: slowest(hostile),
    burstsRefused: hostile.bursts.map((b) => b.refused),
    refusals: sorted(refusals),
    valid: { requests: hostile.results.filter((r) => r.c.expect.type === 'valid').length, records: expectedTotal, delivered: status.delivered },
    crashes: sup.crashes.length,
    rss: rss.report,
    rssMbAfterEach1000: rssByChunk,
    problems: problems.length,
  };
  const failures = commonFailures({ culprits: [], sup, alive, problems, missingKnown: [], backlog: status.backlog, rss, rssLimitKb: RSS_LIMIT_KB });
  reportFuzzRun('kafka-listener/fuzz-daemon', report, failures);
});
