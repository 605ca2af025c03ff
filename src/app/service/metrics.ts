// Prometheus metrics (prom-client). Counters mirror the components' own counts at scrape
// time; latency histograms are fed by their events. Every name is listed in
// docs/operations.md.

import type * as PromClient from 'prom-client';
import type { AcceptResult, Ingest, SourceName } from '../../ingest';
import type { KafkaListener } from '../../sources/kafka-listener';
import type { SocketSource } from '../../sources/socket-source';
import type { Publisher } from '../publisher';

// prom-client's modules one by one, not its index: the index also loads its Pushgateway
// (node:https, node:tls, node:zlib) and its cluster aggregator, 3 MB of every daemon's memory
// for code no daemon runs (docs/benchmark-rounds.md#this-round-2026-12-07-nineteenth-session-what-the-daemon-loads).
// These paths are the files of the release package.json pins.
const Registry = require('prom-client/lib/registry') as typeof PromClient.Registry;
const Counter = require('prom-client/lib/counter') as typeof PromClient.Counter;
const Gauge = require('prom-client/lib/gauge') as typeof PromClient.Gauge;
const Histogram = require('prom-client/lib/histogram') as typeof PromClient.Histogram;
const collectDefaultMetrics = require('prom-client/lib/defaultMetrics') as typeof PromClient.collectDefaultMetrics;

const SOURCES: SourceName[] = ['http', 'socket', 'spool', 'replay', 'kafka'];
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function createMetrics(publisher: Publisher, ingest: Ingest, kafkaListener: KafkaListener | undefined, socket: SocketSource | undefined): PromClient.Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'jobcompd_' });
  const { outbox, dispatcher } = publisher;

  /** A counter whose value is read from elsewhere when scraped. */
  const mirror = (name: string, help: string, value: () => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(value());
      },
    });
  };
  const gauge = (name: string, help: string, value: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value());
      },
    });
  };

  new Counter({
    name: 'jobcompd_records_received_total',
    help: 'Inputs received, by source (http, socket, spool, replay, kafka)',
    labelNames: ['source'],
    registers: [registry],
    collect() {
      this.reset();
      for (const source of SOURCES) this.labels(source).inc(ingest.counters.received[source]);
    },
  });
  // counted here and handed to prom-client when scraped: labels().inc() per record was a
  // measurable part of a record's CPU (docs/benchmarks.md)
  const outcomes = Object.fromEntries(SOURCES.map((source) => [source, { stored: 0, duplicate: 0, quarantined: 0, ignored: 0 }])) as Record<SourceName, Record<AcceptResult['kind'], number>>;
  new Counter({
    name: 'jobcompd_records_accepted_total',
    help: 'Inputs accepted since start, by source and outcome (stored, duplicate, quarantined, ignored)',
    labelNames: ['source', 'outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const source of SOURCES) {
        for (const [outcome, n] of Object.entries(outcomes[source])) if (n > 0) this.labels(source, outcome).inc(n);
      }
    },
  });
  const commitLatency = new Histogram({
    name: 'jobcompd_commit_latency_seconds',
    help: 'From receiving a record to its commit in the state file (what a source waits for its answer)',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  ingest.on('accepted', (result: AcceptResult, source: SourceName, seconds: number) => {
    outcomes[source][result.kind] += 1;
    if (result.kind === 'stored') commitLatency.observe(seconds);
  });

  const transaction = new Histogram({
    name: 'jobcompd_state_transaction_seconds',
    help: 'Duration of one group-commit transaction of the state file (fsync included)',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  outbox.on('flushed', (seconds: number) => transaction.observe(seconds));

  const deliveryLatency = new Histogram({
    name: 'jobcompd_delivery_latency_seconds',
    help: 'From receiving a record to the delivery report that confirms it',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  dispatcher.on('delivered', (_row: unknown, seconds: number) => deliveryLatency.observe(seconds));

  if (socket !== undefined) {
    mirror('jobcompd_hook_journal_answered_total', 'Hook records answered from the hook journal (before their state file transaction), since start', () => socket.counters.journalAnswered);
    mirror('jobcompd_hook_journal_recovered_total', 'Hook records an earlier run left in the hook journal, committed at this start', () => socket.counters.journalRecovered);
  }
  mirror('jobcompd_records_delivered_total', 'Records Kafka confirmed, since start', () => dispatcher.counters.delivered);
  mirror('jobcompd_records_produced_total', 'Produce calls librdkafka accepted, since start (retries included)', () => dispatcher.counters.produced);
  mirror('jobcompd_delivery_retries_total', 'Failed delivery attempts that will be retried, since start', () => dispatcher.counters.retried);
  mirror('jobcompd_records_quarantined_total', 'Records Kafka refused for good, moved to quarantine, since start', () => dispatcher.counters.quarantined);

  let stats = outbox.stats();
  let statsAt = 0;
  const fresh = (): ReturnType<typeof outbox.stats> => {
    // several gauges read the same query; once per scrape is enough
    if (Date.now() - statsAt > 500) {
      stats = outbox.stats();
      statsAt = Date.now();
    }
    return stats;
  };
  gauge('jobcompd_backlog_records', 'Records in the state file waiting for Kafka', () => fresh().backlog);
  gauge('jobcompd_oldest_pending_age_seconds', 'Age of the oldest record waiting for Kafka (0 when none)', () => {
    const t = fresh().oldestReceivedAt;
    return t === undefined ? 0 : (Date.now() - t) / 1000;
  });
  gauge('jobcompd_quarantine_records', 'Records and inputs in the quarantine table', () => fresh().quarantined);
  mirror('jobcompd_records_deduplicated_total', 'Records received again within DedupWindow and not published again (all time)', () => fresh().deduplicated);
  gauge('jobcompd_in_flight_records', 'Records handed to librdkafka and not yet confirmed', () => dispatcher.inFlightCount);
  gauge('jobcompd_retrying_records', 'Records waiting for their next delivery attempt', () => dispatcher.retryingCount);
  gauge('jobcompd_state_commit_failing', '1 while the last commit to the state file failed (sources are told to retry)', () => (outbox.lastCommitFailed ? 1 : 0));
  gauge('jobcompd_producer_ready', '1 when the producer is connected and producing', () => (publisher.producerState === 'ready' ? 1 : 0));

  new Gauge({
    name: 'jobcompd_kafka_broker_up',
    help: 'Per broker: 1 when librdkafka reports its connection UP (from statistics.interval.ms)',
    labelNames: ['broker'],
    registers: [registry],
    collect() {
      this.reset();
      for (const b of publisher.producerStats?.brokers ?? []) this.labels(b.name).set(b.state === 'UP' ? 1 : 0);
    },
  });
  new Counter({
    name: 'jobcompd_kafka_listener_refusals_total',
    help: 'Kafka listener: error answers by Kafka error name, and connections it closed by jobcompd code (E_KAFKA_*)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of kafkaListener?.refusals ?? []) this.labels(reason).inc(n);
    },
  });
  gauge('jobcompd_librdkafka_queued_messages', "Messages in librdkafka's queues (from its statistics)", () => publisher.producerStats?.queuedMessages ?? 0);
  return registry;
}
