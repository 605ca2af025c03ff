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

/** parse_time_make_str_utc: "%FT%T" over gmtime, no zone suffix, no fraction. */
export function formatUtc(t: number): string {
  return new Date(t * 1000).toISOString().slice(0, 19);
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
 * jobcomp/kafka's `@start`/`@end`/`elapsed` rule for a finish record (spec §7.2): a start
 * after the end is "Unknown" (left out), and `elapsed` is `end - start` only when both are
 * valid and start < end, else 0.
 */
export function finishTimes(start: number | undefined, end: number | undefined): { start: number | undefined; end: number | undefined; elapsed: number } {
  if (start !== undefined && end !== undefined && start > end) return { start: undefined, end, elapsed: 0 };
  return { start, end, elapsed: start !== undefined && end !== undefined && start < end ? end - start : 0 };
}
