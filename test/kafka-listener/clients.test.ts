// Real producers against the listener (committing into memory): what each client produces
// is what the listener commits, byte for byte, with every compression codec it offers.

import { mkdtempSync } from 'node:fs';
import { features as rdkafkaFeatures } from 'node-rdkafka';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMemoryListener, type MemoryListener } from '../helpers/kafka-listener';
import { produceWithJava, produceWithKcat, produceWithRdkafka, testMessages, type TestMessage } from '../helpers/kafka-producers';

jest.setTimeout(120_000);

let memory: MemoryListener;
beforeEach(async () => {
  memory = await startMemoryListener();
});
afterEach(async () => {
  await memory.listener.close();
});

function expectCommitted(topic: string, messages: readonly TestMessage[]): void {
  const got = memory.records.filter((r) => r.topic === topic);
  expect(got.map((r) => ({ key: r.key, value: r.value, headers: r.headers }))).toEqual(
    messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
  );
}

/**
 * librdkafka compresses with lz4 only if the broker lists FindCoordinator, and with zstd
 * only if it lists Fetch v10; the listener lists neither, so librdkafka sends such batches
 * uncompressed, which the listener takes (docs/kafka-listener.md#compression). zstd only
 * where node-rdkafka's librdkafka was built with libzstd (it refuses the setting otherwise).
 */
const RDKAFKA_CODECS = ['none', 'gzip', 'snappy', 'lz4', ...(rdkafkaFeatures.includes('zstd') ? ['zstd'] : [])];

describe.each([
  ['idempotent', { 'enable.idempotence': true }],
  ['acks=1', { acks: 1 }],
])('node-rdkafka, %s', (_name, extra) => {
  test.each(RDKAFKA_CODECS)('compression %s: every message committed as produced', async (codec) => {
    const messages = testMessages(200, codec);
    const outcome = await produceWithRdkafka(memory.bootstrap, `t-${codec}`, messages, { ...extra, 'compression.codec': codec, 'linger.ms': 5 });
    expect(outcome).toEqual({ delivered: messages.length, errors: [] });
    expectCommitted(`t-${codec}`, messages);
  });
});

test('node-rdkafka acks=0: records committed, no answer awaited', async () => {
  const messages = testMessages(50, 'acks0');
  const outcome = await produceWithRdkafka(memory.bootstrap, 'acks0', messages, { acks: 0 });
  expect(outcome.errors).toEqual([]);
  await memory.waitForRecords(messages.length);
  expectCommitted('acks0', messages);
});

describe('kcat -P (Debian librdkafka 2.0.2)', () => {
  // librdkafka 2.0.2 compresses with gzip or snappy only if the broker lists Produce v0, with lz4
  // only if it lists FindCoordinator, with zstd only if it lists Fetch v10: against the listener
  // (as against Kafka 4) it sends every batch uncompressed
  test.each(['none', 'gzip', 'snappy', 'lz4', 'zstd'])('compression %s: every message committed as produced', async (codec) => {
    const messages = testMessages(5, `kcat-${codec}`);
    await produceWithKcat(memory.bootstrap, `kcat-${codec}`, messages, { 'compression.codec': codec });
    expectCommitted(`kcat-${codec}`, messages);
  });
});

describe('the Java producer of tools/kafka (idempotence, acks=all)', () => {
  const work = mkdtempSync(join(tmpdir(), 'jobcompd-java-'));
  test.each(['none', 'gzip', 'snappy', 'lz4', 'zstd'])('compression %s: every message committed as produced', async (codec) => {
    const messages = testMessages(200, `java-${codec}`);
    const outcome = await produceWithJava(memory.bootstrap, `java-${codec}`, messages, codec, work);
    expect(outcome).toEqual({ delivered: messages.length, failed: 0 });
    expectCommitted(`java-${codec}`, messages);
  });
});
