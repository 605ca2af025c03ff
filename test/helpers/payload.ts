// A jobcomp record's bytes as an ordered list of (key, raw value) pairs, so that two records can
// be compared byte for byte after replacing only the values that differ between two runs.
// Bytes are read as latin1: one character per byte, so non-ASCII UTF-8 passes through unchanged
// and every structural character ('"', '\\', ':', ',') is still found where it is.

export interface Entry {
  /** the key as written, quotes and escapes included */
  rawKey: string;
  /** the value as written */
  raw: string;
}

export interface Payload {
  bytes: Buffer;
  entries: Entry[];
  /** JSON.parse of the bytes (for matching and run-dependent values) */
  value: Record<string, unknown>;
}

/**
 * The bytes up to the end of the top-level JSON object, and what follows it. Slurm 24.11's
 * jobcomp/kafka can save a record with bytes after it in its state file (docs/migration.md).
 */
export function splitAfterObject(bytes: Buffer): { object: Buffer; after: Buffer } {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if ((c === 0x7d || c === 0x5d) && --depth === 0) return { object: bytes.subarray(0, i + 1), after: bytes.subarray(i + 1) };
  }
  return { object: bytes, after: Buffer.alloc(0) };
}

export function parsePayload(bytes: Buffer): Payload {
  const text = bytes.toString('latin1');
  const entries: Entry[] = [];
  let i = 0;
  const expect = (c: string): void => {
    if (text[i] !== c) throw new Error(`payload: expected ${c} at byte ${i}: ${text.slice(Math.max(0, i - 20), i + 20)}`);
    i++;
  };
  const skipString = (): void => {
    expect('"');
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    expect('"');
  };
  const skipValue = (): void => {
    if (text[i] === '"') return skipString();
    if (text[i] === '{' || text[i] === '[') {
      const close = text[i] === '{' ? '}' : ']';
      i++;
      while (text[i] !== close) {
        skipValue();
        if (text[i] === ':' || text[i] === ',') i++;
      }
      i++;
      return;
    }
    while (i < text.length && !',}]:'.includes(text[i] as string)) i++;
  };
  expect('{');
  while (text[i] !== '}') {
    const keyStart = i;
    skipString();
    const rawKey = text.slice(keyStart, i);
    expect(':');
    const valueStart = i;
    skipValue();
    entries.push({ rawKey, raw: text.slice(valueStart, i) });
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`payload: expected , or } at byte ${i}`);
  }
  if (i !== text.length - 1) throw new Error(`payload: ${text.length - 1 - i} bytes after the object: ${bytes.subarray(i + 1).toString('hex')} (${text.slice(0, 60)}...)`);
  return { bytes, entries, value: JSON.parse(bytes.toString('utf8')) as Record<string, unknown> };
}

export function keyOf(e: Entry): string {
  return JSON.parse(Buffer.from(e.rawKey, 'latin1').toString('utf8')) as string;
}

/** Values that differ between two runs of the same job: wall-clock times, what follows from them, ids. */
export const RUN_DEPENDENT_KEYS: ReadonlySet<string> = new Set([
  'jobid',
  'sluid',
  'original_sluid',
  '@start',
  '@end',
  '@submit',
  '@eligible',
  '@queue_wait',
  'elapsed',
  'cpu_hours',
  'array_job_id',
  'het_job_id',
  'pack_job_id',
]);

/**
 * The entries with run-dependent values replaced by `<key>`, and job ids inside
 * `orig_dependency` by the name of the job (`ids` maps id -> name in this run).
 */
export function normalisedEntries(p: Payload, ids: ReadonlyMap<number, string>): { key: string; rawKey: string; raw: string }[] {
  return p.entries.map((e) => {
    const key = keyOf(e);
    let raw = RUN_DEPENDENT_KEYS.has(key) ? `<${key}>` : e.raw;
    if (key === 'orig_dependency') raw = raw.replace(/:(\d+)/g, (_, id: string) => `:<${ids.get(Number(id)) ?? `job ${id}`}>`);
    return { key, rawKey: e.rawKey, raw };
  });
}

/** The whole normalised payload, as one string to compare byte for byte. */
export function normalised(p: Payload, ids: ReadonlyMap<number, string>): string {
  return `{${normalisedEntries(p, ids).map((e) => `${e.rawKey}:${e.raw}`).join(',')}}`;
}

export type Verdict = 'same' | 'differs' | 'missing' | 'extra';

export interface FieldComparison {
  key: string;
  /** 'same': equal bytes (after normalisation); 'differs'; 'missing': only in the reference; 'extra': only in ours */
  verdict: Verdict;
  reference?: string;
  ours?: string;
}

/** Field by field, in the reference's order, then our extra keys. */
export function compareFields(reference: Payload, ours: Payload, refIds: ReadonlyMap<number, string>, ourIds: ReadonlyMap<number, string>): FieldComparison[] {
  const ref = new Map(normalisedEntries(reference, refIds).map((e) => [e.key, e.raw]));
  const our = new Map(normalisedEntries(ours, ourIds).map((e) => [e.key, e.raw]));
  const out: FieldComparison[] = [];
  for (const [key, raw] of ref) {
    const mine = our.get(key);
    out.push({ key, verdict: mine === undefined ? 'missing' : mine === raw ? 'same' : 'differs', reference: raw, ours: mine });
  }
  for (const [key, raw] of our) if (!ref.has(key)) out.push({ key, verdict: 'extra', ours: raw });
  return out;
}
