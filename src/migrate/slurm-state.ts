// Readers and writers of the state files Slurm's job-completion plugins leave in
// StateSaveLocation at shutdown, so that the records they saved can be migrated:
//
//   jobcomp_kafka_state  uint16 protocol version, uint32 count, then per record
//                        25.05+: uint32 event, uint32 job id, packstr payload
//                        23.02-24.11: uint32 job id, packstr payload (job finish only)
//   elasticsearch_state  uint32 count, then count packstr (no version header)
//
// Integers are big-endian. A packstr is a uint32 length L = strlen + 1, then L bytes
// ending in a NUL; L = 0 is a NULL string.

import { basename } from 'path';
import { SlurmStateError } from '../errors';

export type SlurmStateKind = 'jobcomp_kafka_state' | 'elasticsearch_state';

export interface SavedRecord {
  /** 1 = job finish, 2 = job start */
  event: 1 | 2;
  jobId: number | undefined;
  /** The record as Slurm saved it, without the NUL (a view into the parsed buffer). */
  payload: Buffer;
}

export interface SlurmState {
  kind: SlurmStateKind;
  /** jobcomp_kafka_state only */
  protocolVersion: number | undefined;
  /** e.g. "25.05"; jobcomp_kafka_state only */
  slurmVersion: string | undefined;
  records: SavedRecord[];
}

/** The Slurm protocol versions whose jobcomp/kafka wrote a state file. */
const KAFKA_STATE_VERSIONS: ReadonlyMap<number, string> = new Map([
  [0x2700, '23.02'],
  [0x2800, '23.11'],
  [0x2900, '24.05'],
  [0x2a00, '24.11'],
  [0x2b00, '25.05'],
  [0x2c00, '25.11'],
  [0x2d00, '26.05'],
]);
/** From this version on, each record starts with its event. */
const EVENT_FIELD_SINCE = 0x2b00;

// A record is at least its fixed fields plus a packstr of an empty string (length + NUL).
const MIN_PACKSTR = 5;
const MIN_RECORD_ES = MIN_PACKSTR;
const MIN_RECORD_KAFKA_OLD = 4 + MIN_PACKSTR;
const MIN_RECORD_KAFKA_EVENT = 4 + 4 + MIN_PACKSTR;

/** A failed attempt at one interpretation; only one of them is reported. */
class Mismatch extends Error {}

/** Reads big-endian fields; every failure names the format, the place and what was expected. */
class Reader {
  pos = 0;
  /** what is being read, for messages: "header", "record 3 of 10"... */
  place = 'header';

  constructor(
    private readonly buf: Buffer,
    /** the format tried, for messages */
    public format: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  fail(detail: string, at: number = this.pos): never {
    throw new Mismatch(`${this.format}: ${this.place} at byte ${at}: ${detail}`);
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  packstr(what: string): Buffer {
    const at = this.pos;
    const len = this.u32(`${what} length`);
    if (len === 0) this.fail(`${what} is a NULL string (packstr length 0)`, at);
    if (len > this.remaining) {
      this.fail(`${what} packstr length ${len} runs past the end of the file (${this.buf.length} bytes)`, at);
    }
    const end = this.pos + len - 1;
    if (this.buf[end] !== 0) this.fail(`${what} packstr of length ${len} does not end with a NUL`, at);
    const nul = this.buf.indexOf(0, this.pos);
    if (nul < end) this.fail(`${what} packstr of length ${len} has a NUL at byte ${nul}, before its end`, at);
    const bytes = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return bytes;
  }

  /** Checks the record count against the bytes left, before anything is read or allocated. */
  count(minRecord: number): number {
    const count = this.u32('record count');
    if (count > Math.floor(this.remaining / minRecord)) {
      this.fail(
        `record count ${count} needs at least ${count * minRecord} bytes, but only ${this.remaining} follow the header`,
        this.pos - 4,
      );
    }
    return count;
  }

  startRecord(index: number, count: number): void {
    this.place = `record ${index + 1} of ${count}`;
    if (this.remaining === 0) this.fail(`the file ends after ${plural(index, 'record')}, but the header says ${count}`);
  }

  end(count: number): void {
    if (this.remaining === 0) return;
    this.place = count === 0 ? 'after the header' : 'after the last record';
    this.fail(`${plural(this.remaining, 'byte')} of trailing data (the header says ${plural(count, 'record')}; the file is ${this.buf.length} bytes)`);
  }

  private need(n: number, what: string): void {
    if (this.remaining < n) this.fail(`the file ends (${plural(this.buf.length, 'byte')}) before the ${n}-byte ${what}`);
  }
}

function parseKafkaState(buf: Buffer): SlurmState {
  const r: Reader = new Reader(buf, 'jobcomp_kafka_state'); // typed, so that r.fail() narrows
  const version = r.u16('protocol version');
  const slurmVersion = KAFKA_STATE_VERSIONS.get(version);
  if (slurmVersion === undefined) r.fail(`unknown protocol version ${hex(version)} (known: ${knownVersions()})`, 0);
  r.format = `jobcomp_kafka_state (${slurmVersion} layout)`;
  const withEvent = version >= EVENT_FIELD_SINCE;

  const count = r.count(withEvent ? MIN_RECORD_KAFKA_EVENT : MIN_RECORD_KAFKA_OLD);
  const records: SavedRecord[] = [];
  for (let i = 0; i < count; i++) {
    r.startRecord(i, count);
    let event: 1 | 2 = 1;
    if (withEvent) {
      const at = r.pos;
      const e = r.u32('event');
      if (e !== 1 && e !== 2) r.fail(`unknown event ${e} (expected 1 = job finish or 2 = job start)`, at);
      event = e;
    }
    const jobId = r.u32('job id');
    records.push({ event, jobId, payload: r.packstr('payload') });
  }
  r.end(count);
  return { kind: 'jobcomp_kafka_state', protocolVersion: version, slurmVersion, records };
}

function parseElasticsearchState(buf: Buffer): SlurmState {
  const r = new Reader(buf, 'elasticsearch_state');
  const count = r.count(MIN_RECORD_ES);
  const records: SavedRecord[] = [];
  for (let i = 0; i < count; i++) {
    r.startRecord(i, count);
    const payload = r.packstr('JSON body');
    records.push({ event: 1, jobId: leadingJobId(payload), payload });
  }
  r.end(count);
  return { kind: 'elasticsearch_state', protocolVersion: undefined, slurmVersion: undefined, records };
}

/** The N of a body that starts `{"jobid":N` (as jobcomp/elasticsearch writes it), without parsing the rest. */
function leadingJobId(payload: Buffer): number | undefined {
  const m = /^\{"jobid":(\d{1,10})[,}]/.exec(payload.subarray(0, 24).toString('latin1'));
  if (!m?.[1]) return undefined;
  const n = Number(m[1]);
  return n <= 0xffffffff ? n : undefined;
}

/**
 * Parses a jobcomp_kafka_state or elasticsearch_state file. The content decides which: a
 * file name starting with either only decides which is tried first and which failure is
 * reported when neither fits.
 */
export function parseSlurmState(buf: Buffer, fileName?: string): SlurmState {
  const named = kindFromName(fileName);
  // Messages start with the format's name; the file's name is added when it says more.
  const prefix = (kind: string): string => (fileName === undefined || basename(fileName) === kind ? '' : `${fileName}: `);
  if (buf.length === 0) {
    const expected = named ?? 'jobcomp_kafka_state or elasticsearch_state';
    throw new SlurmStateError(`${prefix(expected)}empty file (0 bytes): no ${expected} header`);
  }

  const failures = new Map<SlurmStateKind, string>();
  const attempt = (kind: SlurmStateKind): SlurmState | undefined => {
    try {
      return kind === 'jobcomp_kafka_state' ? parseKafkaState(buf) : parseElasticsearchState(buf);
    } catch (err) {
      if (!(err instanceof Mismatch)) throw err;
      failures.set(kind, err.message);
      return undefined;
    }
  };
  const order: SlurmStateKind[] =
    named === 'elasticsearch_state' ? ['elasticsearch_state', 'jobcomp_kafka_state'] : ['jobcomp_kafka_state', 'elasticsearch_state'];
  for (const kind of order) {
    const state = attempt(kind);
    if (state) return state;
  }

  // Report the likelier format: protocol versions are n << 8 with n > 0, while an
  // elasticsearch_state count starting like that would be 16 million records or more.
  const looksVersioned = buf.length >= 2 && buf[0] !== 0 && buf[1] === 0;
  const reported = named ?? (looksVersioned ? 'jobcomp_kafka_state' : 'elasticsearch_state');
  throw new SlurmStateError(`${prefix(reported)}${failures.get(reported) ?? ''}`);
}

/** Writes a jobcomp_kafka_state file in the layout of `version`. */
export function encodeKafkaState(version: number, records: SavedRecord[]): Buffer {
  const slurmVersion = KAFKA_STATE_VERSIONS.get(version);
  if (slurmVersion === undefined) throw new RangeError(`unknown jobcomp_kafka_state protocol version ${hex(version)}`);
  const withEvent = version >= EVENT_FIELD_SINCE;
  const parts = [u16(version), u32(records.length)];
  for (const rec of records) {
    if (rec.jobId === undefined) throw new RangeError('jobcomp_kafka_state records need a job id');
    if (withEvent) parts.push(u32(rec.event));
    else if (rec.event !== 1) throw new RangeError(`the ${slurmVersion} layout stores job finish records only`);
    parts.push(u32(rec.jobId), packstr(rec.payload));
  }
  return Buffer.concat(parts);
}

/** Writes an elasticsearch_state file. */
export function encodeElasticsearchState(payloads: Buffer[]): Buffer {
  return Buffer.concat([u32(payloads.length), ...payloads.map(packstr)]);
}

function kindFromName(fileName: string | undefined): SlurmStateKind | undefined {
  const name = fileName === undefined ? '' : basename(fileName);
  if (name.startsWith('jobcomp_kafka_state')) return 'jobcomp_kafka_state';
  if (name.startsWith('elasticsearch_state')) return 'elasticsearch_state';
  return undefined;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function hex(v: number): string {
  return `0x${v.toString(16).toUpperCase().padStart(4, '0')}`;
}

function knownVersions(): string {
  return [...KAFKA_STATE_VERSIONS].map(([v, name]) => `${hex(v)} = ${name}`).join(', ');
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}

function packstr(payload: Buffer): Buffer {
  // A NUL inside would cut the string short for Slurm: it could not be read back.
  if (payload.includes(0)) throw new RangeError('a packstr cannot contain a NUL byte');
  return Buffer.concat([u32(payload.length + 1), payload, Buffer.alloc(1)]);
}
