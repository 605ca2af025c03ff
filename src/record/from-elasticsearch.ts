// Input mapper: the JSON body that Slurm's jobcomp/elasticsearch plugin POSTs -> JobRecord.
//
// Two generations of that body exist (docs/record-mapping.md has every rule):
//   - 22.05 and older: its own encoder; NULL strings sent as "", failed user lookups as
//     "nobody", invalid dates as "Unknown", raw (possibly negative) elapsed, no failed_node.
//   - 23.02 and newer: the same record builder as jobcomp/kafka, so values already follow
//     kafka's rules (recognised by the failed_node key, which 23.02+ always writes).
// Both are mapped to one JobRecord with everything the body carries; which of it a
// release's record sends is the serializer's rule (record-format.ts).

import { RecordCodes, RecordError } from '../errors';
import { parseJsonBytes } from './bytes';
import { JobEvent, setField, type JobRecord } from './job-record';
import { finishTimes, isValidSlurmTime, parseUtc } from './slurm-time';
import { identityName } from './slurm-values';
import { deriveTresRaw } from './tres';

export type EsFlavor = 'slurm-22.05' | 'slurm-23.02+';

export function parseElasticsearchBody(body: Buffer): JobRecord {
  let parsed: unknown;
  try {
    parsed = parseJsonBytes(body);
  } catch (err) {
    throw new RecordError(RecordCodes.notJson, `body is not valid JSON: ${(err as Error).message}`);
  }
  try {
    return mapElasticsearchRecord(parsed);
  } catch (err) {
    const jobid = (parsed as { jobid?: unknown } | null)?.jobid;
    if (err instanceof RecordError && typeof jobid === 'number') err.jobId = jobid;
    throw err;
  }
}

export function mapElasticsearchRecord(input: unknown): JobRecord {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new RecordError(RecordCodes.notObject, 'body is not a JSON object');
  }
  const f = new Fields(input as Record<string, unknown>);
  const flavor: EsFlavor = f.has('failed_node') ? 'slurm-23.02+' : 'slurm-22.05';
  const legacy = flavor === 'slurm-22.05';
  // 22.05 writes "" for NULL strings; kafka writes null.
  const nullable = (key: string): string | null => {
    const v = f.nullableString(key);
    return legacy && v === '' ? null : v;
  };
  const identity = (nameKey: string, idKey: string): [string | null, number] => {
    const id = f.uint(idKey);
    const name = f.nullableString(nameKey);
    return [legacy ? identityName(name, id) : name, id];
  };

  const jobid = f.uint('jobid');
  const [username, user_id] = identity('username', 'user_id');
  const [groupname, group_id] = identity('groupname', 'group_id');
  const { start, end, elapsed } = finishTimes(f.time('@start'), f.time('@end'));
  const record: JobRecord = {
    event: JobEvent.finish,
    jobid,
    container: nullable('container'),
    username,
    user_id,
    groupname,
    group_id,
    start,
    end,
    elapsed,
    partition: nullable('partition'),
    alloc_node: nullable('alloc_node'),
    nodes: nullable('nodes'),
    total_cpus: f.uint('total_cpus'),
    total_nodes: f.uint('total_nodes'),
    derived_ec: f.string('derived_ec'),
    exit_code: f.string('exit_code'),
    state: f.string('state'),
    failed_node: legacy ? null : f.nullableString('failed_node'),
    pack_job_id: f.optUint('pack_job_id') ?? 0,
    pack_job_offset: f.optUint('pack_job_offset') ?? 0,
    het_job_id: f.optUint('het_job_id') ?? 0,
    het_job_offset: f.optUint('het_job_offset') ?? 0,
  };
  setField(record, 'sluid', f.optString('sluid')); // 26.05+
  setField(record, 'original_sluid', f.optString('original_sluid'));
  const arrayJob = f.optUint('array_job_id');
  const arrayTask = f.optUint('array_task_id');
  if (arrayJob !== undefined && arrayTask !== undefined) record.array = { job_id: arrayJob, task_id: arrayTask };
  setField(record, 'priority', f.optUint('priority'));
  setField(record, 'submit', f.time('@submit'));
  setField(record, 'eligible', f.time('@eligible'));
  setField(record, 'queue_wait', f.optInt('@queue_wait'));
  // 22.05-23.11.0 sent end - start unclamped; layouts of that time send it so again.
  const sentElapsed = f.optInt('elapsed');
  if (sentElapsed !== undefined && sentElapsed !== elapsed) record.rawElapsed = sentElapsed;
  for (const key of ['work_dir', 'std_err', 'std_in', 'std_out'] as const) setField(record, key, f.optString(key));
  for (const key of ['cluster', 'qos'] as const) {
    const v = f.optString(key);
    // 22.05 writes these whenever the association/QOS exists, "" when it has no name.
    if (v !== undefined && !(legacy && v === '')) record[key] = v;
  }
  for (const key of ['ntasks', 'ntasks_per_node', 'ntasks_per_tres', 'cpus_per_task', 'time_limit'] as const) {
    setField(record, key, f.optUint(key));
  }
  for (const key of ['orig_dependency', 'excluded_nodes', 'features', 'job_name', 'reservation_name', 'wc_key'] as const) {
    setField(record, key, f.optString(key));
  }
  mapTres(f, record, 'tres_req');
  mapTres(f, record, 'tres_alloc');
  setField(record, 'account', f.optString('account'));
  setField(record, 'admin_comment', f.optString('admin_comment')); // 26.05+
  setField(record, 'comment', f.optString('comment')); // 26.05+, when slurmctld has send_comment
  setField(record, 'script', f.optString('script'));
  if (f.has('parent_accounts')) record.parent_accounts = f.nullableString('parent_accounts');
  return record;
}

function mapTres(f: Fields, record: JobRecord, key: 'tres_req' | 'tres_alloc'): void {
  const formatted = f.optString(key);
  const raw = f.optString(`${key}_raw`) ?? (formatted === undefined ? undefined : deriveTresRaw(formatted, key === 'tres_alloc' ? 'allocated' : 'requested'));
  setField(record, `${key}_raw`, raw);
  setField(record, key, formatted);
}

/** Typed access to the body's keys; every failure names the key. */
class Fields {
  constructor(private readonly obj: Record<string, unknown>) {}

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  // A value read as a property: JSON has no undefined, and no key the plugin sends is a
  // property of Object.prototype, so undefined means the key is absent. (hasOwnProperty on
  // every key was a tenth of mapping a body: docs/benchmarks.md.)
  private get(key: string): unknown {
    return this.obj[key];
  }

  private required(key: string): unknown {
    const v = this.get(key);
    if (v === undefined) throw new RecordError(RecordCodes.missingField, `missing required field "${key}"`, key);
    return v;
  }

  private bad(key: string, expected: string, got: unknown): RecordError {
    const shown = describeValue(got);
    return new RecordError(RecordCodes.badField, `field "${key}" must be ${expected}, got ${shown}`, key);
  }

  private checkInt(key: string, v: unknown, min: number): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw this.bad(key, min >= 0 ? 'a non-negative integer' : 'an integer', v);
    }
    return v;
  }

  uint(key: string): number {
    return this.checkInt(key, this.required(key), 0);
  }

  optUint(key: string): number | undefined {
    const v = this.get(key);
    return v === undefined ? undefined : this.checkInt(key, v, 0);
  }

  optInt(key: string): number | undefined {
    const v = this.get(key);
    return v === undefined ? undefined : this.checkInt(key, v, Number.MIN_SAFE_INTEGER);
  }

  string(key: string): string {
    const v = this.required(key);
    if (typeof v !== 'string') throw this.bad(key, 'a string', v);
    return v;
  }

  /** A key that is always present; its value may be null (23.02+) or a string. */
  nullableString(key: string): string | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw this.bad(key, 'a string or null', v);
    return v;
  }

  optString(key: string): string | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw this.bad(key, 'a string', v);
    return v;
  }

  /** A date field: kept only when it is a valid Slurm time ("Unknown", "None", NO_VAL... are left out). */
  time(key: string): number | undefined {
    const v = this.optString(key);
    if (v === undefined) return undefined;
    const t = parseUtc(v);
    if (t !== undefined) return isValidSlurmTime(t) ? t : undefined;
    if (/^(unknown|none|)$/i.test(v)) return undefined;
    throw this.bad(key, 'a UTC time "YYYY-MM-DDTHH:MM:SS", "Unknown" or "None"', v);
  }
}

/** A short description of a JSON value for an error message; never recurses (values may nest 10,000 deep). */
function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.slice(0, 40));
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}
