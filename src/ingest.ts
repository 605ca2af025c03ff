// The one entry point of the data path for every source: map the input to a record,
// serialize it, and commit it to the outbox. Resolves only once the record (or, for
// input that cannot be mapped, the raw input in quarantine) is on disk; rejects with a
// StateError when nothing could be committed, and then the source must answer "retry".

import type { Logger } from 'pino';
import type { JobCompParams } from './config/jobcomp-params';
import { RecordError } from './errors';
import type { Outbox } from './outbox/outbox';
import { recordFields } from './producer/dispatcher';
import { parseElasticsearchBody } from './record/from-elasticsearch';
import { serialize } from './record/serialize';
import { eventName, JobEvent, type JobRecord } from './record/job-record';

export type SourceName = 'http' | 'socket' | 'spool' | 'replay';

export type AcceptResult =
  | { kind: 'stored'; id: number; jobId: number; event: JobRecord['event'] }
  | { kind: 'quarantined'; id: number; code: string; reason: string };

export class Ingest {
  constructor(
    private readonly outbox: Outbox,
    private readonly params: () => JobCompParams,
    private readonly log: Logger,
  ) {}

  /** A body POSTed by jobcomp/elasticsearch. */
  acceptElasticsearch(body: Buffer, source: SourceName): Promise<AcceptResult> {
    const receivedAt = Date.now();
    let record: JobRecord;
    try {
      record = parseElasticsearchBody(body, { sendScript: this.params().sendScript });
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      return this.quarantineInput(body, source, receivedAt, err);
    }
    return this.store(record, source, receivedAt);
  }

  private async store(record: JobRecord, source: SourceName, receivedAt: number): Promise<AcceptResult> {
    const payload = serialize(record);
    const id = await this.outbox.append({ event: record.event, jobId: record.jobid, payload, source, receivedAt });
    this.log.debug({ ...recordFields({ id, jobId: record.jobid, event: record.event }), source, bytes: payload.length }, 'record committed');
    return { kind: 'stored', id, jobId: record.jobid, event: record.event };
  }

  private async quarantineInput(raw: Buffer, source: SourceName, receivedAt: number, err: RecordError): Promise<AcceptResult> {
    const id = await this.outbox.addToQuarantine({
      event: null,
      jobId: null,
      payload: null,
      raw,
      source,
      receivedAt,
      reasonCode: err.code,
      reason: err.message,
    });
    this.log.error({ jobId: err.jobId, event: eventName(JobEvent.finish), quarantineId: id, source, code: err.code, err: err.message, bytes: raw.length }, 'input cannot be mapped to a job record; kept raw in quarantine');
    return { kind: 'quarantined', id, code: err.code, reason: err.message };
  }
}
