// The columns of the state file's tables (schema.ts), named once for every query that
// reads or writes rows: the outbox itself and repair-state.

/** Column expressions, aliased to the property names of the row types in outbox.ts. */
const COLUMN = {
  id: 'id',
  event: 'event',
  jobId: 'job_id AS jobId',
  payload: 'payload',
  raw: 'raw',
  source: 'source',
  receivedAt: 'received_at AS receivedAt',
  attempts: 'attempts',
  quarantinedAt: 'quarantined_at AS quarantinedAt',
  reasonCode: 'reason_code AS reasonCode',
  reason: 'reason',
} as const;

function select(...columns: (keyof typeof COLUMN)[]): string {
  return columns.map((c) => COLUMN[c]).join(', ');
}

/** An OutboxRow: what the dispatcher produces. */
export const OUTBOX_ROW = select('id', 'event', 'jobId', 'payload', 'receivedAt', 'attempts');
/** An outbox row as repair-state carries it over to a fresh file. */
export const OUTBOX_RECOVERABLE = select('id', 'event', 'jobId', 'payload', 'source', 'receivedAt');
/** A QuarantineRow. */
export const QUARANTINE_ROW = select('id', 'event', 'jobId', 'payload', 'raw', 'source', 'receivedAt', 'quarantinedAt', 'reasonCode', 'reason');

/** INSERT INTO outbox (...): in the order of NewRecord's values. */
export const OUTBOX_INSERT = 'event, job_id, payload, source, received_at';
/** INSERT INTO quarantine (...). */
export const QUARANTINE_INSERT = 'event, job_id, payload, raw, source, received_at, quarantined_at, reason_code, reason';
