// The one path from an input to the jobcomp/kafka payload, shared by the daemon's ingest,
// `jobcompd replay`, `jobcompd convert` and the benchmarks, so that a change to the
// mapping or the serializer is made here once (docs/record-mapping.md has the rules).

import { DEFAULT_PARAMS, type JobCompParams } from '../config/jobcomp-params';
import { RecordError } from '../errors';
import { parseElasticsearchBody } from './from-elasticsearch';
import { mapHookEnv, mapJobcompScriptEnv, mapPrologEnv } from './from-hook';
import { JobEvent, type JobRecord } from './job-record';
import { DEFAULT_RECORD_FORMAT, startRecordsOff, type RecordFormat } from './record-format';
import { parseEnvBlock, parseEnvDump } from './slurm-env';
import { serialize, type SerializeOptions } from './serialize';

/** Everything besides the input that decides the payload's bytes: the record layout and the JobCompParams flags that add fields. */
export type PayloadOptions = SerializeOptions;

export function payloadOptionsOf(params: JobCompParams, format: RecordFormat): PayloadOptions {
  return { layout: format.layout, sendScript: params.sendScript, sendComment: params.sendComment };
}

/** Default JobCompParams and RecordFormat. */
export const DEFAULT_PAYLOAD_OPTIONS: PayloadOptions = payloadOptionsOf(DEFAULT_PARAMS, DEFAULT_RECORD_FORMAT);

export type RecordInput =
  /** the JSON body jobcomp/elasticsearch POSTs (or saved in elasticsearch_state) */
  | { kind: 'elasticsearch'; body: Buffer }
  /** a hook environment as the native hook sends it (NUL-separated); its context is detected */
  | { kind: 'hook'; environment: Buffer }
  /** KEY=VALUE lines (`env` output) of a known context (`jobcompd convert`) */
  | { kind: 'env-dump'; context: 'jobcomp' | 'prolog'; text: Buffer };

export type Mapped =
  | { kind: 'record'; record: JobRecord; event: JobEvent; jobId: number; payload: Buffer }
  /** an input that is valid but publishes nothing (an EpilogSlurmctld environment, a start record in a layout without them) */
  | { kind: 'not-published'; jobId: number | undefined; event: JobEvent | undefined; reason: string };

export const EPILOG_NOT_PUBLISHED = 'EpilogSlurmctld environments carry no job state or times; end records come from jobcomp';

/** Map and serialize one input. Throws a RecordError (with the job id when it is known) for input that is not a record. */
export function toPayload(input: RecordInput, opts: PayloadOptions): Mapped {
  const mapped = mapInput(input);
  if (mapped.kind === 'not-published') return mapped;
  const { record } = mapped;
  // a release without start records has no layout for one (enable_job_start is the caller's)
  const noStart = record.event === JobEvent.start ? startRecordsOff(opts.layout, true) : undefined;
  if (noStart !== undefined) return { kind: 'not-published', jobId: record.jobid, event: record.event, reason: noStart };
  return recordWithPayload(record, opts);
}

function mapInput(input: RecordInput): { kind: 'record'; record: JobRecord } | Extract<Mapped, { kind: 'not-published' }> {
  switch (input.kind) {
    case 'elasticsearch':
      return { kind: 'record', record: parseElasticsearchBody(input.body) };
    case 'hook': {
      const mapped = mapHookEnv(parseEnvBlock(input.environment));
      if (mapped.kind === 'not-published') return { kind: 'not-published', jobId: mapped.jobId, event: undefined, reason: EPILOG_NOT_PUBLISHED };
      return mapped;
    }
    case 'env-dump': {
      const env = parseEnvDump(input.text);
      return { kind: 'record', record: input.context === 'jobcomp' ? mapJobcompScriptEnv(env) : mapPrologEnv(env) };
    }
  }
}

/** serialize(), with the record's job id on a RecordError (for the quarantine log line). */
function recordWithPayload(record: JobRecord, opts: PayloadOptions): Mapped {
  try {
    return { kind: 'record', record, event: record.event, jobId: record.jobid, payload: serialize(record, opts) };
  } catch (err) {
    if (err instanceof RecordError) err.jobId = record.jobid;
    throw err;
  }
}
