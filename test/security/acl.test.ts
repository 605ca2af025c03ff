// Kafka authorization against a real broker (KRaft's StandardAuthorizer, no ACL means
// denied) and the real daemon: a SCRAM user that may not write the topic gets every record
// quarantined with TOPIC_AUTHORIZATION_FAILED, none vanishes, none reaches the topic; once
// the ACL is granted through Kafka's Admin API, `jobcompd replay --quarantined` delivers
// each of them exactly once. Both ways librdkafka (2.12) learns of the refusal are covered:
// without DESCRIBE the topic's metadata is refused, and librdkafka fails the records it
// queued in delivery reports; with DESCRIBE but not WRITE the produce request is refused,
// and the batch fails in delivery reports. Either way the topic is then in librdkafka's
// error state, so produce() refuses the later records at once. All with the same code.

import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { AclOperationName } from '../../tools/kafka/broker';
import { consumeAll, countMessages } from '../../tools/kafka/consume';
import { useBroker } from '../helpers/broker-suite';
import { runCli } from '../helpers/cli';
import { postAll, type DaemonProcess, type LogLine } from '../helpers/daemon';
import { expectedPayload, jobIdOf, numberedBodies } from '../helpers/records';

jest.setTimeout(240_000);

const N = 50;
const NO_ACL_USER = 'no-acl';
const DESCRIBE_ONLY_USER = 'describe-only';
const CONSUME_TIMEOUT_MS = 60_000;

const suite = useBroker({
  autoCreateTopics: false,
  authorizer: true,
  sasl: {
    mechanism: 'SCRAM-SHA-256',
    users: { [NO_ACL_USER]: randomBytes(12).toString('hex'), [DESCRIBE_ONLY_USER]: randomBytes(12).toString('hex') },
  },
});

/** The rdkafka.conf lines after bootstrap.servers (writeDaemonConfig writes that one). */
function saslConf(user: string): string {
  const props: Record<string, string> = { ...suite.broker().clientPropertiesFor(user) };
  delete props['bootstrap.servers'];
  return Object.entries(props)
    .map(([k, v]) => `${k}=${v}\n`)
    .join('');
}

interface Status {
  daemon: string;
  backlog: number;
  delivered: number;
  quarantined: number;
  producer: { state: string; lastError: string | null } | null;
}

function status(configFile: string): Status {
  const r = runCli(['status', '--json', '-c', configFile]);
  expect(r).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(r.stdout) as Status;
}

/**
 * librdkafka's text for the refusal: from produce() once the topic is in its error state
 * ('Broker: ...'), or from a delivery report (node-rdkafka's lower-cased message). Which
 * records get which depends on timing.
 */
const REFUSALS = ['Broker: Topic authorization failed', 'topic authorization failed'];

function waitForQuarantined(d: DaemonProcess, jobIds: number[]): Promise<LogLine[]> {
  return Promise.all(jobIds.map((id) => d.waitForLog((l) => l.logEvent === 'record.refused' && l.jobId === id, `quarantined ${id}`)));
}

/** The quarantine table, read the way docs/operations.md shows (the daemon stopped). */
function quarantineTable(d: DaemonProcess): { job_id: number; reason_code: string; reason: string }[] {
  const db = new Database(join(d.stateDir, 'jobcompd.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT job_id, reason_code, reason FROM quarantine ORDER BY job_id').all() as { job_id: number; reason_code: string; reason: string }[];
  } finally {
    db.close();
  }
}

const sorted = (buffers: Buffer[]): string[] => buffers.map((b) => b.toString('latin1')).sort();

interface Case {
  name: string;
  user: string;
  /** granted before the daemon starts */
  before: AclOperationName[];
  /** granted before the replay */
  after: AclOperationName[];
  firstJobId: number;
}

const cases: Case[] = [
  { name: 'no ACL at all (metadata refused)', user: NO_ACL_USER, before: [], after: ['WRITE', 'DESCRIBE'], firstJobId: 40_000 },
  { name: 'DESCRIBE without WRITE (produce refused)', user: DESCRIBE_ONLY_USER, before: ['DESCRIBE'], after: ['WRITE'], firstJobId: 41_000 },
];

it.each(cases)('$name: every record is quarantined with TOPIC_AUTHORIZATION_FAILED; after the grant, replay delivers each once', async (c) => {
  const broker = suite.broker();
  const topic = `acl-${c.user}`;
  await broker.createTopic(topic);
  if (c.before.length > 0) await broker.grantAcl({ user: c.user, resource: { type: 'TOPIC', name: topic }, operations: c.before });
  const d = await suite.daemon({ clusterName: topic, rdkafka: saslConf(c.user) });

  const bodies = numberedBodies(N, c.firstJobId);
  const jobIds = bodies.map(jobIdOf);
  await postAll(d.url, bodies, 8);
  const refusals = await waitForQuarantined(d, jobIds);
  for (const l of refusals) {
    expect(l).toMatchObject({ level: 'error', event: 'job finish' });
    expect(REFUSALS.map((r) => `ERR_TOPIC_AUTHORIZATION_FAILED: ${r}`)).toContain(l.err);
  }
  expect(status(d.configFile)).toMatchObject({ daemon: 'running', backlog: 0, delivered: 0, quarantined: N, producer: { state: 'ready' } });
  expect(d.logs.filter((l) => l.logEvent === 'record.delivered')).toEqual([]);

  await d.stop('SIGTERM');
  expect(await d.exited).toEqual({ code: 0, signal: null });
  const table = quarantineTable(d);
  expect(table.map((r) => r.job_id)).toEqual(jobIds);
  for (const r of table) {
    expect(r.reason_code).toBe('ERR_TOPIC_AUTHORIZATION_FAILED');
    expect(REFUSALS).toContain(r.reason);
  }
  expect(status(d.configFile)).toMatchObject({ daemon: 'not running', backlog: 0, delivered: 0, quarantined: N });
  expect(await countMessages(broker.bootstrapServers, topic, broker.adminClientProperties)).toBe(0);

  await broker.grantAcl({ user: c.user, resource: { type: 'TOPIC', name: topic }, operations: c.after });
  const replay = runCli(['replay', '--quarantined', '--timeout', '60', '-c', d.configFile], { timeoutMs: 90_000 });
  expect(replay.code).toBe(0);
  expect(replay.stdout).toContain(`moved ${N} quarantined record(s) back to be sent; 0 kept in quarantine`);
  expect(replay.stdout).toContain(`delivered ${N}, quarantined 0, still saved 0`);

  const messages = await consumeAll(broker.bootstrapServers, topic, { count: N, timeoutMs: CONSUME_TIMEOUT_MS }, broker.adminClientProperties);
  expect(sorted(messages.map((m) => m.value as Buffer))).toEqual(sorted(bodies.map(expectedPayload)));
  // consumeAll stops at N; the topic's size says that nothing came twice.
  expect(await countMessages(broker.bootstrapServers, topic, broker.adminClientProperties)).toBe(N);
  expect(status(d.configFile)).toMatchObject({ daemon: 'not running', backlog: 0, delivered: N, quarantined: 0 });
});
