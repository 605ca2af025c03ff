// Seeded randomness for the fuzzers and fault schedules: runs repeat from a printed seed.

/** mulberry32: small, fast, good enough for test inputs (not for anything secret). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The one seeded generator of the tests: every run repeats from its printed seed. */
export class Rng {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  /** The generator of case `index` of a run: cases do not depend on each other. */
  static forCase(seed: number, index: number): Rng {
    let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    return new Rng((h ^ (h >>> 16)) >>> 0);
  }

  float(): number {
    return this.next();
  }

  /** 0 <= n < max */
  int(max: number): number {
    return Math.floor(this.next() * max);
  }

  /** lo <= n <= hi */
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from nothing');
    return items[this.int(items.length)] as T;
  }

  bytes(n: number, lo = 0, hi = 255): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.between(lo, hi);
    return b;
  }

  u32(): number {
    return Math.floor(this.next() * 4294967296);
  }

  /** Uniform BigInt in [0, 2^bits). */
  bigBits(bits: number): bigint {
    let v = 0n;
    for (let b = 0; b < bits; b += 32) v = (v << 32n) | BigInt(this.u32());
    return v & ((1n << BigInt(bits)) - 1n);
  }

  /** One of the entries, chosen by weight. */
  weighted<T>(table: readonly (readonly [number, T])[]): T {
    const total = table.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of table) {
      if (r < w) return v;
      r -= w;
    }
    return (table[table.length - 1] as readonly [number, T])[1];
  }
}
