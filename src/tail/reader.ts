// The consumer behind `jobcompd tail` (docs/operations.md "jobcompd tail"). It assigns the
// partitions itself (no group rebalancing): with a group it reads where that group's
// committed offsets say and commits only after the caller has written and flushed a
// batch, so a killed tail resumes with at most one batch printed twice.

import { randomUUID } from 'node:crypto';
import { KafkaConsumer, type Message, type Metadata, type TopicPartitionOffset } from 'node-rdkafka';
import { EXIT_UNAVAILABLE, KafkaAdminCodes, KafkaAdminError } from '../errors';
import { clientProperties, type ProducerSettings } from '../producer/librdkafka-settings';

export type StartAt = { from: 'beginning' } | { from: 'end' } | { from: 'time'; ms: number };

export interface ReaderOptions {
  topics: string[];
  startAt: StartAt;
  /** keep reading new records; otherwise stop at the end offsets seen when it started */
  follow: boolean;
  /** consumer group whose committed offsets win over startAt, and which is committed to */
  group: string | undefined;
  /** write a batch out; resolves once it is written and flushed, false when it could not be (the reader then stops, committing nothing) */
  onBatch(messages: Message[]): Promise<boolean>;
  /** missing topics (the others are read) */
  onMissingTopics(names: string[]): void;
}

/** Most records handed to onBatch at once: also the bound on records printed twice after a kill. */
export const BATCH_SIZE = 500;
const CONSUME_WAIT_MS = 500;
const REQUEST_TIMEOUT_MS = 15_000;

export class TailReader {
  private stopping = false;

  constructor(
    private readonly settings: ProducerSettings,
    private readonly opts: ReaderOptions,
  ) {}

  /** Stop after the batch being written (SIGTERM, SIGINT, a closed pipe). */
  stop(): void {
    this.stopping = true;
  }

  async run(): Promise<void> {
    const consumer = new KafkaConsumer(
      {
        ...clientProperties(this.settings),
        'group.id': this.opts.group ?? `jobcompd-tail-${randomUUID()}`,
        'enable.auto.commit': false,
        'enable.auto.offset.store': false,
        'allow.auto.create.topics': false,
      },
      { 'auto.offset.reset': this.opts.startAt.from === 'end' ? 'latest' : 'earliest' },
    );
    const metadata = await connect(consumer);
    try {
      await this.consumeAll(consumer, metadata);
    } finally {
      await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
    }
  }

  private async consumeAll(consumer: KafkaConsumer, metadata: Metadata): Promise<void> {
    const partitions = this.partitionsOf(metadata);
    const ends = new Map<string, number>();
    const next = new Map<string, number>();
    for (const tp of await this.startOffsets(consumer, partitions)) {
      next.set(key(tp), tp.offset);
      ends.set(key(tp), tp.end);
    }
    const pending = (): boolean => this.opts.follow || [...next].some(([k, offset]) => offset < (ends.get(k) ?? 0));
    consumer.assign([...next].map(([k, offset]) => ({ ...fromKey(k), offset })));
    consumer.setDefaultConsumeTimeout(CONSUME_WAIT_MS);
    while (!this.stopping && pending()) {
      const batch = (await consumeBatch(consumer)).filter((m) => this.opts.follow || m.offset < (ends.get(key(m)) ?? 0));
      if (batch.length === 0) continue;
      if (!(await this.opts.onBatch(batch))) return;
      for (const m of batch) next.set(key(m), m.offset + 1);
      if (this.opts.group !== undefined) consumer.commitSync(latest(batch));
    }
  }

  private partitionsOf(metadata: Metadata): { topic: string; partition: number }[] {
    const missing: string[] = [];
    const out = this.opts.topics.flatMap((topic) => {
      const ids = metadata.topics.find((t) => t.name === topic)?.partitions.map((p) => p.id) ?? [];
      if (ids.length === 0) missing.push(topic);
      return ids.map((partition) => ({ topic, partition }));
    });
    if (out.length === 0) {
      throw new KafkaAdminError(KafkaAdminCodes.topicMissing, `no topic to read: ${missing.join(', ')} not found (jobcompd topics create)`, EXIT_UNAVAILABLE);
    }
    if (missing.length > 0) this.opts.onMissingTopics(missing);
    return out;
  }

  /** Where each partition starts (the group's committed offset, else startAt) and where it ends now. */
  private async startOffsets(consumer: KafkaConsumer, partitions: { topic: string; partition: number }[]): Promise<(TopicPartitionOffset & { end: number })[]> {
    const committed = this.opts.group === undefined ? [] : await committedOffsets(consumer, partitions);
    const atTime = this.opts.startAt.from === 'time' ? await offsetsForTime(consumer, partitions, this.opts.startAt.ms) : [];
    const out: (TopicPartitionOffset & { end: number })[] = [];
    for (const tp of partitions) {
      const { lowOffset, highOffset } = await watermarks(consumer, tp.topic, tp.partition);
      const fromGroup = committed.find((c) => c.topic === tp.topic && c.partition === tp.partition)?.offset ?? -1;
      const fromTime = atTime.find((c) => c.topic === tp.topic && c.partition === tp.partition)?.offset ?? -1;
      const fallback = this.opts.startAt.from === 'beginning' ? lowOffset : this.opts.startAt.from === 'time' && fromTime >= 0 ? fromTime : highOffset;
      out.push({ ...tp, offset: fromGroup >= 0 ? Math.max(fromGroup, lowOffset) : fallback, end: highOffset });
    }
    return out;
  }
}

function key(tp: { topic: string; partition: number }): string {
  return `${tp.partition}\0${tp.topic}`;
}

function fromKey(k: string): { topic: string; partition: number } {
  const at = k.indexOf('\0');
  return { partition: Number(k.slice(0, at)), topic: k.slice(at + 1) };
}

/** The offset to commit for each partition in the batch: one past its last record. */
function latest(batch: Message[]): TopicPartitionOffset[] {
  const last = new Map<string, number>();
  for (const m of batch) last.set(key(m), Math.max(last.get(key(m)) ?? -1, m.offset + 1));
  return [...last].map(([k, offset]) => ({ ...fromKey(k), offset }));
}

function unreachable(err: { message: string }): KafkaAdminError {
  return new KafkaAdminError(KafkaAdminCodes.unreachable, `cannot read from the brokers: ${err.message}`, EXIT_UNAVAILABLE);
}

function connect(consumer: KafkaConsumer): Promise<Metadata> {
  return new Promise((resolve, reject) => {
    consumer.connect({ allTopics: true, timeout: REQUEST_TIMEOUT_MS }, (err, metadata) => (err ? reject(unreachable(err)) : resolve(metadata)));
  });
}

function consumeBatch(consumer: KafkaConsumer): Promise<Message[]> {
  return new Promise((resolve, reject) => {
    consumer.consume(BATCH_SIZE, (err, messages) => {
      // librdkafka retries transient errors itself; only a fatal one ends the tail
      if (err && (err as { isFatal?: boolean }).isFatal === true) reject(unreachable(err));
      else resolve(err ? [] : messages);
    });
  });
}

function watermarks(consumer: KafkaConsumer, topic: string, partition: number): Promise<{ lowOffset: number; highOffset: number }> {
  return new Promise((resolve, reject) => {
    consumer.queryWatermarkOffsets(topic, partition, REQUEST_TIMEOUT_MS, (err, offsets) => (err ? reject(unreachable(err)) : resolve(offsets)));
  });
}

function committedOffsets(consumer: KafkaConsumer, partitions: { topic: string; partition: number }[]): Promise<TopicPartitionOffset[]> {
  return new Promise((resolve, reject) => {
    consumer.committed(partitions, REQUEST_TIMEOUT_MS, (err, offsets) => (err ? reject(unreachable(err)) : resolve(offsets)));
  });
}

function offsetsForTime(consumer: KafkaConsumer, partitions: { topic: string; partition: number }[], ms: number): Promise<TopicPartitionOffset[]> {
  return new Promise((resolve, reject) => {
    consumer.offsetsForTimes(
      partitions.map((tp) => ({ ...tp, offset: ms })),
      REQUEST_TIMEOUT_MS,
      (err, offsets) => (err ? reject(unreachable(err)) : resolve(offsets)),
    );
  });
}
