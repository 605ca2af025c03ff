// What to do with a record when librdkafka reports an error for it, at produce() time or
// in its delivery report. The plugin drops everything but timeouts (docs/delivery-guarantees.md);
// jobcompd never drops: it retries, waits, or quarantines.

import { CODES, type LibrdKafkaError } from 'node-rdkafka';

const E = CODES.ERRORS;

// node-rdkafka's native binding; its typings do not declare this module.
const native = require('node-rdkafka/librdkafka') as { err2str(code: number): string };

export type Disposition =
  /** librdkafka's queue is full: wait for delivery reports, then produce the same record again */
  | 'backpressure'
  /** Kafka will never take this record as it is: move it to quarantine */
  | 'quarantine'
  /** the producer instance is unusable (fatal error): replace it, retry the record */
  | 'restart-producer'
  /** anything else, including message timeouts: keep the record and retry with backoff */
  | 'retry';

/**
 * Refusals that depend on the record or its topic, not on the moment: retrying them
 * cannot succeed until someone changes something, so they are quarantined (and can be
 * replayed with `jobcompd replay --quarantined` once fixed).
 */
const PERMANENT = new Set<number>([
  E.ERR_MSG_SIZE_TOO_LARGE,
  E.ERR_INVALID_MSG_SIZE,
  E.ERR_RECORD_LIST_TOO_LARGE,
  E.ERR_INVALID_RECORD,
  E.ERR_UNKNOWN_TOPIC_OR_PART,
  E.ERR__UNKNOWN_TOPIC,
  E.ERR__UNKNOWN_PARTITION,
  E.ERR_TOPIC_EXCEPTION,
  E.ERR_TOPIC_AUTHORIZATION_FAILED,
  E.ERR_CLUSTER_AUTHORIZATION_FAILED,
  E.ERR_POLICY_VIOLATION,
]);

export function dispositionOf(code: number): Disposition {
  if (code === E.ERR__QUEUE_FULL) return 'backpressure';
  if (code === E.ERR__FATAL) return 'restart-producer';
  if (PERMANENT.has(code)) return 'quarantine';
  return 'retry';
}

const NAMES = new Map<number, string>(Object.entries(E).map(([name, code]) => [code, name]));

/** librdkafka's error string ("Local: Message timed out"), lower case -> error code. */
const CODE_BY_TEXT = new Map<string, number>([...NAMES.keys()].map((code) => [native.err2str(code).toLowerCase(), code]));

/**
 * The librdkafka error code of an error node-rdkafka hands us. Delivery reports and client
 * events arrive with code -1 and only librdkafka's text, split into origin ("local",
 * "broker") and a lower-cased message; the text identifies the code.
 */
export function librdkafkaCode(err: Pick<LibrdKafkaError, 'code' | 'message' | 'origin'>): number {
  if (err.code !== E.ERR_UNKNOWN) return err.code;
  return CODE_BY_TEXT.get(`${err.origin}: ${err.message}`.toLowerCase()) ?? E.ERR_UNKNOWN;
}

/** "ERR_MSG_SIZE_TOO_LARGE" for 10; stable strings for logs, status and the quarantine table. */
export function errorCodeName(code: number): string {
  return NAMES.get(code) ?? `ERR_${code}`;
}
