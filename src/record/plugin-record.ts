// The job id and event of a record jobcomp/kafka produced (a value received by the Kafka
// listener), for dedup, logs and status: an end record has "@end", a start record
// (25.05+, enable_job_start) has none. Some layouts end the value with a NUL byte.

import { JobEvent } from './job-record';

export interface PluginRecordIdentity {
  jobId: number;
  event: JobEvent;
}

/** undefined when the value is not a JSON object with an integer "jobid". */
export function identifyPluginRecord(value: Buffer): PluginRecordIdentity | undefined {
  const text = value.toString('utf8', 0, value.length > 0 && value[value.length - 1] === 0 ? value.length - 1 : value.length);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const record = parsed as Record<string, unknown>;
  const jobId = record['jobid'];
  if (typeof jobId !== 'number' || !Number.isSafeInteger(jobId) || jobId < 0) return undefined;
  return { jobId, event: '@end' in record ? JobEvent.finish : JobEvent.start };
}
