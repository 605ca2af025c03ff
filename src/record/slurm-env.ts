// Environments that Slurm gives its scripts (jobcomp/script, PrologSlurmctld,
// EpilogSlurmctld), as the hook forwards them: "KEY=VALUE" entries, values as byte strings.

import { RecordCodes, RecordError } from '../errors';
import { isValidSlurmTime } from './slurm-time';

export type Env = ReadonlyMap<string, string>;

export type HookContext = 'jobcomp' | 'prolog' | 'epilog';

/**
 * The NUL-separated entries of the hook's wire format, scanned in place: splitting first
 * made a string of each entry only to slice it again (docs/benchmark-rounds.md, twentieth
 * session).
 */
export function parseEnvBlock(block: Buffer): Map<string, string> {
  const text = block.toString('latin1');
  const env = new Map<string, string>();
  // the first '=' at or after `at` (text.length: none): each search starts where the last
  // one ended, so entries without '=' cannot make the scan quadratic
  let eq = -1;
  for (let at = 0; at < text.length; ) {
    let end = text.indexOf('\0', at);
    if (end < 0) end = text.length;
    if (eq < at) {
      eq = text.indexOf('=', at);
      if (eq < 0) eq = text.length;
    }
    addEntry(env, text, at, eq, end);
    at = end + 1;
  }
  return env;
}

/** One KEY=VALUE per line (`env` output, `jobcompd convert`); blank and '#' lines skipped. */
export function parseEnvDump(text: Buffer): Map<string, string> {
  return entries(
    text
      .toString('latin1')
      .split('\n')
      .map((l) => l.replace(/\r$/, ''))
      .filter((l) => !l.startsWith('#')),
  );
}

function entries(lines: string[]): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of lines) addEntry(env, line, 0, line.indexOf('='), line.length);
  return env;
}

/** KEY=VALUE from `start` to `end`, `eq` the first '=' from `start`: no key, or no '=', no entry. */
function addEntry(env: Map<string, string>, text: string, start: number, eq: number, end: number): void {
  if (eq > start && eq < end) env.set(text.slice(start, eq), text.slice(eq + 1, end));
}

/** Which Slurm hook produced this environment. */
export function hookContext(env: Env): HookContext | undefined {
  const ctx = env.get('SLURM_SCRIPT_CONTEXT');
  if (ctx === 'prolog_slurmctld') return 'prolog';
  if (ctx === 'epilog_slurmctld') return 'epilog';
  if (env.has('JOBID')) return 'jobcomp';
  return undefined;
}

/** Typed access to variables; every failure names the variable. */
export class EnvFields {
  constructor(private readonly env: Env) {}

  has(key: string): boolean {
    return this.env.has(key);
  }

  private bad(key: string, expected: string, got: string): RecordError {
    return new RecordError(RecordCodes.badField, `variable ${key} must be ${expected}, got ${JSON.stringify(got.slice(0, 40))}`, key);
  }

  uint(key: string): number {
    const v = this.env.get(key);
    if (v === undefined) throw new RecordError(RecordCodes.missingField, `missing required variable ${key}`, key);
    return this.parseUint(key, v);
  }

  optUint(key: string): number | undefined {
    const v = this.env.get(key);
    return v === undefined || v === '' ? undefined : this.parseUint(key, v);
  }

  private parseUint(key: string, v: string): number {
    if (!/^\d{1,15}$/.test(v)) throw this.bad(key, 'a non-negative integer', v);
    return Number(v);
  }

  /** The value as sent ("" included); undefined when the variable is absent. */
  raw(key: string): string | undefined {
    return this.env.get(key);
  }

  string(key: string): string {
    const v = this.env.get(key);
    if (v === undefined) throw new RecordError(RecordCodes.missingField, `missing required variable ${key}`, key);
    return v;
  }

  /** Absent or empty -> undefined (the hooks write NULL values as ""). */
  optString(key: string): string | undefined {
    const v = this.env.get(key);
    return v === undefined || v === '' ? undefined : v;
  }

  /** Absent or empty -> null. */
  nullableString(key: string): string | null {
    return this.optString(key) ?? null;
  }

  /** Epoch seconds; 0, NO_VAL and INFINITE are not times. */
  time(key: string): number | undefined {
    const t = this.optUint(key);
    return t !== undefined && isValidSlurmTime(t) ? t : undefined;
  }
}
