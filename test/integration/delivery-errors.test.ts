// What jobcompd does when Kafka says no, against a real broker with topic auto-creation
// off: unknown topics are quarantined, timeouts are retried, a full librdkafka queue is
// backpressure. Nothing is dropped.

import type { KafkaBroker } from '../../tools/kafka/broker';
import { useBroker } from '../helpers/broker-suite';
import { consumeAll } from '../../tools/kafka/consume';
import { runCli } from '../helpers/cli';
import { postAll, type DaemonProcess } from '../helpers/daemon';
import { jobIdOf, numberedBodies } from '../helpers/records';

jest.setTimeout(240_000);

const suite = useBroker({ autoCreateTopics: false });
const daemon = suite.daemon;
let broker: KafkaBroker;
beforeAll(() => {
  broker = suite.broker();
});

interface Status {
  backlog: number;
  quarantined: number;
  delivered: number;
  recordedErrors?: {
    pending: { jobId: number; event: number; attempts: number; error: string } | null;
    quarantine: { jobId: number | null; code: string; reason: string } | null;
  };
}

function status(d: DaemonProcess): Status {
  return JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout) as Status;
}

it('records for a topic that does not exist (auto-create off) go to quarantine, none vanish; replay --quarantined sends them once it exists', async () => {
  const d = await daemon({ clusterName: 'nosuchtopic', rdkafka: 'topic.metadata.propagation.max.ms=1000\n' });
  await postAll(d.url, numberedBodies(20, 700_000), 4);
  await d.waitForLog(() => d.logs.filter((l) => l.logEvent === 'record.refused').length === 20, '20 quarantined');
  const refused = d.logs.filter((l) => l.logEvent === 'record.refused');
  expect(new Set(refused.map((l) => l.jobId)).size).toBe(20);
  expect(String(refused[0]?.err)).toMatch(/UNKNOWN_TOPIC/);
  await d.stop();
  // no daemon runs: the state file says what happened last
  expect(status(d)).toMatchObject({ backlog: 0, quarantined: 20, delivered: 0, recordedErrors: { pending: null, quarantine: { code: expect.stringMatching(/UNKNOWN_TOPIC/) } } });
  expect(runCli(['status', '-c', d.configFile]).stdout).toMatch(/last quarantined:\s+\S*UNKNOWN_TOPIC\S*: .+\(job 7000\d\d, /);

  // the cause fixed (the topic created), `replay --quarantined` sends them
  await broker.createTopic('nosuchtopic');
  const dry = runCli(['replay', '--quarantined', '--dry-run', '--json', '-c', d.configFile]);
  expect(dry.stdout.trim().split('\n')).toHaveLength(20);
  const r = runCli(['replay', '--quarantined', '--timeout', '60', '-c', d.configFile], { timeoutMs: 90_000 });
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('moved 20 quarantined record(s) back to be sent; 0 kept in quarantine');
  expect(r.stdout).toContain('delivered 20, quarantined 0, still saved 0');
  const messages = await consumeAll(broker.bootstrapServers, 'nosuchtopic', { count: 20, timeoutMs: 30_000 });
  expect(new Set(messages.map((m) => jobIdOf(m.value as Buffer))).size).toBe(20);
  expect(status(d)).toMatchObject({ backlog: 0, quarantined: 0 });
});

it('message timeouts are retried with backoff until delivery succeeds (topic properties of rdkafka.conf apply)', async () => {
  // The topic does not exist yet and librdkafka waits for it (propagation 10 min), so each
  // attempt ends with a message timeout after message.timeout.ms=1000 (a topic property).
  const d = await daemon({
    clusterName: 'latetopic',
    rdkafka: 'message.timeout.ms=1000\ntopic.metadata.propagation.max.ms=600000\n',
    extraConf: '[producer]\nRetryBackoffMin=0.2\nRetryBackoffMax=1',
  });
  await postAll(d.url, numberedBodies(100, 800_000), 8);
  const summary = await d.waitForLog((l) => l.logEvent === 'delivery.retry-summary', 'retry summary');
  expect(String(summary.lastError)).toContain('ERR__MSG_TIMED_OUT');
  await d.waitForLog((l) => l.logEvent === 'delivery.failed' && Number(l.retryInMs) >= 400, 'a second attempt');
  expect(status(d).backlog).toBe(100);

  // stopped, the daemon's last error is still to be seen: it is kept with the records
  expect((await d.stop('SIGTERM')).code).toBe(0);
  const saved = status(d);
  expect(saved).toMatchObject({ backlog: 100, recordedErrors: { pending: { event: 1, error: expect.stringContaining('ERR__MSG_TIMED_OUT') } } });
  expect(saved.recordedErrors?.pending?.attempts).toBeGreaterThanOrEqual(1);
  expect(runCli(['status', '-c', d.configFile]).stdout).toMatch(/last Kafka error:\s+.*ERR__MSG_TIMED_OUT.*\(job 8000\d\d, job finish, after \d+ attempt\(s\); from the state file\)/);
  await daemon({ clusterName: 'latetopic', dir: d.dir, port: d.port, adminPort: d.adminPort });

  await broker.createTopic('latetopic');
  const messages = await consumeAll(broker.bootstrapServers, 'latetopic', { count: 100, timeoutMs: 120_000 });
  expect(new Set(messages.map((m) => jobIdOf(m.value as Buffer))).size).toBe(100);
});

it('a full librdkafka queue is backpressure: every record still goes out', async () => {
  await broker.createTopic('tinyqueue');
  const d = await daemon({ clusterName: 'tinyqueue', rdkafka: 'queue.buffering.max.messages=5\n' });
  await postAll(d.url, numberedBodies(500, 900_000), 32);
  const messages = await consumeAll(broker.bootstrapServers, 'tinyqueue', { count: 500, timeoutMs: 120_000 });
  expect(new Set(messages.map((m) => jobIdOf(m.value as Buffer))).size).toBe(500);
  expect(d.logs.some((l) => l.logEvent === 'producer.queue-full')).toBe(true);
});
