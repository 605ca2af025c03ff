// The daemon with its Kafka listener on and a real broker upstream: what real producers
// send to jobcompd arrives upstream unchanged (value bytes, key, headers, topic), records
// of the real plugins keep their job id and event in logs, a kill -9 of jobcompd after the
// acknowledgement loses nothing, and metrics count the source.

import { readdirSync, readFileSync, mkdtempSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { consumeAll, type ConsumedMessage } from '../../tools/kafka/consume';
import { useBroker } from '../helpers/broker-suite';
import { freePort, type DaemonProcess } from '../helpers/daemon';
import { produceWithJava, produceWithKcat, produceWithRdkafka, testMessages, type TestMessage } from '../helpers/kafka-producers';

jest.setTimeout(180_000);

const suite = useBroker({ autoCreateTopics: true });
const CONSUME_MS = 60_000;

async function listeningDaemon(extra: { dir?: string; bootstrapServers?: string } = {}): Promise<{ daemon: DaemonProcess; bootstrap: string }> {
  const port = await freePort();
  const daemon = await suite.daemon({ kafkaConf: `Listen=127.0.0.1:${port}`, ...extra });
  return { daemon, bootstrap: `127.0.0.1:${port}` };
}

/** node-rdkafka's consumer gives headers as [{ key: Buffer }]. */
function headersOf(m: ConsumedMessage): { key: string; value: Buffer }[] {
  const list = (m.headers ?? []) as Record<string, Buffer>[];
  return list.flatMap((h) => Object.entries(h).map(([key, value]) => ({ key, value: Buffer.from(value) })));
}

function expectUpstream(got: ConsumedMessage[], sent: readonly TestMessage[]): void {
  const shape = (key: Buffer | null, value: Buffer | null, headers: { key: string; value: Buffer | null }[]) => ({ key: key?.toString('hex') ?? null, value: value?.toString('hex') ?? null, headers });
  expect(got.map((m) => shape(m.key, m.value, headersOf(m)))).toEqual(sent.map((m) => shape(m.key, m.value, m.headers.map((h) => ({ key: h.key, value: h.value })))));
}

/** The end and start records the real plugins of 24.11 and 26.05 produced (test/fixtures/SLURM-RELEASES.md). */
function pluginRecords(): TestMessage[] {
  const dirs = ['slurm-24.11/kafka', 'slurm-26.05/kafka', 'slurm-26.05/kafka-start'].map((d) => join(__dirname, '..', 'fixtures', d));
  return dirs.flatMap((dir) =>
    readdirSync(dir)
      .sort()
      .map((name) => ({ key: null, value: readFileSync(join(dir, name)), headers: [] })),
  );
}

test('the real plugins\' records from node-rdkafka (idempotent, acks=all): upstream byte for byte, logged with job id and event', async () => {
  const { daemon, bootstrap } = await listeningDaemon();
  const records = pluginRecords();
  const outcome = await produceWithRdkafka(bootstrap, 'hpc-jobs', records, { 'enable.idempotence': true, acks: -1 });
  expect(outcome).toEqual({ delivered: records.length, errors: [] });
  expectUpstream(await consumeAll(suite.broker().bootstrapServers, 'hpc-jobs', { count: records.length, timeoutMs: CONSUME_MS }), records);
  const committed = await daemon.waitForLog((l) => l.logEvent === 'record.committed' && l.source === 'kafka' && l.event === 'job start', 'a start record committed');
  expect(typeof committed['jobId']).toBe('number');
});

test.each(['none', 'gzip', 'snappy'])('keys and headers from node-rdkafka, compression %s: upstream unchanged, on the topic produced to', async (codec) => {
  const { bootstrap } = await listeningDaemon();
  const messages = testMessages(100, `rdkafka-${codec}`);
  await produceWithRdkafka(bootstrap, `rdkafka-${codec}`, messages, { 'compression.codec': codec, 'linger.ms': 10 });
  expectUpstream(await consumeAll(suite.broker().bootstrapServers, `rdkafka-${codec}`, { count: messages.length, timeoutMs: CONSUME_MS }), messages);
});

test.each(['none', 'gzip', 'snappy', 'lz4'])('the Java producer (idempotence, acks=all), compression %s: upstream unchanged', async (codec) => {
  const { bootstrap } = await listeningDaemon();
  const messages = testMessages(100, `java-${codec}`);
  const outcome = await produceWithJava(bootstrap, `java-${codec}`, messages, codec, mkdtempSync(join(tmpdir(), 'jobcompd-java-')));
  expect(outcome).toEqual({ delivered: messages.length, failed: 0 });
  expectUpstream(await consumeAll(suite.broker().bootstrapServers, `java-${codec}`, { count: messages.length, timeoutMs: CONSUME_MS }), messages);
});

test.each(['none', 'gzip', 'snappy'])('kcat -P, compression %s: upstream unchanged', async (codec) => {
  const { bootstrap } = await listeningDaemon();
  const messages = testMessages(5, `kcat-${codec}`);
  await produceWithKcat(bootstrap, `kcat-${codec}`, messages, { 'compression.codec': codec });
  expectUpstream(await consumeAll(suite.broker().bootstrapServers, `kcat-${codec}`, { count: messages.length, timeoutMs: CONSUME_MS }), messages);
});

test('kill -9 of jobcompd after it acknowledged, before upstream delivery: nothing lost', async () => {
  // upstream unreachable: every acknowledged record can only be in the state file
  const dead = `127.0.0.1:${await freePort()}`;
  const first = await listeningDaemon({ bootstrapServers: dead });
  const messages = testMessages(300, 'kill9');
  const outcome = await produceWithRdkafka(first.bootstrap, 'kill9', messages, { 'enable.idempotence': true, acks: -1 });
  expect(outcome).toEqual({ delivered: messages.length, errors: [] });
  await first.daemon.stop('SIGKILL');
  await listeningDaemon({ dir: first.daemon.dir });
  expectUpstream(await consumeAll(suite.broker().bootstrapServers, 'kill9', { count: messages.length, timeoutMs: CONSUME_MS }), messages);
});

test('metrics count the records received by the listener', async () => {
  const { daemon, bootstrap } = await listeningDaemon();
  await produceWithRdkafka(bootstrap, 'counted', testMessages(7, 'counted'));
  const metrics = await new Promise<string>((resolve, reject) => {
    get(`http://127.0.0.1:${daemon.adminPort}/metrics`, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  expect(metrics).toMatch(/jobcompd_records_received_total\{source="kafka"\} 7\b/);
});
