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
  return parseUsualUtc(s) ?? parseAnyUtc(s);
}

const DIGIT_AT = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The times records carry (years 100 to 9999, every field in range) by integer arithmetic:
 * the regular expression, Date.UTC and the round trip of parseAnyUtc were a tenth of mapping
 * an elasticsearch body (docs/benchmarks.md). Undefined for anything else, which parseAnyUtc
 * then decides.
 */
function parseUsualUtc(s: string): number | undefined {
  if (s.length !== 19 || s[4] !== '-' || s[7] !== '-' || s[10] !== 'T' || s[13] !== ':' || s[16] !== ':') return undefined;
  for (const i of DIGIT_AT) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  const num = (at: number, len: number): number => {
    let n = 0;
    for (let i = at; i < at + len; i++) n = n * 10 + s.charCodeAt(i) - 0x30;
    return n;
  };
  const year = num(0, 4);
  const month = num(5, 2);
  const day = num(8, 2);
  const hour = num(11, 2);
  const min = num(14, 2);
  const sec = num(17, 2);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
  if (year < 100 || monthDays === undefined || day < 1 || day > monthDays || hour > 23 || min > 59 || sec > 59) return undefined;
  // days_from_civil (H. Hinnant), the inverse of formatUtc's civil_from_days
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  const days = era * 146097 + doe - 719468;
  return days * 86400 + hour * 3600 + min * 60 + sec;
}

function parseAnyUtc(s: string): number | undefined {
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
