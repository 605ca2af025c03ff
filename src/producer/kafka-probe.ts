// `jobcompd check-config --connect`: what can be checked against the brokers without
// writing anything: the brokers answer (bootstrap reachable, TLS and SASL accepted), and
// the topics exist and are visible to this principal. Kafka offers no way to test Write
// permission without writing (node-rdkafka does not expose DescribeTopics' authorized
// operations), and a probe record would land in the consumers' topic; a denied write shows
// up at the first record instead, as a quarantined record (TOPIC_AUTHORIZATION_FAILED).

import { Producer, type Metadata } from 'node-rdkafka';
import { redactSecrets } from '../config/jobcomploc-file';
import { producerConfigs, type ProducerSettings } from './librdkafka-settings';

export interface ProbedTopic {
  name: string;
  exists: boolean;
  partitions: number;
  /** replicas of its partitions (the largest count, should they differ); 0 when missing */
  replicationFactor: number;
  /** partitions with fewer in-sync replicas than replicas */
  underReplicated: number;
}

export interface ProbeResult {
  brokers: string[];
  topics: ProbedTopic[];
}

export class ProbeError extends Error {}

/** Connect, read the cluster metadata (all topics: asking for one could auto-create it), disconnect. */
export function probeKafka(settings: ProducerSettings, topics: string[], timeoutMs: number): Promise<ProbeResult> {
  const { global, topic } = producerConfigs(settings);
  const producer = new Producer(global, topic);
  return new Promise((resolve, reject) => {
    producer.connect({ allTopics: true, timeout: timeoutMs }, (err, metadata: Metadata) => {
      const done = (): void => {
        const why = `cannot read metadata from ${settings.properties.get('bootstrap.servers')?.value ?? 'the brokers'}: ${err?.message ?? ''}`;
        if (err) reject(new ProbeError(redactSecrets(why, settings.properties.values())));
        else resolve(describe(metadata, topics));
      };
      if (producer.isConnected()) producer.disconnect(0, done);
      else done();
    });
  });
}

function describe(metadata: Metadata, wanted: string[]): ProbeResult {
  return {
    brokers: metadata.brokers.map((b) => `${b.host}:${b.port} (id ${b.id})`),
    topics: wanted.map((name) => {
      const partitions = metadata.topics.find((x) => x.name === name)?.partitions ?? [];
      return {
        name,
        exists: partitions.length > 0,
        partitions: partitions.length,
        replicationFactor: Math.max(0, ...partitions.map((p) => p.replicas.length)),
        underReplicated: partitions.filter((p) => p.isrs.length < p.replicas.length).length,
      };
    }),
  };
}
