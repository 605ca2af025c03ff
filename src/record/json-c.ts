// Pure re-implementations of the two json-c output routines the jobcomp/kafka payload
// depends on (json-c 0.13-0.16, JSON_C_TO_STRING_PLAIN, no NOSLASHESCAPE):
//   - json_escape_str: string escaping
//   - json_object_double_to_json_string: "%.17g" plus ".0" when there is no '.' or 'e'
// Inputs and outputs are byte strings (one char per byte), see job-record.ts.

const HEX = '0123456789abcdef';

/** What json-c writes for each byte value: its escape, or undefined for the byte itself. */
const ESCAPED: readonly (string | undefined)[] = Array.from({ length: 256 }, (_, c) => escapeFor(c));

/** The most bytes one input byte becomes ("\u001f"). */
export const MAX_ESCAPED_BYTES = 6;

/**
 * Write a byte string quoted and escaped the way json-c does into `out` from `pos`, which
 * must have room for 2 + MAX_ESCAPED_BYTES * bytes.length; returns the position after it.
 * Byte by byte into the record's buffer: string ropes and their copies were half of
 * serializing a record (docs/benchmarks.md).
 */
export function writeJsonCString(out: Uint8Array, pos: number, bytes: string): number {
  out[pos++] = 0x22;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i);
    const esc = ESCAPED[c];
    if (esc === undefined) out[pos++] = c;
    else for (let j = 0; j < esc.length; j++) out[pos++] = esc.charCodeAt(j);
  }
  out[pos++] = 0x22;
  return pos;
}

/** Escape a byte string the way json-c does; returns the quoted JSON string. */
export function jsonCString(bytes: string): string {
  const out = Buffer.allocUnsafe(2 + MAX_ESCAPED_BYTES * bytes.length);
  return out.toString('latin1', 0, writeJsonCString(out, 0, bytes));
}

function escapeFor(c: number): string | undefined {
  switch (c) {
    case 0x08: return '\\b';
    case 0x09: return '\\t';
    case 0x0a: return '\\n';
    case 0x0c: return '\\f';
    case 0x0d: return '\\r';
    case 0x22: return '\\"';
    case 0x2f: return '\\/';
    case 0x5c: return '\\\\';
    default:
      // json-c escapes only bytes below 0x20; 0x7f and every byte >= 0x80 pass through raw.
      return c < 0x20 ? `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}` : undefined;
  }
}

/** json-c's rendering of a double: C's "%.17g", then ".0" appended if it looks like an int. */
export function jsonCDouble(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  const s = formatG17(x);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/**
 * C printf("%.17g", x) for a finite double, exactly: the decimal expansion of a double
 * is finite, so we compute it with BigInt and round half-to-even like glibc does.
 * (Number#toPrecision rounds ties away from zero, which differs on exact ties.)
 */
export function formatG17(x: number): string {
  const PRECISION = 17;
  const negative = x < 0 || Object.is(x, -0);
  const sign = negative ? '-' : '';
  if (x === 0) return `${sign}0`;
  // an integer of at most 16 digits prints as itself; String() is exact there (and fast)
  if (Number.isSafeInteger(x)) return String(x);
  const { digits, pointPos } = precisionDigits(Math.abs(x), PRECISION) ?? roundedDigits(Math.abs(x), PRECISION);
  // digits: exactly PRECISION decimal digits; value = 0.digits * 10^pointPos
  const exponent = pointPos - 1;
  if (exponent < -4 || exponent >= PRECISION) {
    const mantissa = stripFraction(`${digits[0]}.${digits.slice(1)}`);
    const expSign = exponent < 0 ? '-' : '+';
    const expAbs = String(Math.abs(exponent)).padStart(2, '0');
    return `${sign}${mantissa}e${expSign}${expAbs}`;
  }
  let fixed: string;
  if (pointPos <= 0) fixed = `0.${'0'.repeat(-pointPos)}${digits}`;
  else fixed = `${digits.slice(0, pointPos)}.${digits.slice(pointPos)}`;
  return sign + stripFraction(fixed);
}

function stripFraction(s: string): string {
  if (!s.includes('.')) return s;
  return s.replace(/0+$/, '').replace(/\.$/, '');
}

/**
 * Number#toPrecision's digits, when they are printf's: both round the exact value
 * correctly, and differ only on an exact tie, which toPrecision breaks away from zero and
 * glibc to even. A tie at `precision` digits means the exact value has one digit more and it
 * is 5, so toPrecision(precision + 1) shows it; then (1 value in 10) this answers undefined
 * and roundedDigits decides. The BigInt path cost more than the rest of a record's
 * serialization (docs/benchmarks.md).
 */
function precisionDigits(x: number, precision: number): { digits: string; pointPos: number } | undefined {
  if (splitExponent(x.toPrecision(precision + 1)).mantissa.replace('.', '').endsWith('5')) return undefined;
  const { mantissa, exponent } = splitExponent(x.toPrecision(precision));
  const all = mantissa.replace('.', '');
  const digits = all.replace(/^0+/, '');
  // "d.ddd" or "ddd.dd" or "0.000ddd": the point's place, counted from the first significant digit
  const point = mantissa.indexOf('.');
  const intDigits = point < 0 ? mantissa.length : point;
  const pointPos = exponent === undefined ? intDigits - (all.length - digits.length) : exponent + 1;
  return digits.length === precision ? { digits, pointPos } : undefined;
}

/** A Number#toPrecision result split at its exponent, if it has one ("1.5e+21": "1.5", 21). */
function splitExponent(shown: string): { mantissa: string; exponent: number | undefined } {
  const e = shown.indexOf('e');
  return e < 0 ? { mantissa: shown, exponent: undefined } : { mantissa: shown.slice(0, e), exponent: Number(shown.slice(e + 1)) };
}

/** The first `precision` significant decimal digits of |x| rounded half-even, and where the point goes. */
function roundedDigits(x: number, precision: number): { digits: string; pointPos: number } {
  const { mantissa, exp2 } = decompose(x);
  // x = mantissa * 2^exp2 = num / den exactly
  let num = mantissa;
  let den = 1n;
  if (exp2 >= 0) num <<= BigInt(exp2);
  else den <<= BigInt(-exp2);
  // Find pointPos such that 10^(pointPos-1) <= x < 10^pointPos.
  let pointPos = Math.floor(Math.log10(x)) + 1;
  const fits = (p: number): boolean => {
    const [n, d] = scaled(num, den, p);
    return n < d && n * 10n >= d; // 0.1 <= x / 10^p < 1
  };
  while (!fits(pointPos)) pointPos += scaledBelow(num, den, pointPos) ? -1 : 1;
  // digitsInt = x * 10^(precision - pointPos), rounded half-even
  const [n, d] = scaled(num, den, pointPos - precision);
  let q = n / d;
  const r2 = (n % d) * 2n;
  if (r2 > d || (r2 === d && q % 2n === 1n)) q += 1n;
  let digits = q.toString();
  if (digits.length > precision) {
    // rounding carried into a new digit (e.g. 9.99... -> 10.0...)
    digits = digits.slice(0, precision);
    pointPos += 1;
  }
  return { digits, pointPos };
}

/** num/den divided by 10^p, as a new fraction. */
function scaled(num: bigint, den: bigint, p: number): [bigint, bigint] {
  return p >= 0 ? [num, den * 10n ** BigInt(p)] : [num * 10n ** BigInt(-p), den];
}

function scaledBelow(num: bigint, den: bigint, p: number): boolean {
  const [n, d] = scaled(num, den, p);
  return n * 10n < d;
}

/** x (finite, > 0) as an integer mantissa times a power of two. */
function decompose(x: number): { mantissa: bigint; exp2: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biasedExp = (hi >>> 20) & 0x7ff;
  const fracHi = hi & 0xfffff;
  let mantissa = (BigInt(fracHi) << 32n) | BigInt(lo);
  if (biasedExp === 0) return { mantissa, exp2: -1074 };
  mantissa |= 1n << 52n;
  return { mantissa, exp2: biasedExp - 1075 };
}
