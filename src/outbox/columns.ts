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
  topic: 'topic',
  key: 'msg_key AS key',
  headers: 'headers',
} as const;

function select(...columns: (keyof typeof COLUMN)[]): string {
  return columns.map((c) => COLUMN[c]).join(', ');
}

/** An OutboxRow: what the dispatcher produces. */
export const OUTBOX_ROW = select('id', 'event', 'jobId', 'payload', 'receivedAt', 'attempts', 'topic', 'key', 'headers');
/** An outbox row as repair-state carries it over to a fresh file. */
export const OUTBOX_RECOVERABLE = select('id', 'event', 'jobId', 'payload', 'source', 'receivedAt', 'topic', 'key', 'headers');
/** A QuarantineRow. */
export const QUARANTINE_ROW = select('id', 'event', 'jobId', 'payload', 'raw', 'source', 'receivedAt', 'quarantinedAt', 'reasonCode', 'reason', 'topic', 'key', 'headers');

/** INSERT INTO outbox (...): in the order of NewRecord's values. */
export const OUTBOX_INSERT = 'event, job_id, payload, source, received_at, topic, msg_key, headers';
/** INSERT INTO quarantine (...). */
export const QUARANTINE_INSERT = 'event, job_id, payload, raw, source, received_at, quarantined_at, reason_code, reason, topic, msg_key, headers';

/**
 * A column list for a state file of an older schema (repair-state reads it as it is):
 * a column the file does not have yet reads as NULL under its usual name.
 */
export function columnsPresentIn(columns: string, present: ReadonlySet<string>): string {
  if (present.size === 0) return columns; // the schema itself is unreadable: try every column
  return columns
    .split(', ')
    .map((expr) => {
      const [column, , alias] = expr.split(' ');
      return column !== undefined && !present.has(column) ? `NULL AS ${alias ?? column}` : expr;
    })
    .join(', ');
}
