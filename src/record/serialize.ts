// JobRecord -> the exact bytes jobcomp/kafka of the chosen release produces
// (docs/record-mapping.md): compact json-c output, keys in the plugin's insertion order,
// finish-only keys left out of start records, and the rules of the release's layout
// (record-format.ts). Pure: no I/O.

import { RecordCodes, RecordError } from '../errors';
import { JobEvent, type JobRecord } from './job-record';
import { jsonCDouble, MAX_ESCAPED_BYTES, writeJsonCString } from './json-c';
import type { RecordLayout } from './record-format';
import { formatUtc, isValidSlurmTime } from './slurm-time';

/** What decides the bytes beyond the record: the layout, and the JobCompParams flags that add fields. */
export interface SerializeOptions {
  layout: RecordLayout;
  /** JobCompParams send_script (layouts that send the script only on request) */
  sendScript: boolean;
  /** JobCompParams send_comment (26.05) */
  sendComment: boolean;
}

/** What Slurm prints for a time that is 0 or INFINITE (parse_time_make_str_utc). */
const UNKNOWN_TIME = 'Unknown';

/** cpu_hours as the plugin computes it: int64 product -> float, / 3600.0f, widened to double. */
export function cpuHours(elapsed: number, totalCpus: number): number {
  return Math.fround(Math.fround(elapsed * totalCpus) / 3600);
}

/** The longest number or literal a value can be ("-1.2345678901234567e-308" is 24). */
const NUMBER_ROOM = 32;

/** The record's bytes are written into this buffer, then copied out at their length. */
const scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * One json-c object, written as bytes into the scratch buffer, or for a record that does not
 * fit (a long batch script) into a larger buffer of its own. Serialization is synchronous,
 * so one scratch buffer serves every record.
 */
class JsonCObject {
  private out = scratch;
  private pos = 1;

  constructor() {
    this.out[0] = 0x7b; // {
  }

  private room(bytes: number): void {
    if (this.pos + bytes <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.out.length, this.pos + bytes));
    this.out.copy(grown, 0, 0, this.pos);
    this.out = grown;
  }

  /** ASCII text that needs no escaping and fits in the room key() made (a number, null). */
  private ascii(text: string): void {
    const { out } = this;
    let { pos } = this;
    for (let i = 0; i < text.length; i++) out[pos++] = text.charCodeAt(i);
    this.pos = pos;
  }

  /** The key, with room after it for any value but a string. */
  private key(k: string): void {
    this.room(2 + MAX_ESCAPED_BYTES * k.length + NUMBER_ROOM);
    const { out } = this;
    let { pos } = this;
    // the first key has no comma before it
    if (pos !== 1) out[pos++] = 0x2c; // ,
    pos = writeJsonCString(out, pos, k);
    out[pos++] = 0x3a; // :
    this.pos = pos;
  }

  // The mappers check their inputs; these checks keep a value no mapper foresaw (an
  // overflowing product, a far-future time) from reaching Kafka as "Infinity" or from
  // throwing a RangeError: it becomes a record quarantined with the field named.
  int(k: string, v: number): void {
    if (!Number.isSafeInteger(v)) throw new RecordError(RecordCodes.badField, `field "${k}" is out of range: ${String(v)}`, k);
    this.key(k);
    this.ascii(String(Math.trunc(v)));
  }

  /** Present when v is not undefined. */
  optInt(k: string, v: number | undefined): void {
    if (v !== undefined) this.int(k, v);
  }

  double(k: string, v: number): void {
    this.key(k);
    this.ascii(jsonCDouble(v));
  }

  /** A key that is always written; null becomes JSON null. */
  str(k: string, v: string | null): void {
    this.key(k);
    if (v === null) {
      this.ascii('null');
      return;
    }
    this.room(2 + MAX_ESCAPED_BYTES * v.length);
    this.pos = writeJsonCString(this.out, this.pos, v);
  }

  optStr(k: string, v: string | null | undefined): void {
    if (v !== undefined) this.str(k, v);
  }

  /** Left out when undefined, or written "Unknown" when the layout prints invalid dates. */
  optTime(k: string, t: number | undefined, printUnknown = false): void {
    if (t === undefined) {
      if (printUnknown) this.str(k, UNKNOWN_TIME);
      return;
    }
    if (!isValidSlurmTime(t)) throw new RecordError(RecordCodes.badField, `field "${k}" is not a time Slurm can print: ${String(t)}`, k);
    this.str(k, formatUtc(t));
  }

  /** The object's bytes in a buffer of their own, followed by `trailingNuls` zero bytes. */
  close(trailingNuls: number): Buffer {
    this.room(1);
    this.out[this.pos++] = 0x7d; // }
    const value = Buffer.allocUnsafe(this.pos + trailingNuls);
    this.out.copy(value, 0, 0, this.pos);
    value.fill(0, this.pos);
    return value;
  }
}

/** The Kafka message value: compact JSON, no newline; a trailing NUL only in the layouts that had one. */
export function serialize(r: JobRecord, opts: SerializeOptions): Buffer {
  return writeRecord(r, opts).close(opts.layout.trailingNul ? 1 : 0);
}

/** The record's JSON alone, without the trailing NUL of old layouts. */
export function serializeJson(r: JobRecord, opts: SerializeOptions): Buffer {
  return writeRecord(r, opts).close(0);
}

function writeRecord(r: JobRecord, opts: SerializeOptions): JsonCObject {
  const { layout } = opts;
  const finish = r.event === JobEvent.finish;
  // Before 23.11.9/24.05.1 a finish record always had @start and @end, "Unknown" when invalid.
  const printUnknown = finish && layout.invalidDates === 'print';
  const elapsed = layout.elapsedGuard ? r.elapsed : (r.rawElapsed ?? r.elapsed);
  const o = new JsonCObject();
  o.int('jobid', r.jobid);
  if (layout.sluidAndComments) {
    o.optStr('sluid', r.sluid);
    o.optStr('original_sluid', r.original_sluid);
  }
  o.str('container', r.container);
  o.str('username', r.username);
  o.int('user_id', r.user_id);
  o.str('groupname', r.groupname);
  o.int('group_id', r.group_id);
  o.optTime('@start', r.start, printUnknown);
  if (finish) {
    o.optTime('@end', r.end, printUnknown);
    o.int('elapsed', elapsed);
  }
  o.str('partition', r.partition);
  o.str('alloc_node', r.alloc_node);
  o.str('nodes', r.nodes);
  o.int('total_cpus', r.total_cpus);
  o.int('total_nodes', r.total_nodes);
  if (finish) {
    o.str('derived_ec', r.derived_ec);
    o.str('exit_code', r.exit_code);
  }
  o.str('state', finish ? r.state : null);
  if (finish) {
    o.str('failed_node', r.failed_node);
    o.double('cpu_hours', cpuHours(elapsed, r.total_cpus));
  }
  if (r.array) {
    o.int('array_job_id', r.array.job_id);
    o.int('array_task_id', r.array.task_id);
  }
  if (finish) {
    o.int('pack_job_id', r.pack_job_id);
    o.int('pack_job_offset', r.pack_job_offset);
  }
  o.int('het_job_id', r.het_job_id);
  o.int('het_job_offset', r.het_job_offset);
  if (layout.priority) o.optInt('priority', r.priority);
  o.optTime('@submit', r.submit);
  o.optTime('@eligible', r.eligible);
  if (r.queue_wait !== undefined && (r.queue_wait >= 0 || layout.invalidDates === 'print')) o.int('@queue_wait', r.queue_wait);
  o.optStr('work_dir', r.work_dir);
  o.optStr('std_err', r.std_err);
  o.optStr('std_in', r.std_in);
  o.optStr('std_out', r.std_out);
  o.optStr('cluster', r.cluster);
  o.optStr('qos', r.qos);
  o.optInt('ntasks', r.ntasks);
  o.optInt('ntasks_per_node', r.ntasks_per_node);
  o.optInt('ntasks_per_tres', r.ntasks_per_tres);
  o.optInt('cpus_per_task', r.cpus_per_task);
  o.optStr('orig_dependency', r.orig_dependency);
  o.optStr('excluded_nodes', r.excluded_nodes);
  o.optStr('features', r.features);
  o.optInt('time_limit', r.time_limit);
  o.optStr('job_name', r.job_name);
  o.optStr('reservation_name', r.reservation_name);
  o.optStr('wc_key', r.wc_key);
  if (layout.tresRaw) o.optStr('tres_req_raw', r.tres_req_raw);
  o.optStr('tres_req', r.tres_req);
  if (layout.tresRaw) o.optStr('tres_alloc_raw', r.tres_alloc_raw);
  o.optStr('tres_alloc', r.tres_alloc);
  o.optStr('account', r.account);
  if (layout.sluidAndComments) {
    o.optStr('admin_comment', r.admin_comment);
    if (opts.sendComment) o.optStr('comment', r.comment);
  }
  if (layout.script === 'always' || opts.sendScript) o.optStr('script', r.script);
  o.optStr('parent_accounts', r.parent_accounts);
  return o;
}

/** A record's JSON as the layout's plugin handed it to librdkafka: 23.02-23.11.6 passed strlen + 1 bytes. */
export function messageValue(json: Buffer, layout: RecordLayout): Buffer {
  return layout.trailingNul ? Buffer.concat([json, Buffer.alloc(1)]) : json;
}
