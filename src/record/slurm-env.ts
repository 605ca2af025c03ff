// Environments that Slurm gives its scripts (jobcomp/script, PrologSlurmctld,
// EpilogSlurmctld), as the hook forwards them: "KEY=VALUE" entries, values as byte strings.

import { RecordCodes, RecordError } from '../errors';
import { isValidSlurmTime } from './slurm-time';

export type Env = ReadonlyMap<string, string>;

export type HookContext = 'jobcomp' | 'prolog' | 'epilog';

/** NUL-separated entries (the hook's wire format). */
export function parseEnvBlock(block: Buffer): Map<string, string> {
  return entries(block.toString('latin1').split('\0'));
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
  for (const line of lines) {
    const eq = line.indexOf('=');
    if (eq > 0) env.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return env;
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
