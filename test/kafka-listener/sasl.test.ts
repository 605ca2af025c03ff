// SASL/PLAIN on the listener with real clients: the right credentials are let in, wrong
// ones and clients without SASL are not, and nothing of theirs is committed.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMemoryListener, type MemoryListener } from '../helpers/kafka-listener';
import { produceWithJava, produceWithRdkafka, testMessages } from '../helpers/kafka-producers';

jest.setTimeout(60_000);

const CREDENTIALS = { user: 'slurm', password: 'pa:ss wörd' };
const sasl = (password: string): Record<string, string> => ({
  'security.protocol': 'SASL_PLAINTEXT',
  'sasl.mechanisms': 'PLAIN',
  'sasl.username': CREDENTIALS.user,
  'sasl.password': password,
});

let memory: MemoryListener;
beforeEach(async () => {
  memory = await startMemoryListener({}, CREDENTIALS);
});
afterEach(async () => {
  await memory.listener.close();
});

test('node-rdkafka with the right credentials (idempotent): every message committed', async () => {
  const messages = testMessages(20, 'sasl');
  expect(await produceWithRdkafka(memory.bootstrap, 'sasl', messages, { ...sasl(CREDENTIALS.password), 'enable.idempotence': true })).toEqual({ delivered: 20, errors: [] });
  expect(memory.records.map((r) => r.value)).toEqual(messages.map((m) => m.value));
});

test('node-rdkafka with a wrong password: it cannot connect, nothing is committed, the failure is logged', async () => {
  await expect(produceWithRdkafka(memory.bootstrap, 'sasl', testMessages(2, 'bad'), { ...sasl('wrong'), 'message.timeout.ms': 3000 })).rejects.toThrow(/connect/);
  expect(memory.records).toHaveLength(0);
  expect(memory.events).toContainEqual({ kind: 'authentication-failed', detail: 'slurm' });
});

test('a client without SASL: its first request after ApiVersions closes the connection; nothing committed', async () => {
  await expect(produceWithRdkafka(memory.bootstrap, 'nosasl', testMessages(2, 'nosasl'), { 'message.timeout.ms': 3000 })).rejects.toThrow(/connect/);
  expect(memory.records).toHaveLength(0);
  expect(memory.logLines).toContainEqual(expect.objectContaining({ logEvent: 'kafka-listener.connection-closed', code: 'E_KAFKA_UNAUTHENTICATED' }));
});

test('the Java producer with the right credentials: every message committed', async () => {
  const messages = testMessages(10, 'java-sasl');
  const jaas = `org.apache.kafka.common.security.plain.PlainLoginModule required username="${CREDENTIALS.user}" password="${CREDENTIALS.password}";`;
  const outcome = await produceWithJava(memory.bootstrap, 'java-sasl', messages, 'none', mkdtempSync(join(tmpdir(), 'jobcompd-java-')), {
    'security.protocol': 'SASL_PLAINTEXT',
    'sasl.mechanism': 'PLAIN',
    'sasl.jaas.config': jaas,
  });
  expect(outcome).toEqual({ delivered: 10, failed: 0 });
  expect(memory.records).toHaveLength(10);
});
