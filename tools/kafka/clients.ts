// Promise wrappers around the few node-rdkafka calls the harness needs.
// Every helper creates its own short-lived client and always disconnects it,
// so nothing here keeps the Node process alive after it settles.
import {
  AdminClient,
  type Client,
  type IAdminClient,
  type LibrdKafkaError,
  type Metadata,
  Producer,
  type TopicMetadata,
  type WatermarkOffsets,
} from 'node-rdkafka';

export class KafkaClientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

const CLIENT_ID = 'jobcompd-test-harness';
const POLL_INTERVAL_MS = 100;

/**
 * Extra librdkafka properties for the harness's own clients, e.g. the SASL settings and
 * credentials of a broker started with `sasl` (KafkaBroker.adminClientProperties). A
 * `bootstrap.servers` here is ignored: the bootstrapServers argument names the brokers.
 */
export type ClientProperties = Readonly<Record<string, string>>;

/** `extra` without any broker list of its own. */
export function extraProperties(extra: ClientProperties): Record<string, string> {
  const { 'bootstrap.servers': _ignored, 'metadata.broker.list': _ignoredToo, ...rest } = extra;
  return rest;
}

export function describeKafkaError(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null && 'message' in err) {
    const e = err as LibrdKafkaError;
    return `${e.message} (code ${e.code})`;
  }
  return String(err);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function connectClient<E extends string>(
  client: Client<E>,
  bootstrapServers: string,
  timeoutMs: number,
): Promise<Metadata> {
  return new Promise((resolve, reject) => {
    client.connect({ allTopics: true, timeout: timeoutMs }, (err, metadata) => {
      if (err) reject(new KafkaClientError(`cannot connect to ${bootstrapServers}: ${describeKafkaError(err)}`, { cause: err }));
      else resolve(metadata);
    });
  });
}

export function disconnectClient<E extends string>(client: Client<E>): Promise<void> {
  if (!client.isConnected()) return Promise.resolve();
  return new Promise((resolve) => {
    client.disconnect(() => resolve());
  });
}

export function getMetadata<E extends string>(client: Client<E>, timeoutMs: number): Promise<Metadata> {
  return new Promise((resolve, reject) => {
    // allTopics: a request naming one topic would auto-create it on brokers
    // that allow that, which would defeat "wait until the topic is gone".
    client.getMetadata({ allTopics: true, timeout: timeoutMs }, (err, metadata) => {
      if (err) reject(err);
      else resolve(metadata);
    });
  });
}

export function queryWatermarks<E extends string>(
  client: Client<E>,
  topic: string,
  partition: number,
  timeoutMs: number,
): Promise<WatermarkOffsets> {
  return new Promise((resolve, reject) => {
    client.queryWatermarkOffsets(topic, partition, timeoutMs, (err, offsets) => {
      if (err) reject(err);
      else resolve(offsets);
    });
  });
}

/** A producer used only for metadata and watermark requests; it never produces. */
export async function withMetadataClient<T>(
  bootstrapServers: string,
  timeoutMs: number,
  use: (client: Producer, initial: Metadata) => Promise<T>,
  extra: ClientProperties = {},
): Promise<T> {
  const client = new Producer({
    'client.id': CLIENT_ID,
    ...extraProperties(extra),
    'metadata.broker.list': bootstrapServers,
    'socket.connection.setup.timeout.ms': Math.max(1000, timeoutMs),
  });
  try {
    const initial = await connectClient(client, bootstrapServers, timeoutMs);
    return await use(client, initial);
  } finally {
    await disconnectClient(client);
  }
}

export async function withAdminClient<T>(
  bootstrapServers: string,
  use: (admin: IAdminClient) => Promise<T>,
  extra: ClientProperties = {},
): Promise<T> {
  const admin = AdminClient.create({ 'client.id': CLIENT_ID, ...extraProperties(extra), 'metadata.broker.list': bootstrapServers });
  try {
    return await use(admin);
  } finally {
    admin.disconnect();
  }
}

export function findTopic(metadata: Metadata, name: string): TopicMetadata | undefined {
  return metadata.topics.find((t) => t.name === name);
}

export function topicHasLeaders(topic: TopicMetadata | undefined, partitions?: number): boolean {
  if (topic === undefined || topic.partitions.length === 0) return false;
  if (partitions !== undefined && topic.partitions.length !== partitions) return false;
  return topic.partitions.every((p) => p.leader >= 0);
}

/**
 * Polls cluster metadata until `done` holds. Polling is the only option: the
 * Kafka protocol has no "tell me when this topic changes" request.
 */
export async function waitForMetadata(
  bootstrapServers: string,
  timeoutMs: number,
  what: string,
  done: (metadata: Metadata) => boolean,
  extra: ClientProperties = {},
): Promise<Metadata> {
  const deadline = Date.now() + timeoutMs;
  return withMetadataClient(bootstrapServers, timeoutMs, async (client, initial) => {
    let metadata = initial;
    let lastError: unknown;
    for (;;) {
      if (done(metadata)) return metadata;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const cause = lastError === undefined ? '' : ` (last error: ${describeKafkaError(lastError)})`;
        throw new KafkaClientError(`timed out after ${timeoutMs} ms waiting until ${what}${cause}`);
      }
      await delay(Math.min(POLL_INTERVAL_MS, remaining));
      try {
        metadata = await getMetadata(client, Math.max(1, Math.min(5000, deadline - Date.now())));
      } catch (err) {
        lastError = err;
      }
    }
  }, extra);
}
