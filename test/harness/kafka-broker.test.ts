// Proves the real-broker harness in tools/kafka: a Kafka 4.3 JVM, node-rdkafka
// clients, no mocks. The tests in each describe block run in order and share
// one broker, the way a daemon test would use it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type DeliveryReport, type LibrdKafkaError, Producer, type ProducerGlobalConfig } from 'node-rdkafka';
import { KafkaBroker } from '../../tools/kafka/broker';
import { consumeAll, countMessages } from '../../tools/kafka/consume';

jest.setTimeout(180_000);

const CONSUME_TIMEOUT_MS = 30_000;

function connect(producer: Producer): Promise<void> {
  return new Promise((resolve, reject) => {
    producer.connect({ timeout: 10_000 }, (err) => (err ? reject(err) : resolve()));
  });
}

function disconnect(producer: Producer): Promise<void> {
  return new Promise((resolve) => producer.disconnect(() => resolve()));
}

/** Produces `values` (key null) and resolves with one delivery report per message. */
async function produce(
  bootstrapServers: string,
  topic: string,
  values: Buffer[],
  extraConfig: Partial<ProducerGlobalConfig> = {},
): Promise<DeliveryReport[]> {
  const producer = new Producer({ 'metadata.broker.list': bootstrapServers, dr_msg_cb: true, ...extraConfig });
  await connect(producer);
  try {
    producer.setPollInterval(50);
    const delivered = new Promise<DeliveryReport[]>((resolve, reject) => {
      const reports: DeliveryReport[] = [];
      producer.on('delivery-report', (err: LibrdKafkaError | null, report: DeliveryReport) => {
        if (err) reject(err);
        reports.push(report);
        if (reports.length === values.length) resolve(reports);
      });
    });
    for (const value of values) producer.produce(topic, null, value, null);
    return await delivered;
  } finally {
    await disconnect(producer);
  }
}

describe('KafkaBroker with auto.create.topics.enable=false', () => {
  const topic = 'jobcomp-harness';
  const values = [Buffer.from('{"jobid":1}'), Buffer.from([0, 1, 2, 255]), Buffer.from('third message')];
  let broker: KafkaBroker;

  beforeAll(async () => {
    broker = await KafkaBroker.start({ autoCreateTopics: false });
  });

  afterAll(async () => {
    await broker?.destroy();
  });

  test('listens on loopback and logs to <dataDir>/broker.log', () => {
    expect(broker.bootstrapServers).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(broker.pid).toEqual(expect.any(Number));
    expect(fs.readFileSync(path.join(broker.dataDir, 'broker.log'), 'utf8')).toContain('Kafka Server started');
  });

  test('a created topic round-trips three messages byte for byte', async () => {
    await broker.createTopic(topic);
    const reports = await produce(broker.bootstrapServers, topic, values);
    expect(reports.map((r) => r.offset)).toEqual([0, 1, 2]);

    const messages = await consumeAll(broker.bootstrapServers, topic, { count: 3, timeoutMs: CONSUME_TIMEOUT_MS });
    expect(messages.map((m) => m.value)).toEqual(values);
    expect(messages.map((m) => m.key)).toEqual([null, null, null]);
    expect(messages.every((m) => m.topic === topic && m.partition === 0)).toBe(true);
    expect(await countMessages(broker.bootstrapServers, topic)).toBe(3);
  });

  test('consumeAll() rejects, saying how many arrived, when fewer than expected do', async () => {
    const attempt = consumeAll(broker.bootstrapServers, topic, { count: 4, timeoutMs: 2000 });
    await expect(attempt).rejects.toThrow(/only 3 of 4 message\(s\) arrived/);
  });

  test('stop() then restart() keeps the address and the data', async () => {
    const address = broker.bootstrapServers;
    await broker.stop();
    expect(broker.pid).toBeUndefined();

    await broker.restart();
    expect(broker.bootstrapServers).toBe(address);
    const messages = await consumeAll(broker.bootstrapServers, topic, { count: 3, timeoutMs: CONSUME_TIMEOUT_MS });
    expect(messages.map((m) => m.value)).toEqual(values);
    expect(await countMessages(broker.bootstrapServers, topic)).toBe(3);
  });

  test('kill() then restart() keeps acknowledged messages', async () => {
    await produce(broker.bootstrapServers, topic, [Buffer.from('acked before the crash')]);
    await broker.kill();
    expect(broker.pid).toBeUndefined();

    await broker.restart();
    expect(await countMessages(broker.bootstrapServers, topic)).toBe(4);
  });

  test('producing to an unknown topic fails instead of creating it', async () => {
    const unknown = 'never-created';
    const attempt = produce(broker.bootstrapServers, unknown, [Buffer.from('x')], {
      'topic.metadata.propagation.max.ms': 1000,
    });
    await expect(attempt).rejects.toMatchObject({ message: expect.stringMatching(/unknown topic/i) });
    expect(await countMessages(broker.bootstrapServers, unknown)).toBe(0);
  });

  test('deleteTopic() resolves once the topic is gone', async () => {
    await broker.deleteTopic(topic);
    expect(await countMessages(broker.bootstrapServers, topic)).toBe(0);
    // The name is free again at once.
    await broker.createTopic(topic, 2);
    expect(await countMessages(broker.bootstrapServers, topic)).toBe(0);
  });
});

describe('KafkaBroker with auto.create.topics.enable=true', () => {
  let broker: KafkaBroker;

  beforeAll(async () => {
    broker = await KafkaBroker.start({ autoCreateTopics: true });
  });

  afterAll(async () => {
    const dataDir = broker?.dataDir;
    await broker?.destroy();
    if (dataDir !== undefined) expect(fs.existsSync(dataDir)).toBe(false);
  });

  test('a producer can write to a topic nobody created', async () => {
    const topic = 'auto-created';
    const reports = await produce(broker.bootstrapServers, topic, [Buffer.from('hello')]);
    expect(reports).toHaveLength(1);

    const messages = await consumeAll(broker.bootstrapServers, topic, { count: 1, timeoutMs: CONSUME_TIMEOUT_MS });
    expect(messages.map((m) => m.value?.toString())).toEqual(['hello']);
    expect(await countMessages(broker.bootstrapServers, topic)).toBe(1);
  });
});
