// Real producers against the listener (committing into memory): what each client produces
// is what the listener commits, byte for byte, with and without compression; a codec this
// Node.js cannot read is refused with UNSUPPORTED_COMPRESSION_TYPE, never taken as garbage.

import { mkdtempSync } from 'node:fs';
import { features as rdkafkaFeatures } from 'node-rdkafka';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSupportedCodec, CompressionCodec } from '../../src/kafka-protocol/compression';
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

/** librdkafka's RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE: the protocol's 76. */
const UNSUPPORTED_COMPRESSION_TYPE = 76;
const READABLE = ['none', 'gzip', 'snappy', 'lz4', 'zstd'].filter((c) => isSupportedCodec(CompressionCodec[c as keyof typeof CompressionCodec]));
const UNREADABLE = ['snappy', 'lz4', 'zstd'].filter((c) => !READABLE.includes(c));
/**
 * librdkafka compresses with lz4 only if the broker lists FindCoordinator, and with zstd
 * only if it lists Fetch v10; the listener lists neither, so librdkafka sends such batches
 * uncompressed, which the listener takes (docs/kafka-listener.md#compression). zstd only
 * where node-rdkafka's librdkafka was built with libzstd (it refuses the setting otherwise).
 */
const RDKAFKA_SENDS = ['none', 'gzip', 'lz4', ...(rdkafkaFeatures.includes('zstd') ? ['zstd'] : [])];
const RDKAFKA_REFUSED = UNREADABLE.filter((c) => !RDKAFKA_SENDS.includes(c) && c !== 'zstd');

describe.each([
  ['idempotent', { 'enable.idempotence': true }],
  ['acks=1', { acks: 1 }],
])('node-rdkafka, %s', (_name, extra) => {
  test.each(RDKAFKA_SENDS)('compression %s: every message committed as produced', async (codec) => {
    const messages = testMessages(200, codec);
    const outcome = await produceWithRdkafka(memory.bootstrap, `t-${codec}`, messages, { ...extra, 'compression.codec': codec, 'linger.ms': 5 });
    expect(outcome).toEqual({ delivered: messages.length, errors: [] });
    expectCommitted(`t-${codec}`, messages);
  });

  test.each(RDKAFKA_REFUSED)('compression %s: refused with UNSUPPORTED_COMPRESSION_TYPE and a log event', async (codec) => {
    // enough alike messages in one batch that librdkafka keeps the compressed form (it sends a batch uncompressed if that is smaller)
    const messages = testMessages(100, codec);
    const outcome = await produceWithRdkafka(memory.bootstrap, `t-${codec}`, messages, { ...extra, 'compression.codec': codec, 'linger.ms': 50 });
    expect(outcome.delivered).toBe(0);
    expect(new Set(outcome.errors)).toEqual(new Set([UNSUPPORTED_COMPRESSION_TYPE]));
    expect(memory.records).toHaveLength(0);
    expect(memory.events).toContainEqual({ kind: 'unsupported-compression', detail: codec });
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
  // librdkafka's zstd needs Fetch v10 listed, its lz4 FindCoordinator: without them it sends uncompressed
  test.each([...new Set([...READABLE, 'lz4', 'zstd'])])('compression %s: every message committed as produced', async (codec) => {
    const messages = testMessages(5, `kcat-${codec}`);
    await produceWithKcat(memory.bootstrap, `kcat-${codec}`, messages, { 'compression.codec': codec });
    expectCommitted(`kcat-${codec}`, messages);
  });
});

describe('the Java producer of tools/kafka (idempotence, acks=all)', () => {
  const work = mkdtempSync(join(tmpdir(), 'jobcompd-java-'));
  test.each(READABLE)('compression %s: every message committed as produced', async (codec) => {
    const messages = testMessages(200, `java-${codec}`);
    const outcome = await produceWithJava(memory.bootstrap, `java-${codec}`, messages, codec, work);
    expect(outcome).toEqual({ delivered: messages.length, failed: 0 });
    expectCommitted(`java-${codec}`, messages);
  });

  test.each(UNREADABLE)('compression %s: refused, nothing committed', async (codec) => {
    const outcome = await produceWithJava(memory.bootstrap, `java-${codec}`, testMessages(100, codec), codec, work);
    expect(outcome.delivered).toBe(0);
    expect(memory.records).toHaveLength(0);
    expect(memory.events).toContainEqual({ kind: 'unsupported-compression', detail: codec });
  });
});
