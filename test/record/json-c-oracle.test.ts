// Differential test of our pure json-c/glibc re-implementation against the real thing:
// test/oracle/jsonc-oracle.c, linked with this machine's libjson-c, answers the same
// questions and every answer must match ours byte for byte.
//   's' jsonCString(s)               vs json_object_new_string_len + JSON_C_TO_STRING_PLAIN
//   'j' jsonCDouble(x)               vs json_object_new_double + JSON_C_TO_STRING_PLAIN
//   'g' formatG17(x)                 vs snprintf("%.17g")
//   'h' jsonCDouble(cpuHours(e, c))  vs (float)(e * c) / 3600.0f, widened, via json-c
// Inputs come from a fixed-seed PRNG (printed) plus hand-picked edge cases; all requests
// go through one oracle process in a single batch.

import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { formatG17, jsonCDouble, jsonCString } from '../../src/record/json-c';
import { Rng } from '../helpers/random';
import { cpuHours } from '../../src/record/serialize';

const SEED = 0x6a736f6e; // "json"; fixed so every run compares the same inputs
const RANDOM_PER_KIND = 20_000;

type Kind = 's' | 'j' | 'g' | 'h';
interface Request {
  kind: Kind;
  payload: Buffer;
}

// ---------------------------------------------------------------------------------------
// Byte strings

const byteString = (...bytes: number[]): string => String.fromCharCode(...bytes);

/** UTF-8 encoding of a code point, without validity checks (so surrogates are allowed). */
function utf8(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}

const SPECIAL = [0x2f, 0x22, 0x5c, 0x7f, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x00, 0x1f, 0x20];

/** One fragment of a random string: a mix designed to hit every byte and every escape path. */
function fragment(rng: Rng): number[] {
  switch (rng.between(0, 9)) {
    case 0:
    case 1: // any byte
      return [rng.between(0, 0xff)];
    case 2: // a run of one special byte ('/', '"', '\\', controls, DEL, space)
      return new Array<number>(rng.between(1, 6)).fill(rng.pick(SPECIAL));
    case 3: // control characters
      return [rng.between(0, 0x1f)];
    case 4: // bytes >= 0x7f
      return [rng.between(0x7f, 0xff)];
    case 5: // printable ASCII
      return [rng.between(0x20, 0x7e)];
    case 6: { // valid UTF-8, 2 to 4 bytes
      const ranges: ReadonlyArray<readonly [number, number]> = [[0x80, 0x7ff], [0x800, 0xd7ff], [0xe000, 0xffff], [0x10000, 0x10ffff]];
      const [lo, hi] = rng.pick(ranges);
      return utf8(rng.between(lo, hi));
    }
    case 7: { // invalid UTF-8: surrogates, overlongs, out of range, truncated, stray continuations
      switch (rng.between(0, 4)) {
        case 0: return utf8(rng.between(0xd800, 0xdfff));
        case 1: return [0xc0 | rng.between(0, 1), rng.between(0x80, 0xbf)];
        case 2: return [rng.between(0xf5, 0xff), rng.between(0x80, 0xbf), rng.between(0x80, 0xbf)];
        case 3: return utf8(rng.between(0x800, 0x10ffff)).slice(0, -1);
        default: return new Array<number>(rng.between(1, 3)).fill(0).map(() => rng.between(0x80, 0xbf));
      }
    }
    case 8: // things that look like escapes already
      return [...Buffer.from(rng.pick(['\\u0000', '\\/', '\\"', '\\\\', '</', '"/"', '\\n', '%s', '%n']), 'latin1')];
    default: // a byte and its neighbours around the escape boundaries
      return [rng.pick([0x1f, 0x20, 0x21, 0x2e, 0x2f, 0x30, 0x5b, 0x5c, 0x5d, 0x7e, 0x7f, 0x80, 0xbf, 0xc0, 0xfe, 0xff])];
  }
}

function randomByteString(rng: Rng): string {
  const len = rng.between(0, 64);
  const bytes: number[] = [];
  while (bytes.length < len) bytes.push(...fragment(rng));
  return byteString(...bytes.slice(0, len));
}

function edgeStrings(): string[] {
  const all = Array.from({ length: 256 }, (_, b) => b);
  const out = [
    '',
    byteString(...all),
    byteString(...all.reverse()),
    '/'.repeat(100),
    '"'.repeat(33),
    '\\'.repeat(65),
    '\0'.repeat(17),
    'http://example.com/a/b?c="d"\\e',
    '</script>',
    byteString(0xe2, 0x80, 0xa8, 0xe2, 0x80, 0xa9), // U+2028 U+2029
    byteString(0xef, 0xbb, 0xbf), // BOM
    byteString(0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80), // CESU-8 surrogate pair
    byteString(0xf4, 0x90, 0x80, 0x80), // > U+10FFFF
    byteString(0xc0, 0xaf, 0xe0, 0x80, 0xaf), // overlong '/'
    byteString(0x80),
    byteString(0xff, 0xfe),
    'alice',
    'node[001-002]',
    '/home/alice/run.sh',
    'tres=cpu=4,mem=8G,node=1,billing=4',
    // long strings cross json-c's printbuf growth and its internal flush points
    byteString(...Array.from({ length: 5000 }, (_, i) => (i * 37) & 0xff)),
    '/\\"\n'.repeat(20000),
    'x'.repeat(70000) + '\0',
  ];
  for (const b of all) out.push(byteString(b), byteString(b, b), byteString(0x41, b, 0x42));
  return out;
}

// ---------------------------------------------------------------------------------------
// Doubles

const scratch = new DataView(new ArrayBuffer(8));
function fromBits(bits: bigint): number {
  scratch.setBigUint64(0, bits);
  return scratch.getFloat64(0);
}
function toBits(x: number): bigint {
  scratch.setFloat64(0, x);
  return scratch.getBigUint64(0);
}
function nextUp(x: number): number {
  if (x === 0) return Number.MIN_VALUE;
  const b = toBits(x);
  return fromBits(x > 0 ? b + 1n : b - 1n);
}
function nextDown(x: number): number {
  return -nextUp(-x);
}

/**
 * A double whose exact decimal expansion has exactly 18 significant digits ending in 5, so
 * that "%.17g" hits an exact tie: k / 2^n (k odd) = k * 5^n / 10^n, so we need
 * k * 5^n in [1e17, 1e18) and k < 2^53, which allows n = 3..25.
 */
function tieDouble(rng: Rng): number {
  const n = rng.between(3, 25);
  const p5 = 5n ** BigInt(n);
  const lo = (10n ** 17n + p5 - 1n) / p5;
  let hi = (10n ** 18n - 1n) / p5;
  if (hi >= 1n << 53n) hi = (1n << 53n) - 1n;
  let k = lo + (rng.bigBits(64) % (hi - lo + 1n));
  if (k % 2n === 0n) k = k + 1n <= hi ? k + 1n : k - 1n;
  const x = Number(k) / 2 ** n; // exact: k < 2^53 and a division by a power of two
  return rng.chance(0.5) ? -x : x;
}

function randomFiniteBits(rng: Rng): number {
  for (;;) {
    const x = fromBits(rng.bigBits(64));
    if (Number.isFinite(x)) return x;
  }
}

function randomFiniteFloat(rng: Rng): number {
  const f32 = new DataView(new ArrayBuffer(4));
  for (;;) {
    f32.setUint32(0, rng.u32());
    const x = f32.getFloat32(0);
    if (Number.isFinite(x)) return x;
  }
}

function randomDouble(rng: Rng): number {
  switch (rng.between(0, 9)) {
    case 0:
    case 1:
    case 2:
    case 3:
      return randomFiniteBits(rng);
    case 4:
      return tieDouble(rng);
    case 5: { // right next to a tie
      const t = tieDouble(rng);
      return rng.chance(0.5) ? nextUp(t) : nextDown(t);
    }
    case 6: // subnormals
      return fromBits(rng.bigBits(52) | (rng.chance(0.5) ? 1n << 63n : 0n));
    case 7: // short decimals and integers, as people write them
      return Number(`${rng.between(0, 99999)}.${rng.between(0, 999)}e${rng.between(-30, 30)}`) * (rng.chance(0.2) ? -1 : 1);
    case 8: // integers up to and beyond 2^53
      return Number(rng.bigBits(rng.between(1, 70))) * (rng.chance(0.2) ? -1 : 1);
    default: // floats widened to double (what cpu_hours produces)
      return rng.chance(0.5) ? randomFiniteFloat(rng) : Math.fround(Math.fround(rng.between(0, 1e9)) / 3600);
  }
}

function edgeDoubles(): number[] {
  const out: number[] = [
    0, -0, 0.5, -0.5, 1, -1, 0.1, 0.2, 0.3, 0.1 + 0.2, 1 / 3, 2 / 3, Math.PI, Math.E,
    3 * 2 ** -25, 100000000000000.125, 1e16, 1e16 + 2, 1e17, 1e17 + 16, 99999999999999990,
    123456789012345680, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, 2 ** 1023,
    Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, -Number.MIN_VALUE, 2 * Number.MIN_VALUE,
    2.2250738585072009e-308, 2.2250738585072014e-308, 2.225073858507201e-308,
    Number.EPSILON, 1 + Number.EPSILON, 1 - Number.EPSILON / 2, 0.0001, 0.00009999999999999999,
    9.9999999999999995e-5, 1e-4 - 1e-20, 0.9999999999999999, 9.999999999999999e22, 1e23,
    5e-324, 1.7976931348623157e308, 4.9406564584124654e-324,
    0.0077777779661118984, 4.1366667747497559, 66.186668395996094, 0.01666666753590107,
  ];
  for (let e = -5; e <= 22; e++) out.push(Number(`1e${e}`), -Number(`1e${e}`));
  for (let e = -324; e <= 308; e += 7) out.push(Number(`1e${e}`));
  for (let i = 0; i <= 1000; i++) out.push(i, -i);
  for (let e = -1074; e <= 1023; e += 3) out.push(2 ** e);
  for (let n = 1; n <= 30; n++) out.push(3 * 2 ** -n, 5 * 2 ** -n, 1 + 2 ** -n, 0.5 ** n);
  for (const x of [...out]) if (x !== 0) out.push(nextUp(x), nextDown(x));
  const unique = new Map<bigint, number>();
  for (const x of out) if (Number.isFinite(x)) unique.set(toBits(x), x);
  return [...unique.values()];
}

// ---------------------------------------------------------------------------------------
// cpu_hours pairs

function randomElapsed(rng: Rng): number {
  switch (rng.between(0, 5)) {
    case 0: return rng.between(0, 100);
    case 1: return 60 * rng.between(0, 1440);
    case 2: return 3600 * rng.between(0, 1000);
    case 3: return Math.min(1e8, Math.floor(10 ** (rng.float() * 8)));
    case 4: return rng.pick([0, 1, 59, 60, 61, 3599, 3600, 3601, 86400, 604800, 1e8]);
    default: return rng.between(0, 1e8);
  }
}

function randomCpus(rng: Rng): number {
  switch (rng.between(0, 4)) {
    case 0: return rng.between(1, 128);
    case 1: return 2 ** rng.between(0, 16);
    case 2: return rng.pick([0, 1, 2, 3, 4, 6, 12, 24, 48, 96, 100000]);
    case 3: return Math.min(1e5, Math.floor(10 ** (rng.float() * 5)));
    default: return rng.between(0, 1e5);
  }
}

/** The spec's table of expected cpu_hours renderings. */
const CPU_HOURS_TABLE: ReadonlyArray<readonly [number, number, string]> = [
  [7, 4, '0.0077777779661118984'],
  [3723, 4, '4.1366667747497559'],
  [3723, 64, '66.186668395996094'],
  [3600, 1, '1.0'],
  [0, 4, '0.0'],
  [0, 0, '0.0'],
  [60, 1, '0.01666666753590107'],
];

function edgePairs(rng: Rng): Array<[number, number]> {
  const out: Array<[number, number]> = CPU_HOURS_TABLE.map(([e, c]) => [e, c]);
  out.push([1e8, 1e5], [1e8, 0], [0, 1e5], [1e8, 1], [1, 1e5], [99999999, 99999]);
  // products that are exact float rounding ties (2^24 + odd) * 2^s, and their neighbours
  for (let i = 0; i < 300; i++) {
    const m = 2 ** 24 + 2 * rng.between(0, 2 ** 22) + 1;
    const s = rng.between(0, 16);
    if (m * 2 ** s > 1e8 * 1e5) continue;
    const cpus = Math.min(2 ** s, 1e5);
    const elapsed = (m * 2 ** s) / cpus;
    if (elapsed > 1e8) continue;
    out.push([elapsed, cpus], [elapsed + 1, cpus], [elapsed - 1, cpus]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Oracle plumbing

function request(kind: Kind, payload: Buffer): Request {
  return { kind, payload };
}
function doublePayload(x: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return b;
}
function pairPayload(elapsed: number, cpus: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigInt64LE(BigInt(elapsed), 0);
  b.writeBigInt64LE(BigInt(cpus), 8);
  return b;
}

function encode(requests: readonly Request[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of requests) {
    const hdr = Buffer.alloc(5);
    hdr.write(r.kind, 0, 'latin1');
    hdr.writeUInt32LE(r.payload.length, 1);
    parts.push(hdr, r.payload);
  }
  return Buffer.concat(parts);
}

/** Runs the oracle once over all requests; returns its answers as byte strings, in order. */
async function askOracle(binary: string, requests: readonly Request[]): Promise<string[]> {
  const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => stdout.push(d));
  child.stderr.on('data', (d: Buffer) => stderr.push(d));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  child.stdin.end(encode(requests));
  const code = await exited;
  if (code !== 0) throw new Error(`oracle exited with ${String(code)}: ${Buffer.concat(stderr).toString()}`);

  const out = Buffer.concat(stdout);
  const answers: string[] = [];
  let pos = 0;
  while (pos + 4 <= out.length) {
    const len = out.readUInt32LE(pos);
    answers.push(out.toString('latin1', pos + 4, pos + 4 + len));
    pos += 4 + len;
  }
  if (pos !== out.length || answers.length !== requests.length) {
    throw new Error(`oracle answered ${answers.length} of ${requests.length} requests (${out.length - pos} stray bytes)`);
  }
  return answers;
}

// ---------------------------------------------------------------------------------------
// Comparison and reporting

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex') || '(empty)';
const describeDouble = (x: number): string => `${toBits(x).toString(16).padStart(16, '0')} (${Object.is(x, -0) ? '-0' : String(x)})`;
const describeString = (s: string): string => (s.length <= 48 ? hex(s) : `${hex(s.slice(0, 48))}... (${s.length} bytes)`);
/** Printable ASCII is shown as is, anything else only in hex. */
const readable = (s: string): string => (/^[\x20-\x7e]*$/.test(s) ? ` ${s}` : '');

/** Hex of a byte string, or for long ones a window around byte `at`. */
function hexAround(s: string, at: number): string {
  if (s.length <= 64) return `${hex(s)}${readable(s)}`;
  const from = Math.max(0, at - 16);
  return `[${s.length} bytes, from byte ${from}] ${hex(s.slice(from, from + 48))}`;
}

function firstDifference(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

interface Case<T> {
  input: T;
  ours: string;
}

function expectSameAsOracle<T>(what: string, cases: ReadonlyArray<Case<T>>, answers: readonly string[], show: (input: T) => string): void {
  expect(answers.length).toBe(cases.length);
  const failures: string[] = [];
  let mismatches = 0;
  cases.forEach((c, i) => {
    const theirs = answers[i] ?? '';
    if (c.ours === theirs) return;
    mismatches++;
    if (failures.length < 8) {
      const at = firstDifference(c.ours, theirs);
      failures.push(
        `  input ${show(c.input)}, outputs differ at byte ${at}\n` +
          `    ours:   ${hexAround(c.ours, at)}\n` +
          `    oracle: ${hexAround(theirs, at)}`,
      );
    }
  });
  if (mismatches > 0) {
    throw new Error(`${what}: ${mismatches} of ${cases.length} outputs differ from the oracle; first ones (hex):\n${failures.join('\n')}`);
  }
}

function compute<T>(inputs: readonly T[], f: (input: T) => string): Array<Case<T>> {
  return inputs.map((input) => {
    let ours: string;
    try {
      ours = f(input);
    } catch (e) {
      ours = `<threw ${String(e)}>`;
    }
    return { input, ours };
  });
}

// ---------------------------------------------------------------------------------------

describe('json-c / glibc oracle (differential)', () => {
  const rng = new Rng(SEED);

  const strings = [...edgeStrings(), ...Array.from({ length: RANDOM_PER_KIND }, () => randomByteString(rng))];
  const finiteDoubles = [...edgeDoubles(), ...Array.from({ length: RANDOM_PER_KIND }, () => randomDouble(rng))];
  const jsonDoubles = [...finiteDoubles, NaN, Infinity, -Infinity];
  const pairs = [...edgePairs(rng), ...Array.from({ length: RANDOM_PER_KIND }, (): [number, number] => [randomElapsed(rng), randomCpus(rng)])];

  let sAnswers: string[] = [];
  let jAnswers: string[] = [];
  let gAnswers: string[] = [];
  let hAnswers: string[] = [];

  beforeAll(async () => {
    const binary = execFileSync('sh', [join(__dirname, '../oracle/build.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
    const requests = [
      ...strings.map((s) => request('s', Buffer.from(s, 'latin1'))),
      ...jsonDoubles.map((x) => request('j', doublePayload(x))),
      ...finiteDoubles.map((x) => request('g', doublePayload(x))),
      ...pairs.map(([e, c]) => request('h', pairPayload(e, c))),
    ];
    const answers = await askOracle(binary, requests);
    let at = 0;
    const take = (n: number): string[] => answers.slice(at, (at += n));
    sAnswers = take(strings.length);
    jAnswers = take(jsonDoubles.length);
    gAnswers = take(finiteDoubles.length);
    hAnswers = take(pairs.length);
    console.log(
      `json-c oracle: seed 0x${SEED.toString(16)}; compared ${strings.length} strings, ${jsonDoubles.length} json doubles, ` +
        `${finiteDoubles.length} %.17g doubles, ${pairs.length} cpu_hours pairs`,
    );
  }, 120_000);

  it('the random strings hit every byte value many times', () => {
    const counts = new Array<number>(256).fill(0);
    for (const s of strings) for (let i = 0; i < s.length; i++) counts[s.charCodeAt(i)]! += 1;
    expect(Math.min(...counts)).toBeGreaterThanOrEqual(100);
  });

  it('jsonCString matches json_object_new_string_len + JSON_C_TO_STRING_PLAIN', () => {
    expectSameAsOracle('jsonCString', compute(strings, jsonCString), sAnswers, describeString);
  });

  it('jsonCDouble matches json_object_new_double + JSON_C_TO_STRING_PLAIN', () => {
    expectSameAsOracle('jsonCDouble', compute(jsonDoubles, jsonCDouble), jAnswers, describeDouble);
  });

  it('formatG17 matches glibc snprintf("%.17g")', () => {
    expectSameAsOracle('formatG17', compute(finiteDoubles, formatG17), gAnswers, describeDouble);
  });

  it('jsonCDouble(cpuHours(elapsed, total_cpus)) matches the plugin arithmetic via json-c', () => {
    const cases = compute(pairs, ([e, c]) => jsonCDouble(cpuHours(e, c)));
    expectSameAsOracle('cpu_hours', cases, hAnswers, ([e, c]) => `elapsed=${e} (${e.toString(16)}) total_cpus=${c} (${c.toString(16)})`);
  });

  it('the oracle agrees with the spec table for cpu_hours', () => {
    CPU_HOURS_TABLE.forEach(([e, c, expected], i) => {
      expect({ elapsed: e, total_cpus: c, oracle: hAnswers[i] }).toEqual({ elapsed: e, total_cpus: c, oracle: expected });
    });
  });
});
