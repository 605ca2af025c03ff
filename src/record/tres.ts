// tres_req_raw / tres_alloc_raw from the formatted TRES strings that older Slurm sends.
//
// Slurm 22.05's jobcomp/elasticsearch only sends the formatted strings (e.g.
// "cpu=1,mem=24105M,node=1,billing=1"); 23.11+ also sends the raw "id=count" lists. The
// ids of the static TRES types are fixed in Slurm (slurmdb.h: TRES_CPU=1, TRES_MEM=2,
// TRES_NODE=4, TRES_BILLING=5) and memory is printed in the largest unit that keeps it an
// exact integer (convert_num_unit with CONVERT_NUM_UNIT_EXACT, base MiB), so for strings
// made only of these types the raw list can be recovered exactly. Anything else (gres,
// licenses, burst buffers, energy, ...) has site-specific ids or formats: no raw list then.
//
// The allocated list has one more entry the formatted string never shows: energy (id 3) at
// NO_VAL64 when no energy was gathered. Every job that ran has it in the tres_alloc_raw of
// the real 25.11 and 26.05 (conformance captures), since 23.11.1 set energy before the
// record is built; a site that gathers energy has "energy=" in the string, and no raw list.

const STATIC_IDS: Readonly<Record<string, number>> = { cpu: 1, mem: 2, node: 4, billing: 5 };
const MEM_UNITS = ['M', 'G', 'T', 'P', 'E'];
const TRES_ENERGY = 3;
const NO_VAL64 = 18446744073709551614n;

/**
 * The raw lists derived so far: sites run many jobs of few shapes, so most TRES strings
 * repeat, and deriving one cost more than a tenth of mapping a body (docs/benchmarks.md).
 * Emptied when full.
 */
const derived = { requested: new Map<string, string | undefined>(), allocated: new Map<string, string | undefined>() };
const DERIVED_MAX_ENTRIES = 1024;

export function deriveTresRaw(formatted: string, list: 'requested' | 'allocated'): string | undefined {
  const known = derived[list];
  if (known.has(formatted)) return known.get(formatted);
  const raw = deriveUncached(formatted, list);
  if (known.size >= DERIVED_MAX_ENTRIES) known.clear();
  known.set(formatted, raw);
  return raw;
}

function deriveUncached(formatted: string, list: 'requested' | 'allocated'): string | undefined {
  if (formatted === '') return undefined;
  const raw: [number, number | bigint][] = list === 'allocated' ? [[TRES_ENERGY, NO_VAL64]] : [];
  for (const item of formatted.split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0) return undefined;
    const name = item.slice(0, eq);
    const id = STATIC_IDS[name];
    if (id === undefined) return undefined;
    const count = name === 'mem' ? parseMemMiB(item.slice(eq + 1)) : parseCount(item.slice(eq + 1));
    if (count === undefined) return undefined;
    raw.push([id, count]);
  }
  // Slurm prints the list in TRES id order
  return raw
    .sort((a, b) => a[0] - b[0])
    .map(([id, count]) => `${id}=${count}`)
    .join(',');
}

/** Counts are uint64: a BigInt only when a Number could not hold one exactly. */
const SAFE_DIGITS = 15;

function parseCount(s: string): number | bigint | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  return s.length <= SAFE_DIGITS ? Number(s) : BigInt(s);
}

function parseMemMiB(s: string): number | bigint | undefined {
  const m = /^(\d+)([MGTPE])?$/.exec(s);
  if (!m) return undefined;
  const digits = m[1] ?? '';
  const unit = m[2] === undefined ? -1 : MEM_UNITS.indexOf(m[2]);
  if (unit < 0) return Number(digits) === 0 ? 0 : undefined;
  const exact = BigInt(digits) * 1024n ** BigInt(unit);
  return exact <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(exact) : exact;
}
