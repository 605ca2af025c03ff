// SASL/SCRAM against a real Kafka broker (SASL_PLAINTEXT client listener, SCRAM-SHA-256
// users created when its storage is formatted) and the real daemon: the right credentials
// deliver; a wrong password keeps every record, says why in the log, never shows a
// password (log, stderr, `status`); and a corrected rdkafka.conf applied with SIGHUP
// delivers every record accepted meanwhile.

import { randomBytes } from 'node:crypto';
import type { ConsumedMessage } from '../../tools/kafka/consume';
import { consumeAll } from '../../tools/kafka/consume';
import { useBroker } from '../helpers/broker-suite';
import { runCli, type CliResult } from '../helpers/cli';
import { postAll, type DaemonProcess, type LogLine } from '../helpers/daemon';
import { jobIdOf, numberedBodies } from '../helpers/records';

jest.setTimeout(180_000);

const USER = 'jobcompd';
// Random, so that finding one in a log can only mean that it leaked there.
const PASSWORD = `right-${randomBytes(12).toString('hex')}`;
const WRONG_PASSWORD = `wrong-${randomBytes(12).toString('hex')}`;
const CONSUME_TIMEOUT_MS = 60_000;

const suite = useBroker({ autoCreateTopics: false, sasl: { mechanism: 'SCRAM-SHA-256', users: { [USER]: PASSWORD } } });

/**
 * The rdkafka.conf lines after bootstrap.servers (writeDaemonConfig writes that one):
 * security.protocol=sasl_plaintext, sasl.mechanism=SCRAM-SHA-256, sasl.username, sasl.password,
 * and debug=conf,security.
 */
function saslConf(password: string): string {
  const props: Record<string, string> = { ...suite.broker().clientPropertiesFor(USER), 'sasl.password': password };
  delete props['bootstrap.servers'];
  // librdkafka's configuration dump and SASL handshake in the log: where a password could leak
  props.debug = 'conf,security';
  return Object.entries(props)
    .map(([k, v]) => `${k}=${v}\n`)
    .join('');
}

function status(d: DaemonProcess): { result: CliResult; report: Record<string, unknown> } {
  const result = runCli(['status', '--json', '-c', d.configFile]);
  expect(result).toMatchObject({ code: 0 });
  return { result, report: JSON.parse(result.stdout) as Record<string, unknown> };
}

function sortedJobIds(messages: ConsumedMessage[]): number[] {
  return messages.map((m) => jobIdOf(m.value as Buffer)).sort((a, b) => a - b);
}

function range(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

/** Every text the daemon produced (log lines, stderr) or a command printed. */
function everythingShown(d: DaemonProcess, outputs: CliResult[]): string {
  return [...d.logs.map((l) => JSON.stringify(l)), d.stderr, ...outputs.flatMap((o) => [o.stdout, o.stderr])].join('\n');
}

/** librdkafka's SASL failure, as the daemon logs it. */
function isAuthFailure(l: LogLine): boolean {
  return /SASL authentication error: Authentication failed/.test(`${l.msg} ${String(l.err ?? '')}`);
}

function waitForDelivered(d: DaemonProcess, jobIds: number[]): Promise<LogLine[]> {
  return Promise.all(jobIds.map((id) => d.waitForLog((l) => l.logEvent === 'record.delivered' && l.jobId === id, `delivered ${id}`)));
}

it('a daemon with the right SCRAM credentials delivers its records', async () => {
  const broker = suite.broker();
  await broker.createTopic('sasl-right');
  const d = await suite.daemon({ clusterName: 'sasl-right', rdkafka: saslConf(PASSWORD) });

  await postAll(d.url, numberedBodies(20, 30_000), 8);
  const messages = await consumeAll(broker.bootstrapServers, 'sasl-right', { count: 20, timeoutMs: CONSUME_TIMEOUT_MS }, broker.adminClientProperties);
  expect(sortedJobIds(messages)).toEqual(range(30_000, 20));

  await waitForDelivered(d, range(30_000, 20));
  const { result, report } = status(d);
  expect(report).toMatchObject({ backlog: 0, delivered: 20, producer: { state: 'ready' } });
  expect(d.logs.some(isAuthFailure)).toBe(false);
  expect(everythingShown(d, [result])).not.toContain(PASSWORD);
});

it('a wrong password: records are kept, the log says why, no password is shown; a SIGHUP with the right one delivers them all', async () => {
  const broker = suite.broker();
  const opts = { clusterName: 'sasl-fix', bootstrapServers: broker.bootstrapServers };
  await broker.createTopic('sasl-fix');
  const d = await suite.daemon({ ...opts, rdkafka: saslConf(WRONG_PASSWORD) });

  // Accepted (a 201 comes only after the commit) while Kafka refuses the client.
  await postAll(d.url, numberedBodies(20, 31_000), 8);

  // librdkafka reports the failure as a log line (severity 3, facility FAIL). While the
  // first connection has not succeeded node-rdkafka serves no error events (it only polls
  // a connected client), so this line is where the reason shows.
  const failure = await d.waitForLog(isAuthFailure, 'the SASL authentication failure');
  expect(failure).toMatchObject({ level: 'error', component: 'kafka', librdkafka: true, fac: 'FAIL' });
  expect(failure.msg).toContain(
    `sasl_plaintext://${broker.bootstrapServers}/bootstrap: SASL authentication error: ` +
      'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256',
  );

  // The end of the first connection attempt (5 s) sets producer.lastError; then ask status.
  // node-rdkafka's connect error says only "ERR__TRANSPORT: broker transport failure";
  // lastError adds librdkafka's error line, which names the authentication failure.
  const gaveUp = await d.waitForLog((l) => l.logEvent === 'kafka.unreachable', 'the failed connection attempt');
  const before = status(d);
  expect(before.report).toMatchObject({
    daemon: 'running',
    backlog: 20,
    delivered: 0,
    quarantined: 0,
    producer: { state: 'connecting', lastError: gaveUp.err, inFlight: 0 },
  });
  expect(String(gaveUp.err)).toMatch(/^ERR__TRANSPORT: .*\(librdkafka: .*SASL authentication error: Authentication failed during authentication due to invalid credentials/);

  d.rewriteConfig({ ...opts, rdkafka: saslConf(PASSWORD) });
  d.proc.kill('SIGHUP');
  await d.waitForLog((l) => l.logEvent === 'config.reloaded' && l.rdkafkaConfReloaded === true, 'the reload');
  // What arrives after the reload goes out as well.
  await postAll(d.url, numberedBodies(5, 31_020), 5);

  const messages = await consumeAll(broker.bootstrapServers, 'sasl-fix', { count: 25, timeoutMs: CONSUME_TIMEOUT_MS }, broker.adminClientProperties);
  expect(sortedJobIds(messages)).toEqual(range(31_000, 25));
  await waitForDelivered(d, range(31_000, 25));
  const after = status(d);
  expect(after.report).toMatchObject({ backlog: 0, delivered: 25, quarantined: 0, producer: { state: 'ready', inFlight: 0, retrying: 0 } });

  const shown = everythingShown(d, [before.result, after.result]);
  expect(shown).toContain('SASL authentication error'); // the logs really are in there
  expect(shown).not.toContain(WRONG_PASSWORD);
  expect(shown).not.toContain(PASSWORD);
});

it('after a broker restart (SCRAM users kept in its metadata log) the daemon authenticates again and delivers what waited', async () => {
  const broker = suite.broker();
  await broker.createTopic('sasl-restart');
  const d = await suite.daemon({ clusterName: 'sasl-restart', rdkafka: saslConf(PASSWORD) });
  await postAll(d.url, numberedBodies(5, 32_000), 5);
  await waitForDelivered(d, range(32_000, 5));

  await broker.stop();
  try {
    await postAll(d.url, numberedBodies(10, 32_005), 5);
  } finally {
    await broker.restart();
  }
  const messages = await consumeAll(broker.bootstrapServers, 'sasl-restart', { count: 15, timeoutMs: CONSUME_TIMEOUT_MS }, broker.adminClientProperties);
  expect(sortedJobIds(messages)).toEqual(range(32_000, 15));
  await waitForDelivered(d, range(32_005, 10));
  expect(d.logs.some(isAuthFailure)).toBe(false);
  expect(everythingShown(d, [])).not.toContain(PASSWORD);
});
