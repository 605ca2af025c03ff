// Which rows a command is about (`replay --job`, `--since`...): as SQL conditions for rows
// in the state file, and as a predicate for records not in it (yet).

import type { JobEvent } from '../record/job-record';

export interface RowFilter {
  jobIds?: number[];
  event?: JobEvent;
  /** received at or after (ms since the epoch) */
  since?: number;
  /** received before (ms since the epoch) */
  until?: number;
}

/** SQL conditions and parameters for a filter (columns job_id, event, received_at). */
export function whereClause(f: RowFilter | undefined): { sql: string; params: number[] } {
  const parts: string[] = [];
  const params: number[] = [];
  if (f?.jobIds && f.jobIds.length > 0) {
    parts.push(`job_id IN (${f.jobIds.map(() => '?').join(', ')})`);
    params.push(...f.jobIds);
  }
  if (f?.event !== undefined) {
    parts.push('event = ?');
    params.push(f.event);
  }
  if (f?.since !== undefined) {
    parts.push('received_at >= ?');
    params.push(f.since);
  }
  if (f?.until !== undefined) {
    parts.push('received_at < ?');
    params.push(f.until);
  }
  return { sql: parts.map((p) => ` AND ${p}`).join(''), params };
}

/** The same conditions as the SQL of a filter, for a record not (yet) in the state file. */
export function matchesFilter(f: RowFilter, r: { jobId: number; event: JobEvent; receivedAt: number }): boolean {
  if (f.jobIds && f.jobIds.length > 0 && !f.jobIds.includes(r.jobId)) return false;
  if (f.event !== undefined && r.event !== f.event) return false;
  if (f.since !== undefined && r.receivedAt < f.since) return false;
  return f.until === undefined || r.receivedAt < f.until;
}
