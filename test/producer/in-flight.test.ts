import { InFlightRows, type ClaimedRow } from '../../src/producer/in-flight';
import { JobEvent } from '../../src/record/job-record';

function row(id: number, attempts = 0): ClaimedRow {
  return { id, event: id % 2 === 0 ? JobEvent.finish : JobEvent.start, jobId: 4_000_000_000 + id, receivedAt: 1_795_319_410_123 + id, attempts };
}

/** A deterministic pseudo-random sequence (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('InFlightRows', () => {
  it('gives back each row once, with every field, and forgets it', () => {
    const rows = new InFlightRows(4);
    rows.add(row(7, 3));
    rows.add(row(8));
    expect(rows.size).toBe(2);
    expect(rows.take(7)).toEqual(row(7, 3));
    expect(rows.take(7)).toBeUndefined();
    expect(rows.take(9)).toBeUndefined();
    expect(rows.size).toBe(1);
  });

  it('keeps row ids beyond 32 bits apart from those that share their low bits', () => {
    const rows = new InFlightRows(2);
    const high = 2 ** 40 + 5;
    rows.add(row(5));
    rows.add(row(high));
    expect(rows.take(high)?.id).toBe(high);
    expect(rows.take(5)?.id).toBe(5);
  });

  it('grows past its first capacity without losing a row', () => {
    const rows = new InFlightRows(4);
    for (let id = 1; id <= 1000; id++) rows.add(row(id));
    expect(rows.size).toBe(1000);
    for (let id = 1000; id >= 1; id--) expect(rows.take(id)).toEqual(row(id));
    expect(rows.size).toBe(0);
  });

  it('takeAll empties it and returns every row', () => {
    const rows = new InFlightRows(8);
    for (const id of [3, 11, 19, 4]) rows.add(row(id)); // 3, 11 and 19 share their low bits
    const all = rows.takeAll();
    expect(all.map((r) => r.id).sort((a, b) => a - b)).toEqual([3, 4, 11, 19]);
    expect(rows.size).toBe(0);
    expect(rows.take(11)).toBeUndefined();
    rows.add(row(11));
    expect(rows.take(11)).toEqual(row(11));
  });

  it('agrees with a Map under a long mix of adds and takes, colliding ids included', () => {
    const next = random(20261205);
    const rows = new InFlightRows(16);
    const model = new Map<number, ClaimedRow>();
    let id = 1;
    for (let step = 0; step < 20_000; step++) {
      const r = next();
      if (r < 0.5 || model.size === 0) {
        // mostly consecutive ids, as the dispatcher produces them; some far apart, as retries are
        const fresh = next() < 0.9 ? id++ : id + 64 * Math.floor(next() * 100) + 1;
        if (model.has(fresh)) continue;
        model.set(fresh, row(fresh, step % 5));
        rows.add(row(fresh, step % 5));
      } else {
        const keys = [...model.keys()];
        const pick = r < 0.95 ? (keys[Math.floor(next() * keys.length)] as number) : id + 10_000;
        expect(rows.take(pick)).toEqual(model.get(pick));
        model.delete(pick);
      }
      expect(rows.size).toBe(model.size);
    }
    expect(rows.takeAll().sort((a, b) => a.id - b.id)).toEqual([...model.values()].sort((a, b) => a.id - b.id));
  });
});
