// The canonical job record: one shape that every input format maps to and that the
// serializer turns into jobcomp/kafka JSON. Field names follow the payload keys; the
// emission order and presence rules live in serialize.ts (spec §7.3).
//
// Strings are *byte strings*: each UTF-16 code unit holds one byte (0-255), i.e. the
// 'latin1' view of the bytes Slurm sent. Slurm and json-c pass bytes through without
// UTF-8 validation, so this is the only representation that round-trips every input
// byte for byte. Use bytes.ts to convert from and to ordinary text.

export const JobEvent = {
  finish: 1,
  start: 2,
} as const;
export type JobEvent = (typeof JobEvent)[keyof typeof JobEvent];

export function eventName(event: JobEvent): 'job finish' | 'job start' {
  return event === JobEvent.finish ? 'job finish' : 'job start';
}

export function isJobEvent(n: number): n is JobEvent {
  return n === JobEvent.finish || n === JobEvent.start;
}

/** Seconds since the epoch, UTC. Only valid times are stored: invalid ones are left out. */
export type EpochSeconds = number;

export interface JobRecord {
  event: JobEvent;
  jobid: number;
  /** 26.05: the job's current SLUID ("s" + 13 base32 characters) */
  sluid?: string;
  /** 26.05: the SLUID the job was given first (differs after a resize) */
  original_sluid?: string;
  container: string | null;
  username: string | null;
  user_id: number;
  groupname: string | null;
  group_id: number;
  start?: EpochSeconds;
  /** finish only */
  end?: EpochSeconds;
  /** finish only; already clamped to 0 when start/end are invalid (kafka's rule since 23.11.1) */
  elapsed: number;
  /** finish only: the unclamped end - start an input sent (22.05-23.11.0 bodies), when it differs from elapsed */
  rawElapsed?: number;
  partition: string | null;
  alloc_node: string | null;
  nodes: string | null;
  total_cpus: number;
  total_nodes: number;
  /** finish only, "exit:signal" */
  derived_ec: string;
  /** finish only, "exit:signal" */
  exit_code: string;
  /** finish records: the state name; start records: always null */
  state: string | null;
  /** finish only */
  failed_node: string | null;
  array?: { job_id: number; task_id: number };
  /** finish only */
  pack_job_id: number;
  /** finish only */
  pack_job_offset: number;
  het_job_id: number;
  het_job_offset: number;
  priority?: number;
  submit?: EpochSeconds;
  eligible?: EpochSeconds;
  /** may be negative: layouts before 23.11.9/24.05.1 send it, later ones leave it out */
  queue_wait?: number;
  work_dir?: string;
  std_err?: string;
  std_in?: string;
  std_out?: string;
  cluster?: string;
  qos?: string;
  ntasks?: number;
  ntasks_per_node?: number;
  ntasks_per_tres?: number;
  cpus_per_task?: number;
  orig_dependency?: string;
  excluded_nodes?: string;
  features?: string;
  /** seconds */
  time_limit?: number;
  job_name?: string;
  reservation_name?: string;
  wc_key?: string;
  tres_req_raw?: string;
  tres_req?: string;
  tres_alloc_raw?: string;
  tres_alloc?: string;
  account?: string;
  /** 26.05 */
  admin_comment?: string;
  /** 26.05, sent only with send_comment */
  comment?: string;
  /** the batch script, when the input carried it; which layouts send it is the serializer's rule */
  script?: string;
  parent_accounts?: string | null;
}

/** Set an optional field only when there is a value (undefined means "left out"). */
export function setField<K extends keyof JobRecord>(record: JobRecord, key: K, value: JobRecord[K] | undefined): void {
  if (value !== undefined) record[key] = value;
}
