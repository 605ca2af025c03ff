// What `jobcompd status` shows, built the same way whether the numbers come from the
// running daemon or straight from the state file.

import type { OutboxStats, RecordedErrors } from '../outbox/outbox';
import { eventName } from '../record/job-record';
import type { BrokerState } from '../producer/kafka-producer';

export interface ProducerStatus {
  state: string;
  lastError: string | null;
  inFlight: number;
  retrying: number;
  topics: { finish: string; start: string };
  /** from librdkafka's latest statistics; null before the first */
  brokers: BrokerState[] | null;
}

export interface StatusReport {
  daemon: 'running' | 'not running';
  stateFile: string;
  backlog: number;
  oldestPendingAgeSeconds: number | null;
  delivered: number;
  quarantined: number;
  deduplicated: number;
  producer: ProducerStatus | null;
  /** read from the state file when no daemon runs (the daemon reports producer.lastError) */
  recordedErrors?: RecordedErrors;
}

export function buildStatus(
  stateFile: string,
  stats: OutboxStats,
  producer: ProducerStatus | null,
  now: number = Date.now(),
  recordedErrors?: RecordedErrors,
): StatusReport {
  return {
    daemon: producer ? 'running' : 'not running',
    stateFile,
    backlog: stats.backlog,
    oldestPendingAgeSeconds: stats.oldestReceivedAt === undefined ? null : Math.max(0, Math.round((now - stats.oldestReceivedAt) / 1000)),
    delivered: stats.delivered,
    quarantined: stats.quarantined,
    deduplicated: stats.deduplicated,
    producer,
    ...(recordedErrors ? { recordedErrors } : {}),
  };
}

export function formatStatus(r: StatusReport): string {
  const lines = [
    `daemon:              ${r.daemon}`,
    `state file:          ${r.stateFile}`,
    `backlog:             ${r.backlog} record(s) waiting for Kafka`,
    `oldest pending:      ${r.oldestPendingAgeSeconds === null ? '-' : `${r.oldestPendingAgeSeconds} s ago`}`,
    `delivered (total):   ${r.delivered}`,
    `quarantined:         ${r.quarantined}${r.quarantined > 0 ? '  (see docs/operations.md, "Quarantine")' : ''}`,
    `duplicates dropped:  ${r.deduplicated}`,
  ];
  if (r.producer) {
    lines.push(
      `producer:            ${r.producer.state}, ${r.producer.inFlight} in flight, ${r.producer.retrying} waiting to retry`,
      `topics:              finish -> ${r.producer.topics.finish}, start -> ${r.producer.topics.start}`,
      `brokers:             ${r.producer.brokers === null ? '(no statistics yet)' : r.producer.brokers.map((b) => `${b.name} ${b.state}`).join(', ') || '-'}`,
      `last Kafka error:    ${r.producer.lastError ?? '-'}`,
    );
  }
  const recorded = r.recordedErrors;
  if (recorded) {
    const p = recorded.pending;
    const q = recorded.quarantine;
    lines.push(
      `last Kafka error:    ${p ? `${p.error} (job ${p.jobId}, ${eventName(p.event)}, after ${p.attempts} attempt(s); from the state file)` : '-'}`,
      `last quarantined:    ${q ? `${q.code}: ${q.reason} (${q.jobId === null ? 'input not mapped' : `job ${q.jobId}`}, ${new Date(q.at).toISOString()})` : '-'}`,
    );
  }
  return lines.join('\n');
}
