// The keys a layout's records can carry, in the order the plugin writes them: the serializer
// itself writes a record that has every field, so this order cannot drift from it
// (`jobcompd tail --format csv`, docs/operations.md "jobcompd tail").

import { JobEvent, type JobRecord } from './job-record';
import type { RecordLayout } from './record-format';
import { serializeJson } from './serialize';

/** A finish record with every optional field present (values are irrelevant, keys count). */
const EVERY_FIELD: JobRecord = {
  event: JobEvent.finish,
  jobid: 1,
  sluid: '',
  original_sluid: '',
  container: '',
  username: '',
  user_id: 0,
  groupname: '',
  group_id: 0,
  start: 1,
  end: 1,
  elapsed: 0,
  partition: '',
  alloc_node: '',
  nodes: '',
  total_cpus: 0,
  total_nodes: 0,
  derived_ec: '',
  exit_code: '',
  state: '',
  failed_node: '',
  array: { job_id: 0, task_id: 0 },
  pack_job_id: 0,
  pack_job_offset: 0,
  het_job_id: 0,
  het_job_offset: 0,
  priority: 0,
  submit: 1,
  eligible: 1,
  queue_wait: 0,
  work_dir: '',
  std_err: '',
  std_in: '',
  std_out: '',
  cluster: '',
  qos: '',
  ntasks: 0,
  ntasks_per_node: 0,
  ntasks_per_tres: 0,
  cpus_per_task: 0,
  orig_dependency: '',
  excluded_nodes: '',
  features: '',
  time_limit: 0,
  job_name: '',
  reservation_name: '',
  wc_key: '',
  tres_req_raw: '',
  tres_req: '',
  tres_alloc_raw: '',
  tres_alloc: '',
  account: '',
  admin_comment: '',
  comment: '',
  script: '',
  parent_accounts: '',
};

/** Every key a record of this layout can have (with send_script and send_comment), in the plugin's order. */
export function recordColumns(layout: RecordLayout): string[] {
  return Object.keys(JSON.parse(serializeJson(EVERY_FIELD, { layout, sendScript: true, sendComment: true }).toString('latin1')) as object);
}
