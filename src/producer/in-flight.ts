// The rows librdkafka has and has not reported on yet, by row id: what the dispatcher
// keeps of each while Kafka has it.
//
// Held in typed arrays rather than a Map of objects: a drain puts ~90,000 rows a second
// through the window, and an object per row plus the Map's rehashed tables lived just long
// enough (the window's round trip) to be promoted to V8's old space, which then grew by
// ~10 MB a second until a full collection: most of the drain's peak memory
// (docs/benchmark-rounds.md, "This round (2026-12-05, third session)").

import type { JobEvent } from '../record/job-record';
import type { OutboxRow } from '../outbox/outbox';

/**
 * What the dispatcher keeps of a row while Kafka has it. librdkafka holds its own copy of
 * the payload, and a row is read again by id when it must be produced again (a retry, a
 * new producer): keeping every payload alive for a window's round trip cost the drain most
 * of its memory (docs/benchmarks.md, "Where the memory goes").
 */
export type ClaimedRow = Pick<OutboxRow, 'id' | 'event' | 'jobId' | 'receivedAt' | 'attempts'>;

const EMPTY = -1;
const INITIAL_CAPACITY = 1024;

export class InFlightRows {
  // row fields, by slot; their length is the capacity
  private ids = new Float64Array(0);
  private jobIds = new Float64Array(0);
  private receivedAts = new Float64Array(0);
  private attempts = new Uint32Array(0);
  private events = new Uint8Array(0);
  /** free slots, a stack */
  private free = new Int32Array(0);
  private freeTop = 0;
  /** hash chains from a row id to its slot: the first slot of each bucket, and each slot's next; EMPTY ends a chain */
  private heads = new Int32Array(0);
  private next = new Int32Array(0);
  private mask = 0;

  constructor(capacity = INITIAL_CAPACITY) {
    this.allocate(Math.max(1, capacity));
  }

  /** every slot not free holds a row */
  get size(): number {
    return this.ids.length - this.freeTop;
  }

  add(row: ClaimedRow): void {
    if (this.freeTop === 0) this.grow();
    const slot = this.free[--this.freeTop] as number;
    this.ids[slot] = row.id;
    this.jobIds[slot] = row.jobId;
    this.receivedAts[slot] = row.receivedAt;
    this.attempts[slot] = row.attempts;
    this.events[slot] = row.event;
    const bucket = this.bucketOf(row.id);
    this.next[slot] = this.heads[bucket] as number;
    this.heads[bucket] = slot;
  }

  /** The row with this id, removed; undefined when it is not in flight. */
  take(id: number): ClaimedRow | undefined {
    const bucket = this.bucketOf(id);
    let previous = EMPTY;
    for (let slot = this.heads[bucket] as number; slot !== EMPTY; slot = this.next[slot] as number) {
      if (this.ids[slot] !== id) {
        previous = slot;
        continue;
      }
      if (previous === EMPTY) this.heads[bucket] = this.next[slot] as number;
      else this.next[previous] = this.next[slot] as number;
      this.free[this.freeTop++] = slot;
      return this.rowAt(slot);
    }
    return undefined;
  }

  /** Every row in flight (in no particular order), and none left. */
  takeAll(): ClaimedRow[] {
    const rows = this.rows();
    this.allocate(this.ids.length);
    return rows;
  }

  private rowAt(slot: number): ClaimedRow {
    return {
      id: this.ids[slot] as number,
      event: this.events[slot] as JobEvent,
      jobId: this.jobIds[slot] as number,
      receivedAt: this.receivedAts[slot] as number,
      attempts: this.attempts[slot] as number,
    };
  }

  /**
   * The rows in flight are mostly a run of consecutive ids no longer than the capacity, so
   * with at least twice as many buckets their low bits put almost every row in a bucket of
   * its own (a chain of one).
   */
  private bucketOf(id: number): number {
    return id & this.mask;
  }

  /** Twice the room, the rows held kept. */
  private grow(): void {
    const kept = this.rows();
    this.allocate(this.ids.length * 2);
    for (const row of kept) this.add(row);
  }

  /** Empty, with room for `capacity` rows. */
  private allocate(capacity: number): void {
    this.ids = new Float64Array(capacity);
    this.jobIds = new Float64Array(capacity);
    this.receivedAts = new Float64Array(capacity);
    this.attempts = new Uint32Array(capacity);
    this.events = new Uint8Array(capacity);
    this.free = Int32Array.from({ length: capacity }, (_, k) => capacity - 1 - k);
    this.freeTop = capacity;
    this.next = new Int32Array(capacity);
    let buckets = 2;
    while (buckets < capacity * 2) buckets *= 2;
    this.heads = new Int32Array(buckets).fill(EMPTY);
    this.mask = buckets - 1;
  }

  private rows(): ClaimedRow[] {
    const rows: ClaimedRow[] = [];
    for (const head of this.heads) {
      for (let slot = head; slot !== EMPTY; slot = this.next[slot] as number) rows.push(this.rowAt(slot));
    }
    return rows;
  }
}
