// `jobcompd topics create|describe` and `check-config --connect` against a real broker that
// does not auto-create topics (docs/operations.md "jobcompd topics").

import { runCli, tempDir, writeFiles } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';

jest.setTimeout(120_000);

const suite = useBroker({ autoCreateTopics: false });

interface DescribedTopic {
  name: string;
  exists: boolean;
  partitions: number;
  replicationFactor: number;
}

/** A jobcompd.conf for `cluster` (start records on) with these [topics] lines. */
function configFor(cluster: string, topicsSection = ''): string {
  const dir = tempDir();
  const files = writeFiles(dir, {
    'rdkafka.conf': `bootstrap.servers=${suite.broker().bootstrapServers}\n`,
    'jobcompd.conf': `ClusterName=${cluster}\nStateDir=state\nJobCompLoc=rdkafka.conf\nJobCompParams=enable_job_start\n${topicsSection}`,
  });
  return files['jobcompd.conf'] as string;
}

function describe(conf: string): DescribedTopic[] {
  const r = runCli(['topics', 'describe', '--json', '-c', conf]);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { topics: DescribedTopic[] }).topics.map(({ name, exists, partitions, replicationFactor }) => ({ name, exists, partitions, replicationFactor }));
}

test('creates the finish and start topics with the partitions and replication asked for, and leaves them alone the second time', () => {
  const conf = configFor('blue');
  expect(describe(conf)).toEqual([
    { name: 'blue', exists: false, partitions: 0, replicationFactor: 0 },
    { name: 'blue-job-start', exists: false, partitions: 0, replicationFactor: 0 },
  ]);

  const created = runCli(['topics', 'create', '--json', '--partitions', '3', '--replication-factor', '1', '--topic-config', 'retention.ms=3600000,min.insync.replicas=1', '-c', conf]);
  expect(created.code).toBe(0);
  expect(JSON.parse(created.stdout)).toMatchObject({ created: ['blue', 'blue-job-start'], existed: [], warnings: [] });
  expect(describe(conf)).toEqual([
    { name: 'blue', exists: true, partitions: 3, replicationFactor: 1 },
    { name: 'blue-job-start', exists: true, partitions: 3, replicationFactor: 1 },
  ]);

  // again, asking for 5 partitions: nothing is changed, and the difference is reported
  const again = runCli(['topics', 'create', '--json', '--partitions', '5', '-c', conf]);
  expect(again.code).toBe(0);
  const out = JSON.parse(again.stdout) as { created: string[]; existed: string[]; warnings: string[] };
  expect(out).toMatchObject({ created: [], existed: ['blue', 'blue-job-start'] });
  expect(out.warnings).toHaveLength(2);
  expect(describe(conf).map((t) => t.partitions)).toEqual([3, 3]);
});

test('[topics] in jobcompd.conf gives the defaults, and check-config --connect warns when an existing topic differs', () => {
  const conf = configFor('green', '[topics]\nPartitions=2\nReplicationFactor=1\nConfig=retention.ms=86400000\n');
  expect(runCli(['topics', 'create', '-c', conf]).code).toBe(0);
  expect(describe(conf)).toEqual([
    { name: 'green', exists: true, partitions: 2, replicationFactor: 1 },
    { name: 'green-job-start', exists: true, partitions: 2, replicationFactor: 1 },
  ]);
  const matching = runCli(['check-config', '--connect', '--json', '-c', conf]);
  expect(matching.code).toBe(0);
  expect((JSON.parse(matching.stdout) as { warnings: string[] }).warnings).toEqual([]);

  // the same topics, now asked with 4 partitions: one warning per topic, still exit 0
  const differing = configFor('green', '[topics]\nPartitions=4\n');
  const r = runCli(['check-config', '--connect', '--json', '-c', differing]);
  expect(r.code).toBe(0);
  const summary = JSON.parse(r.stdout) as { warnings: string[]; topicsWanted: { partitions: number }; kafka: { topics: DescribedTopic[] } };
  expect(summary.topicsWanted.partitions).toBe(4);
  expect(summary.kafka.topics.map((t) => t.partitions)).toEqual([2, 2]);
  expect(summary.warnings).toHaveLength(2);
});

test.each([
  ['a replication factor above the broker count', 'red', ['--replication-factor', '3'], 'ERR_INVALID_REPLICATION_FACTOR'],
  ['a topic config the broker refuses (so the configs reach it)', 'amber', ['--topic-config', 'cleanup.policy=sometimes'], 'ERR_INVALID_CONFIG'],
])('refuses %s: exit 73, the broker code, no topic created', (_what, cluster, options, brokerCode) => {
  const conf = configFor(cluster);
  const r = runCli(['topics', 'create', ...options, '-c', conf]);
  expect(r.code).toBe(73);
  expect(r.stderr).toContain(brokerCode);
  expect(describe(conf).map((t) => t.exists)).toEqual([false, false]);
});

test('a malformed --topic-config is a usage error; [topics] Config a configuration error (exit 78, file:line: key)', () => {
  const conf = configFor('grey', '[topics]\nConfig=retention.ms\n');
  const bad = runCli(['topics', 'describe', '-c', conf]);
  expect(bad.code).toBe(78);
  expect(bad.stderr).toMatch(/jobcompd\.conf:6: Config:/);
  const usage = runCli(['topics', 'create', '--topic-config', 'retention.ms', '-c', configFor('grey')]);
  expect(usage.code).toBe(1);
});

test('no broker answers: exit 69', () => {
  const dir = tempDir();
  const files = writeFiles(dir, { 'rdkafka.conf': 'bootstrap.servers=127.0.0.1:1\n', 'jobcompd.conf': 'ClusterName=nowhere\nJobCompLoc=rdkafka.conf\n' });
  for (const command of ['describe', 'create']) {
    const r = runCli(['topics', command, '-c', files['jobcompd.conf'] as string]);
    expect(r.code).toBe(69);
  }
});
