// Reading back what was published, for assertions in tests.
import { randomUUID } from 'node:crypto';
import { KafkaConsumer, type Message, type TopicMetadata } from 'node-rdkafka';
import {
  type ClientProperties,
  connectClient,
  describeKafkaError,
  disconnectClient,
  extraProperties,
  findTopic,
  getMetadata,
  KafkaClientError,
  queryWatermarks,
  topicHasLeaders,
  waitForMetadata,
  withMetadataClient,
} from './clients';

export interface ConsumedMessage {
  value: Buffer | null;
  key: Buffer | null;
  headers: unknown;
  partition: number;
  offset: number;
  timestamp: number | undefined;
  topic: string;
}

export interface ConsumeOptions {
  /** Resolve as soon as at least this many messages have arrived. */
  count: number;
  /** Reject if they have not all arrived within this time. */
  timeoutMs: number;
}

/** Fewer messages than expected arrived before the deadline. */
export class ConsumeTimeoutError extends KafkaClientError {
  constructor(
    message: string,
    readonly received: ConsumedMessage[],
  ) {
    super(message);
  }
}

const BATCH_SIZE = 500;
const CONSUME_WAIT_MS = 200;
const WATERMARK_TIMEOUT_MS = 10_000;
/** librdkafka's RD_KAFKA_OFFSET_BEGINNING. */
const OFFSET_BEGINNING = -2;

/**
 * Reads `topic` from the beginning of every partition until `count` messages
 * have arrived; resolves with all messages received by then (which may be more
 * than `count` if they came in one batch). Waits for the topic to exist if it
 * does not yet. Uses a fresh group id, assigns partitions itself (no group
 * join, so no consumer-offsets topic is needed) and commits nothing.
 * `extra`: more librdkafka properties, e.g. a SASL broker's `adminClientProperties`.
 */
export async function consumeAll(
  bootstrapServers: string,
  topic: string,
  opts: ConsumeOptions,
  extra: ClientProperties = {},
): Promise<ConsumedMessage[]> {
  const deadline = Date.now() + opts.timeoutMs;
  const partitions = await waitForPartitions(bootstrapServers, topic, opts.timeoutMs, extra);
  const consumer = new KafkaConsumer(
    {
      ...extraProperties(extra),
      'group.id': `jobcompd-harness-${randomUUID()}`,
      'metadata.broker.list': bootstrapServers,
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
      'allow.auto.create.topics': false,
    },
    { 'auto.offset.reset': 'earliest' },
  );
  const received: ConsumedMessage[] = [];
  try {
    await connectClient(consumer, bootstrapServers, Math.max(1000, deadline - Date.now()));
    consumer.assign(partitions.map((p) => ({ topic, partition: p.id, offset: OFFSET_BEGINNING })));
    consumer.setDefaultConsumeTimeout(CONSUME_WAIT_MS);
    let lastError: unknown;
    while (received.length < opts.count) {
      if (Date.now() >= deadline) {
        const cause = lastError === undefined ? '' : ` (last error: ${describeKafkaError(lastError)})`;
        throw new ConsumeTimeoutError(
          `only ${received.length} of ${opts.count} message(s) arrived on topic ${topic} within ${opts.timeoutMs} ms${cause}`,
          received,
        );
      }
      try {
        const batch = await consumeBatch(consumer, BATCH_SIZE);
        received.push(...batch.map(toConsumedMessage));
      } catch (err) {
        // librdkafka retries transient errors (e.g. a broker restart) itself.
        if (isFatal(err)) throw new KafkaClientError(`consume failed: ${describeKafkaError(err)}`, { cause: err });
        lastError = err;
      }
    }
    return received;
  } finally {
    await disconnectClient(consumer);
  }
}

/**
 * Total messages currently stored in `topic`: the sum over its partitions of
 * high watermark minus low watermark. A topic that does not exist holds 0.
 */
export async function countMessages(bootstrapServers: string, topic: string, extra: ClientProperties = {}): Promise<number> {
  return withMetadataClient(bootstrapServers, WATERMARK_TIMEOUT_MS, async (client) => {
    const metadata = await getMetadata(client, WATERMARK_TIMEOUT_MS);
    const partitions = findTopic(metadata, topic)?.partitions ?? [];
    let total = 0;
    for (const p of partitions) {
      const { highOffset, lowOffset } = await queryWatermarks(client, topic, p.id, WATERMARK_TIMEOUT_MS);
      total += highOffset - lowOffset;
    }
    return total;
  }, extra);
}

async function waitForPartitions(
  bootstrapServers: string,
  topic: string,
  timeoutMs: number,
  extra: ClientProperties,
): Promise<TopicMetadata['partitions']> {
  try {
    const metadata = await waitForMetadata(
      bootstrapServers,
      timeoutMs,
      `topic ${topic} exists`,
      (md) => topicHasLeaders(findTopic(md, topic)),
      extra,
    );
    return findTopic(metadata, topic)?.partitions ?? [];
  } catch (err) {
    throw new ConsumeTimeoutError(
      `only 0 message(s) arrived on topic ${topic} within ${timeoutMs} ms: ${describeKafkaError(err)}`,
      [],
    );
  }
}

function consumeBatch(consumer: KafkaConsumer, max: number): Promise<Message[]> {
  return new Promise((resolve, reject) => {
    consumer.consume(max, (err, messages) => {
      if (err) reject(err);
      else resolve(messages);
    });
  });
}

function isFatal(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'isFatal' in err && err.isFatal === true;
}

function toConsumedMessage(m: Message): ConsumedMessage {
  return {
    value: m.value,
    key: m.key === undefined || m.key === null ? null : Buffer.isBuffer(m.key) ? m.key : Buffer.from(m.key),
    headers: m.headers,
    partition: m.partition,
    offset: m.offset,
    timestamp: m.timestamp,
    topic: m.topic,
  };
}
