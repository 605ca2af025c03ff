// Slurm's time values as they appear in jobcomp records.

/** NO_VAL and INFINITE as 32-bit values assigned to time_t: never valid times. */
export const SLURM_NO_VAL = 0xfffffffe;
export const SLURM_INFINITE = 0xffffffff;

/** Latest second strftime("%FT%T") renders with a four-digit year. */
const MAX_RENDERABLE = 253402300799;

/**
 * The validity rule of jobcomp/kafka 23.11.9+: 0, NO_VAL and INFINITE would render as
 * "Unknown"/"None" and are left out of the record.
 */
export function isValidSlurmTime(t: number): boolean {
  return Number.isInteger(t) && t > 0 && t !== SLURM_NO_VAL && t !== SLURM_INFINITE && t <= MAX_RENDERABLE;
}

/** 0000-01-01T00:00:00, the earliest time with a four-digit year. */
const MIN_FOUR_DIGIT_YEAR = -62167219200;

/**
 * parse_time_make_str_utc: "%FT%T" over gmtime, no zone suffix, no fraction. By integer
 * arithmetic (civil_from_days, H. Hinnant): Date#toISOString was the largest single cost of
 * serializing a record (bench/throughput.ts profile). Anything else goes through Date.
 */
export function formatUtc(t: number): string {
  if (!Number.isInteger(t) || t < MIN_FOUR_DIGIT_YEAR || t > MAX_RENDERABLE) return new Date(t * 1000).toISOString().slice(0, 19);
  const days = Math.floor(t / 86400);
  const secs = t - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(secs / 3600);
  const min = Math.floor((secs % 3600) / 60);
  return `${String(year).padStart(4, '0')}-${two(month)}-${two(day)}T${two(hour)}:${two(min)}:${two(secs % 60)}`;
}

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

const UTC_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/;

/** Inverse of formatUtc. Returns undefined for anything else ("Unknown", "None", ""). */
export function parseUtc(s: string): number | undefined {
  const m = UTC_TIME.exec(s);
  if (!m) return undefined;
  const [year, month, day, hour, min, sec] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, min, sec);
  const t = ms / 1000;
  // Date.UTC normalises out-of-range fields (month 13, second 61); the round trip rejects them.
  return Number.isFinite(t) && formatUtc(t) === s ? t : undefined;
}

/**
 * jobcomp/kafka's `@start`/`@end`/`elapsed` rule for a finish record (docs/record-mapping.md): a start
 * after the end is "Unknown" (left out), and `elapsed` is `end - start` only when both are
 * valid and start < end, else 0.
 */
export function finishTimes(start: number | undefined, end: number | undefined): { start: number | undefined; end: number | undefined; elapsed: number } {
  if (start !== undefined && end !== undefined && start > end) return { start: undefined, end, elapsed: 0 };
  return { start, end, elapsed: start !== undefined && end !== undefined && start < end ? end - start : 0 };
}
