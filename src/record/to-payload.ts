// The one path from an input to the jobcomp/kafka payload, shared by the daemon's ingest,
// `jobcompd replay`, `jobcompd convert` and the benchmarks, so that a change to the
// mapping or the serializer is made here once (docs/record-mapping.md has the rules).

import type { JobCompParams } from '../config/jobcomp-params';
import { RecordError } from '../errors';
import { parseElasticsearchBody } from './from-elasticsearch';
import { mapHookEnv, mapJobcompScriptEnv, mapPrologEnv } from './from-hook';
import type { JobEvent, JobRecord } from './job-record';
import { parseEnvBlock, parseEnvDump } from './slurm-env';
import { serialize } from './serialize';

/** Everything besides the input that decides the payload's bytes; derived from JobCompParams. */
export interface PayloadOptions {
  /** JobCompParams send_script: keep the batch script. */
  sendScript: boolean;
}

export function payloadOptionsOf(params: JobCompParams): PayloadOptions {
  return { sendScript: params.sendScript };
}

export type RecordInput =
  /** the JSON body jobcomp/elasticsearch POSTs (or saved in elasticsearch_state) */
  | { kind: 'elasticsearch'; body: Buffer }
  /** a hook environment as the native hook sends it (NUL-separated); its context is detected */
  | { kind: 'hook'; environment: Buffer }
  /** KEY=VALUE lines (`env` output) of a known context (`jobcompd convert`) */
  | { kind: 'env-dump'; context: 'jobcomp' | 'prolog'; text: Buffer };

export type Mapped =
  | { kind: 'record'; record: JobRecord; event: JobEvent; jobId: number; payload: Buffer }
  /** an input that is valid but publishes nothing (an EpilogSlurmctld environment) */
  | { kind: 'not-published'; jobId: number | undefined; reason: string };

const EPILOG_NOT_PUBLISHED = 'EpilogSlurmctld environments carry no job state or times; end records come from jobcomp';

/** Map and serialize one input. Throws a RecordError (with the job id when it is known) for input that is not a record. */
export function toPayload(input: RecordInput, opts: PayloadOptions): Mapped {
  const record = mapInput(input, opts);
  if (record.kind === 'not-published') return record;
  return recordWithPayload(record.record);
}

function mapInput(input: RecordInput, opts: PayloadOptions): { kind: 'record'; record: JobRecord } | Extract<Mapped, { kind: 'not-published' }> {
  switch (input.kind) {
    case 'elasticsearch':
      return { kind: 'record', record: parseElasticsearchBody(input.body, { sendScript: opts.sendScript }) };
    case 'hook': {
      const mapped = mapHookEnv(parseEnvBlock(input.environment));
      if (mapped.kind === 'not-published') return { kind: 'not-published', jobId: mapped.jobId, reason: EPILOG_NOT_PUBLISHED };
      return mapped;
    }
    case 'env-dump': {
      const env = parseEnvDump(input.text);
      return { kind: 'record', record: input.context === 'jobcomp' ? mapJobcompScriptEnv(env) : mapPrologEnv(env) };
    }
  }
}

/** serialize(), with the record's job id on a RecordError (for the quarantine log line). */
function recordWithPayload(record: JobRecord): Mapped {
  try {
    return { kind: 'record', record, event: record.event, jobId: record.jobid, payload: serialize(record) };
  } catch (err) {
    if (err instanceof RecordError) err.jobId = record.jobid;
    throw err;
  }
}
