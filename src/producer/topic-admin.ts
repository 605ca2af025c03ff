// `jobcompd topics create`: CreateTopics through librdkafka's admin API, with the same
// librdkafka properties (brokers, TLS, SASL) as the producer. node-rdkafka's admin client
// offers CreateTopics, DeleteTopics and CreatePartitions only: no DescribeConfigs, so the
// configs of an existing topic cannot be read back (docs/operations.md "jobcompd topics").

import { AdminClient, CODES, type LibrdKafkaError } from 'node-rdkafka';
import { EXIT_CANTCREAT, KafkaAdminCodes, KafkaAdminError } from '../errors';
import { errorCodeName, librdkafkaCode } from './delivery-errors';
import { clientProperties, type ProducerSettings } from './librdkafka-settings';

export interface TopicSpec {
  name: string;
  /** undefined: the broker's num.partitions */
  partitions: number | undefined;
  /** undefined: the broker's default.replication.factor */
  replicationFactor: number | undefined;
  configs: Record<string, string>;
}

/** librdkafka's "use the broker's default" for partitions and replication (KIP-464). */
const BROKER_DEFAULT = -1;

/**
 * Create each topic; resolves with the names that already existed (left as they are).
 * Any other refusal ends with a KafkaAdminError naming the topic and librdkafka's code.
 */
export async function createTopics(settings: ProducerSettings, specs: TopicSpec[], timeoutMs: number): Promise<string[]> {
  const admin = AdminClient.create(clientProperties(settings));
  const existed: string[] = [];
  try {
    for (const spec of specs) {
      const err = await createOne(admin, spec, timeoutMs);
      if (err === undefined) continue;
      const code = librdkafkaCode(err);
      if (code === CODES.ERRORS.ERR_TOPIC_ALREADY_EXISTS) {
        existed.push(spec.name);
        continue;
      }
      throw new KafkaAdminError(
        KafkaAdminCodes.topicRefused,
        `the broker refused to create topic ${spec.name} (${describeSpec(spec)}): ${errorCodeName(code)}: ${err.message}`,
        EXIT_CANTCREAT,
      );
    }
  } finally {
    admin.disconnect();
  }
  return existed;
}

function createOne(admin: ReturnType<typeof AdminClient.create>, spec: TopicSpec, timeoutMs: number): Promise<LibrdKafkaError | undefined> {
  return new Promise((resolve) => {
    admin.createTopic(
      { topic: spec.name, num_partitions: spec.partitions ?? BROKER_DEFAULT, replication_factor: spec.replicationFactor ?? BROKER_DEFAULT, config: spec.configs },
      timeoutMs,
      (err) => resolve(err ?? undefined),
    );
  });
}

export function describeSpec(spec: TopicSpec): string {
  const configs = Object.entries(spec.configs).map(([k, v]) => `${k}=${v}`);
  return [
    `partitions ${spec.partitions ?? 'broker default'}`,
    `replication factor ${spec.replicationFactor ?? 'broker default'}`,
    ...(configs.length > 0 ? [`configs ${configs.join(',')}`] : []),
  ].join(', ');
}
