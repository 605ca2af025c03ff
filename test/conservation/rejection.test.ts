// Conservation when Kafka refuses records for good: the topic is deleted mid-stream and
// the broker does not create topics. Every record is either confirmed delivered (before
// the deletion) or in quarantine, none vanishes, and `replay --quarantined` delivers the
// quarantined ones once the topic exists again.

import { consumeAll } from '../../tools/kafka/consume';
import { runCli, runCliAsync } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { postAll } from '../helpers/daemon';
import { jobIdOf, numberedBodies } from '../helpers/records';
import { until } from './faults';

jest.setTimeout(300_000);

const N = 5000;
const suite = useBroker({ autoCreateTopics: false });

it(`${N} records, the topic deleted at 40%: each is delivered or quarantined, then replayed`, async () => {
  const broker = suite.broker();
  await broker.createTopic('rejecting');
  const d = await suite.daemon({ clusterName: 'rejecting', rdkafka: 'topic.metadata.propagation.max.ms=1000\ntopic.metadata.refresh.interval.ms=1000\n' });
  const bodies = numberedBodies(N, 5_000_000);
  await postAll(d.url, bodies.slice(0, N * 0.4), 16);
  await broker.deleteTopic('rejecting');
  await postAll(d.url, bodies.slice(N * 0.4), 16);

  const status = async (): Promise<{ backlog: number; quarantined: number; delivered: number }> => {
    const r = await runCliAsync(['status', '--json', '-c', d.configFile]);
    expect(r).toMatchObject({ code: 0, stderr: '' }); // a failure shows its stderr
    return JSON.parse(r.stdout) as { backlog: number; quarantined: number; delivered: number };
  };
  await until('every record delivered or quarantined', async () => (await status()).backlog === 0, 120_000);
  await d.stop('SIGTERM'); // after the exit, every log line has been read
  const delivered = new Set(d.logs.filter((l) => l.msg === 'delivered').map((l) => Number(l.jobId)));

  const dry = runCli(['replay', '--quarantined', '--dry-run', '--json', '-c', d.configFile]);
  const quarantined = new Set(dry.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { jobId: number }).jobId));
  expect(quarantined.size).toBeGreaterThan(0);
  const vanished = bodies.map(jobIdOf).filter((id) => !delivered.has(id) && !quarantined.has(id));
  expect(vanished).toEqual([]);
  expect(await status()).toMatchObject({ backlog: 0, quarantined: quarantined.size });

  await broker.createTopic('rejecting');
  const replay = runCli(['replay', '--quarantined', '--timeout', '120', '-c', d.configFile], { timeoutMs: 150_000 });
  expect(replay.code).toBe(0);
  expect(replay.stdout).toContain(`delivered ${quarantined.size}, quarantined 0, still saved 0`);
  const messages = await consumeAll(broker.bootstrapServers, 'rejecting', { count: quarantined.size, timeoutMs: 60_000 });
  expect(new Set(messages.map((m) => jobIdOf(m.value as Buffer)))).toEqual(quarantined);
  process.stdout.write(`rejection: ${delivered.size} delivered before the deletion, ${quarantined.size} quarantined then replayed\n`);
});
