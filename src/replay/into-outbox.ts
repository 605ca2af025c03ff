// What `jobcompd replay` puts (back) into the outbox besides its own rows: the quarantine table (after
// the cause was fixed) and the state files Slurm's own plugins leave behind (migration).

import { QuarantineCodes, RecordError } from '../errors';
import type { Ingest } from '../ingest';
import { parseSlurmState } from '../migrate/slurm-state';
import type { RowFilter } from '../outbox/filter';
import type { Destination, Outbox, QuarantineRow } from '../outbox/outbox';
import { isJobEvent, type JobEvent } from '../record/job-record';
import { messageValue } from '../record/serialize';
import { toPayload, type PayloadOptions, type RecordInput } from '../record/to-payload';

export interface Requeued {
  requeued: number;
  /** quarantined inputs that still cannot be mapped: they stay */
  kept: { id: number; reason: string }[];
}

export interface Publishable extends Partial<Destination> {
  event: JobEvent;
  jobId: number;
  payload: Buffer;
}

/**
 * The record to publish for a quarantine row: the stored record when Kafka refused it,
 * or the raw input mapped again (it may map now, after an upgrade of jobcompd).
 */
export function publishableFrom(row: QuarantineRow, opts: PayloadOptions): Publishable | string {
  if (row.payload && row.event !== null && isJobEvent(row.event) && row.jobId !== null) {
    // a record of the Kafka listener keeps its own topic, key and headers
    return { event: row.event, jobId: row.jobId, payload: row.payload, topic: row.topic ?? null, key: row.key ?? null, headers: row.headers ?? null };
  }
  if (!row.raw) return 'no record and no raw input';
  // A hook message that was cut, framed wrongly or followed by stray bytes is evidence, not
  // an input: mapping what is left of it could publish a second, different record of the job.
  if (row.reasonCode === QuarantineCodes.hookBadMessage) return `${QuarantineCodes.hookBadMessage}: not a whole hook message; kept as evidence, never published`;
  const input: RecordInput = row.source === 'socket' || row.source === 'spool' ? { kind: 'hook', environment: row.raw } : { kind: 'elasticsearch', body: row.raw };
  try {
    return publishableOf(input, opts);
  } catch (err) {
    return (err as Error).message;
  }
}

/** An input mapped and serialized as the daemon's ingest does (throws a RecordError), or why it publishes nothing. */
function publishableOf(input: RecordInput, opts: PayloadOptions): Publishable | string {
  const mapped = toPayload(input, opts);
  if (mapped.kind === 'not-published') return mapped.reason;
  return { event: mapped.event, jobId: mapped.jobId, payload: mapped.payload };
}

/** Move the matching quarantine rows that can be published back into the outbox. */
export function requeueQuarantined(outbox: Outbox, filter: RowFilter, opts: PayloadOptions): Requeued {
  const result: Requeued = { requeued: 0, kept: [] };
  for (const row of outbox.quarantineRows(filter)) {
    const p = publishableFrom(row, opts);
    if (typeof p === 'string') result.kept.push({ id: row.id, reason: p });
    else {
      outbox.requeueQuarantined(row.id, p, row.receivedAt);
      result.requeued += 1;
    }
  }
  return result;
}

export interface Imported {
  kind: string;
  slurmVersion: string | undefined;
  stored: number;
  duplicates: number;
  quarantined: number;
}

/**
 * Import what Slurm's jobcomp/kafka (jobcomp_kafka_state) or jobcomp/elasticsearch
 * (elasticsearch_state) saved at its last clean shutdown. jobcomp/kafka payloads are
 * published as saved, as the plugin itself would at its next start (with the trailing NUL
 * of the layouts that sent one); elasticsearch bodies are mapped like any body it POSTs.
 * Importing the same file twice stores nothing twice (within DedupWindow).
 */
export async function importSlurmState(ingest: Ingest, file: Buffer, fileName: string, opts: PayloadOptions): Promise<Imported> {
  const state = parseSlurmState(file, fileName);
  const out: Imported = { kind: state.kind, slurmVersion: state.slurmVersion, stored: 0, duplicates: 0, quarantined: 0 };
  for (const r of state.records) {
    const result =
      state.kind === 'elasticsearch_state'
        ? await ingest.acceptElasticsearch(r.payload, 'replay')
        : await ingest.acceptSerialized({ event: r.event, jobId: r.jobId ?? 0, payload: messageValue(r.payload, opts.layout) }, 'replay');
    if (result.kind === 'stored') out.stored += 1;
    else if (result.kind === 'duplicate') out.duplicates += 1;
    else if (result.kind === 'quarantined') out.quarantined += 1;
  }
  return out;
}

export type PlannedImport = ({ kind: 'publish' } & Publishable) | { kind: 'quarantine'; index: number; jobId: number | undefined; reason: string };

/**
 * What importSlurmState() would store, without storing it (replay --dry-run): each saved
 * record as it would be published, or why it would go to quarantine. Duplicates are left to
 * the caller, who knows the state file.
 */
export function planSlurmStateImport(file: Buffer, fileName: string, opts: PayloadOptions): { kind: string; records: PlannedImport[] } {
  const state = parseSlurmState(file, fileName);
  const records = state.records.map((r, index): PlannedImport => {
    if (state.kind !== 'elasticsearch_state') return { kind: 'publish', event: r.event, jobId: r.jobId ?? 0, payload: messageValue(r.payload, opts.layout) };
    try {
      const p = publishableOf({ kind: 'elasticsearch', body: r.payload }, opts);
      if (typeof p === 'string') return { kind: 'quarantine', index, jobId: r.jobId, reason: p };
      return { kind: 'publish', ...p };
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      return { kind: 'quarantine', index, jobId: r.jobId, reason: err.message };
    }
  });
  return { kind: state.kind, records };
}
