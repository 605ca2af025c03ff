// Idempotent producers as a broker sees them (docs/kafka-listener.md#idempotent-producers):
// producer ids handed out by InitProducerId, and per producer and partition the sequence
// numbers of the last batches, so that a batch the client retries (its answer was lost)
// is answered with its first offset and not committed twice, and a gap is refused.

/** Kafka keeps the last five batches per producer and partition: a client has at most five in flight. */
const KEPT_BATCHES = 5;
const INT32_MAX = 0x7fffffff;
/** Producer-partition states kept; the least recently used goes first (a client cannot grow memory without bound). */
const KEPT_STATES = 100_000;

interface BatchSeen {
  readonly firstSequence: number;
  readonly lastSequence: number;
  readonly baseOffset: bigint;
}

interface PartitionState {
  epoch: number;
  lastSequence: number;
  batches: BatchSeen[];
}

export type SequenceCheck =
  | { kind: 'new' }
  /** a retry of a batch already committed: answer its offset, commit nothing */
  | { kind: 'duplicate'; baseOffset: bigint }
  | { kind: 'out-of-order'; expected: number }
  | { kind: 'fenced' };

export interface BatchIdentity {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  /** lastOffsetDelta: records in the batch minus one */
  readonly lastOffsetDelta: number;
}

function lastSequenceOf(batch: BatchIdentity): number {
  return (batch.baseSequence + batch.lastOffsetDelta) % (INT32_MAX + 1);
}

export class ProducerState {
  private nextId: bigint;
  private readonly partitions = new Map<string, PartitionState>();

  /** Ids start at the clock in ms shifted left, so a restarted daemon never hands out an id again. */
  constructor(now: number = Date.now()) {
    this.nextId = BigInt(now) << 12n;
  }

  newProducerId(): bigint {
    return this.nextId++;
  }

  private key(producerId: bigint, topic: string, partition: number): string {
    return `${producerId}\u0000${topic}\u0000${partition}`;
  }

  /**
   * Checks a batch in request order and, when new, counts it as seen at `baseOffset`
   * (before its commit, so a pipelined next batch follows it). A producer this process
   * does not know (its id came from an earlier run) is accepted at any sequence: the
   * outbox's DedupWindow stands in for the state that restart lost.
   */
  accept(topic: string, partition: number, batch: BatchIdentity, baseOffset: bigint): SequenceCheck {
    if (batch.producerId < 0n) return { kind: 'new' };
    const key = this.key(batch.producerId, topic, partition);
    const last = lastSequenceOf(batch);
    const state = this.partitions.get(key);
    if (state !== undefined) {
      if (batch.producerEpoch < state.epoch) return { kind: 'fenced' };
      if (batch.producerEpoch === state.epoch) {
        const seen = state.batches.find((b) => b.firstSequence === batch.baseSequence && b.lastSequence === last);
        if (seen !== undefined) return { kind: 'duplicate', baseOffset: seen.baseOffset };
        const expected = (state.lastSequence + 1) % (INT32_MAX + 1);
        if (batch.baseSequence !== expected) return { kind: 'out-of-order', expected };
      } else if (batch.baseSequence !== 0) {
        return { kind: 'out-of-order', expected: 0 };
      }
    }
    const next: PartitionState =
      state !== undefined && state.epoch === batch.producerEpoch ? state : { epoch: batch.producerEpoch, lastSequence: -1, batches: [] };
    next.lastSequence = last;
    next.batches.push({ firstSequence: batch.baseSequence, lastSequence: last, baseOffset });
    if (next.batches.length > KEPT_BATCHES) next.batches.shift();
    this.partitions.delete(key);
    this.partitions.set(key, next);
    if (this.partitions.size > KEPT_STATES) {
      const oldest = this.partitions.keys().next();
      if (oldest.done !== true) this.partitions.delete(oldest.value);
    }
    return { kind: 'new' };
  }

  /** A batch that was accepted but not committed: forget the partition's state, as after a restart. */
  forget(topic: string, partition: number, producerId: bigint): void {
    this.partitions.delete(this.key(producerId, topic, partition));
  }
}
