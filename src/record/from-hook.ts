// Input mappers for what the native hook forwards: the jobcomp/script environment (a job
// end record) and the PrologSlurmctld environment (a job start record). What each
// variable becomes, and what these paths cannot carry, is in docs/record-mapping.md.

import { RecordCodes, RecordError } from '../errors';
import { JobEvent, setField, type JobRecord } from './job-record';
import { EnvFields, hookContext, type Env } from './slurm-env';
import { finishTimes, isValidSlurmTime } from './slurm-time';
import { identityName, timeLimitSeconds, totalCpus } from './slurm-values';

/** jobcomp/script prints "no array task" as NO_VAL. */
const NO_ARRAY_TASK = 4294967294;

/** jobcomp/script environment (Slurm 22.05+) -> job end record. */
export function mapJobcompScriptEnv(env: Env): JobRecord {
  const f = new EnvFields(env);
  const jobid = f.uint('JOBID');
  const uid = f.uint('UID');
  const gid = f.uint('GID');
  const { start, end, elapsed } = finishTimes(f.time('START'), f.time('END'));
  const record: JobRecord = {
    event: JobEvent.finish,
    jobid,
    container: null,
    username: identityName(f.optString('USERNAME'), uid),
    user_id: uid,
    groupname: identityName(f.optString('GROUPNAME'), gid),
    group_id: gid,
    start,
    end,
    elapsed,
    partition: f.nullableString('PARTITION'),
    alloc_node: null,
    nodes: f.nullableString('NODES'),
    total_cpus: f.uint('PROCS'),
    total_nodes: f.uint('NODECNT'),
    derived_ec: exitCode(f, 'DERIVED_EC'),
    exit_code: exitCode(f, 'EXITCODE'),
    state: f.string('JOBSTATE'),
    failed_node: null,
    pack_job_id: f.optUint('PACKJOBID') ?? 0,
    pack_job_offset: f.optUint('PACKJOBOFFSET') ?? 0,
    het_job_id: f.optUint('HETJOBID') ?? 0,
    het_job_offset: f.optUint('HETJOBOFFSET') ?? 0,
  };
  const arrayTask = f.optUint('ARRAYTASKID');
  if (arrayTask !== undefined && arrayTask !== NO_ARRAY_TASK) record.array = { job_id: f.uint('ARRAYJOBID'), task_id: arrayTask };
  setField(record, 'sluid', f.optString('SLUID')); // 26.05+
  setField(record, 'original_sluid', f.optString('ORIGINAL_SLUID'));
  setField(record, 'submit', f.time('SUBMIT'));
  const eligible = f.time('ELIGIBLE'); // Slurm 24.05+
  setField(record, 'eligible', eligible);
  if (eligible !== undefined && start !== undefined) record.queue_wait = start - eligible;
  const workDir = f.optString('WORK_DIR');
  if (workDir !== 'unknown') setField(record, 'work_dir', workDir); // the script plugin's "unset"
  setField(record, 'std_err', f.optString('STDERR'));
  setField(record, 'std_in', f.optString('STDIN'));
  setField(record, 'std_out', f.optString('STDOUT'));
  setField(record, 'cluster', f.optString('CLUSTER'));
  setField(record, 'qos', f.optString('QOS'));
  setField(record, 'orig_dependency', f.optString('DEPENDENCY'));
  setField(record, 'features', f.optString('CONSTRAINTS'));
  const limit = f.optString('LIMIT');
  if (limit !== undefined) setField(record, 'time_limit', timeLimitSeconds(limit));
  setField(record, 'job_name', f.optString('JOBNAME'));
  setField(record, 'reservation_name', f.optString('RESERVATION'));
  setField(record, 'account', f.optString('ACCOUNT'));
  return record;
}

/** PrologSlurmctld environment -> job start record; @start is the job's start time, else when the hook ran. */
export function mapPrologEnv(env: Env): JobRecord {
  const f = new EnvFields(env);
  const uid = f.uint('SLURM_JOB_UID');
  const gid = f.uint('SLURM_JOB_GID');
  const cpusPerNode = f.optString('SLURM_JOB_CPUS_PER_NODE');
  const cpus = cpusPerNode === undefined ? 0 : totalCpus(cpusPerNode);
  if (cpus === undefined) {
    throw new RecordError(RecordCodes.badField, `variable SLURM_JOB_CPUS_PER_NODE must look like "4(x2),2", got ${JSON.stringify(cpusPerNode)}`, 'SLURM_JOB_CPUS_PER_NODE');
  }
  const record: JobRecord = {
    event: JobEvent.start,
    jobid: f.uint('SLURM_JOB_ID'),
    container: null,
    username: identityName(f.optString('SLURM_JOB_USER'), uid),
    user_id: uid,
    groupname: identityName(f.optString('SLURM_JOB_GROUP'), gid),
    group_id: gid,
    // Slurm's own start time, exactly the plugin's @start (24.11+ set it; 22.05 does not: then the hook's clock)
    start: f.time('SLURM_JOB_START_TIME') ?? hookTime(f),
    elapsed: 0,
    partition: f.nullableString('SLURM_JOB_PARTITION'),
    alloc_node: null,
    nodes: f.nullableString('SLURM_JOB_NODELIST'),
    total_cpus: cpus,
    total_nodes: f.optUint('SLURM_JOB_NUM_NODES') ?? 0,
    derived_ec: '0:0',
    exit_code: '0:0',
    state: null,
    failed_node: null,
    pack_job_id: 0,
    pack_job_offset: 0,
    het_job_id: f.optUint('SLURM_HET_JOB_ID') ?? f.optUint('SLURM_PACK_JOB_ID') ?? 0,
    het_job_offset: f.optUint('SLURM_HET_JOB_OFFSET') ?? f.optUint('SLURM_PACK_JOB_OFFSET') ?? 0,
  };
  const arrayTask = f.optUint('SLURM_ARRAY_TASK_ID');
  if (arrayTask !== undefined) record.array = { job_id: f.uint('SLURM_ARRAY_JOB_ID'), task_id: arrayTask };
  // 25.11+ give the prolog the job's first SLUID. The record's sluid is the current one,
  // which departs from the first only when a running job is resized; at allocation, when
  // the prolog runs, they are the same (docs/record-mapping.md).
  const sluid = f.optString('SLURM_JOB_SLUID');
  setField(record, 'sluid', sluid);
  setField(record, 'original_sluid', sluid);
  setField(record, 'work_dir', f.optString('SLURM_JOB_WORK_DIR'));
  setField(record, 'std_err', f.optString('SLURM_JOB_STDERR'));
  setField(record, 'std_in', f.optString('SLURM_JOB_STDIN'));
  setField(record, 'std_out', f.optString('SLURM_JOB_STDOUT'));
  setField(record, 'features', f.optString('SLURM_JOB_CONSTRAINTS'));
  setField(record, 'job_name', f.optString('SLURM_JOB_NAME'));
  const account = f.optString('SLURM_JOB_ACCOUNT');
  if (account !== '(null)') setField(record, 'account', account);
  setField(record, 'comment', f.optString('SLURM_JOB_COMMENT'));
  return record;
}

export type HookRecord =
  | { kind: 'record'; context: 'jobcomp' | 'prolog'; record: JobRecord }
  | { kind: 'not-published'; context: 'epilog'; jobId: number | undefined };

/**
 * Any hook environment. EpilogSlurmctld environments carry no state and no times, so
 * they produce no record (end records come from jobcomp/elasticsearch or jobcomp/script).
 */
export function mapHookEnv(env: Env): HookRecord {
  try {
    return mapByContext(env);
  } catch (err) {
    const jobId = Number(env.get('JOBID') ?? env.get('SLURM_JOB_ID'));
    if (err instanceof RecordError && Number.isSafeInteger(jobId)) err.jobId = jobId;
    throw err;
  }
}

function mapByContext(env: Env): HookRecord {
  const context = hookContext(env);
  if (context === 'jobcomp') return { kind: 'record', context, record: mapJobcompScriptEnv(env) };
  if (context === 'prolog') return { kind: 'record', context, record: mapPrologEnv(env) };
  if (context === 'epilog') return { kind: 'not-published', context, jobId: new EnvFields(env).optUint('SLURM_JOB_ID') };
  throw new RecordError(RecordCodes.missingField, 'not a Slurm hook environment: neither JOBID (jobcomp/script) nor SLURM_SCRIPT_CONTEXT (prolog/epilog)');
}

function exitCode(f: EnvFields, key: string): string {
  const v = f.string(key);
  if (!/^\d+:\d+$/.test(v)) throw new RecordError(RecordCodes.badField, `variable ${key} must look like "exit:signal", got ${JSON.stringify(v.slice(0, 40))}`, key);
  return v;
}

/** JOBCOMPD_HOOK_TIME ("seconds.nanoseconds", stamped by the hook), whole seconds. */
function hookTime(f: EnvFields): number | undefined {
  const v = f.optString('JOBCOMPD_HOOK_TIME');
  if (v === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(v)) throw new RecordError(RecordCodes.badField, `variable JOBCOMPD_HOOK_TIME must be epoch seconds, got ${JSON.stringify(v)}`, 'JOBCOMPD_HOOK_TIME');
  const t = Math.floor(Number(v));
  if (!isValidSlurmTime(t)) throw new RecordError(RecordCodes.badField, `variable JOBCOMPD_HOOK_TIME is not a time Slurm can print, got ${JSON.stringify(v.slice(0, 40))}`, 'JOBCOMPD_HOOK_TIME');
  return t;
}
