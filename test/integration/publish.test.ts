// End to end against a real Kafka broker: HTTP in (as jobcomp/elasticsearch sends),
// SQLite in between, Kafka out. No mocks.

import type { KafkaBroker } from '../../tools/kafka/broker';
import { useBroker } from '../helpers/broker-suite';
import { consumeAll, countMessages } from '../../tools/kafka/consume';
import { runCli, runCliBytes } from '../helpers/cli';
import { post, postAll, type DaemonProcess } from '../helpers/daemon';
import { capturedBodies, expectedPayload, jobIdOf, numberedBodies } from '../helpers/records';

jest.setTimeout(240_000);

const suite = useBroker({ autoCreateTopics: true });
const daemon = suite.daemon;
let broker: KafkaBroker;
beforeAll(() => {
  broker = suite.broker();
});

describe('publishing', () => {
  it('publishes the captured 22.05 bodies exactly as `jobcompd convert` prints them, without key or headers', async () => {
    const d = await daemon({ clusterName: 'captured' });
    const bodies = capturedBodies();
    for (const body of bodies) {
      const r = await post(d.url, body);
      expect(r.status).toBe(201);
      expect(JSON.parse(r.body)).toMatchObject({ result: 'created', _index: 'slurm' });
    }
    const messages = await consumeAll(broker.bootstrapServers, 'captured', { count: bodies.length, timeoutMs: 60_000 });
    const byJob = new Map(messages.map((m) => [jobIdOf(m.value as Buffer), m]));
    for (const body of bodies) {
      const converted = runCliBytes(['convert', '--from', 'elasticsearch'], body);
      expect(converted.code).toBe(0);
      const m = byJob.get(jobIdOf(converted.stdout));
      expect(m?.value?.equals(converted.stdout)).toBe(true);
      expect(m?.key).toBeNull();
      expect(m?.headers ?? []).toEqual([]);
    }
  });

  it('10,000 records POSTed concurrently: every one in Kafka exactly once, bytes as convert makes them', async () => {
    const d = await daemon({ clusterName: 'tenk' });
    const bodies = numberedBodies(10_000, 100_000);
    await postAll(d.url, bodies, 64);
    const messages = await consumeAll(broker.bootstrapServers, 'tenk', { count: bodies.length, timeoutMs: 120_000 });
    const expected = new Map(bodies.map((b) => [jobIdOf(b), expectedPayload(b)]));
    const seen = new Set<number>();
    for (const m of messages) {
      const value = m.value as Buffer;
      const id = jobIdOf(value);
      expect(seen.has(id)).toBe(false);
      seen.add(id);
      expect(value.equals(expected.get(id) as Buffer)).toBe(true);
    }
    expect(seen.size).toBe(10_000);
    // the expected bytes are convert's: checked for one body of each captured kind
    for (const body of bodies.slice(0, capturedBodies().length)) {
      expect(runCliBytes(['convert', '--from', 'elasticsearch'], body).stdout.equals(expectedPayload(body))).toBe(true);
    }
    expect(await countMessages(broker.bootstrapServers, 'tenk')).toBe(10_000);
    expect((await d.stop('SIGTERM')).code).toBe(0);
    const status = JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout) as Record<string, unknown>;
    expect(status).toMatchObject({ backlog: 0, delivered: 10_000, quarantined: 0 });
  });
});

describe('broker outages', () => {
  it('accepts 1,000 records while the broker is down and delivers them all once it is back', async () => {
    const d = await daemon({ clusterName: 'outage' });
    await broker.stop();
    try {
      await postAll(d.url, numberedBodies(1000, 200_000), 32);
    } finally {
      await broker.restart();
    }
    const messages = await consumeAll(broker.bootstrapServers, 'outage', { count: 1000, timeoutMs: 120_000 });
    expect(new Set(messages.map((m) => jobIdOf(m.value as Buffer))).size).toBe(1000);
  });

  it('starts and accepts records while no broker is reachable, and delivers them when one appears', async () => {
    await broker.stop();
    let d: DaemonProcess;
    try {
      d = await daemon({ clusterName: 'coldstart' });
      await postAll(d.url, numberedBodies(50, 300_000), 8);
      await d.waitForLog((l) => l.logEvent === 'kafka.unreachable', 'connect retry');
    } finally {
      await broker.restart();
    }
    const messages = await consumeAll(broker.bootstrapServers, 'coldstart', { count: 50, timeoutMs: 120_000 });
    expect(messages).toHaveLength(50);
  });
});

describe('stopping and replaying', () => {
  it('SIGTERM keeps undelivered records in the state file; the next start delivers them', async () => {
    const first = await daemon({ clusterName: 'sigterm' });
    await broker.stop();
    let stopped;
    const postedAt = Date.now();
    try {
      await postAll(first.url, numberedBodies(200, 400_000), 16);
      stopped = await first.stop('SIGTERM');
    } finally {
      await broker.restart();
    }
    expect(stopped.code).toBe(0);
    expect(first.logs.some((l) => l.logEvent === 'daemon.stopped')).toBe(true);
    const saved = JSON.parse(runCli(['status', '--json', '-c', first.configFile]).stdout) as { backlog: number; daemon: string; oldestPendingAgeSeconds: number | null };
    expect(saved).toMatchObject({ backlog: 200, daemon: 'not running', oldestPendingAgeSeconds: expect.any(Number) });
    expect(saved.oldestPendingAgeSeconds).toBeLessThanOrEqual(Math.ceil((Date.now() - postedAt) / 1000));

    const second = await daemon({ clusterName: 'sigterm', dir: first.dir, port: first.port, adminPort: first.adminPort });
    const messages = await consumeAll(broker.bootstrapServers, 'sigterm', { count: 200, timeoutMs: 120_000 });
    expect(new Set(messages.map((m) => jobIdOf(m.value as Buffer))).size).toBe(200);
    await second.waitForLog(() => second.logs.filter((l) => l.logEvent === 'record.delivered').length === 200, 'all deliveries committed');
    await second.stop('SIGTERM');
    expect(JSON.parse(runCli(['status', '--json', '-c', first.configFile]).stdout)).toMatchObject({ backlog: 0, oldestPendingAgeSeconds: null });
  });

  it('`jobcompd replay` drains a saved state file and exits 0; it refuses while a daemon holds the file', async () => {
    const first = await daemon({ clusterName: 'replay' });
    await broker.stop(); // until the daemon is gone, so that the records stay saved
    await postAll(first.url, numberedBodies(100, 500_000), 16);
    const refused = runCli(['replay', '-c', first.configFile]);
    expect(refused.code).toBe(75);
    expect(refused.stderr).toContain('is in use by another jobcompd process');
    expect((await first.stop('SIGINT')).code).toBe(0); // Ctrl-C stops as SIGTERM does
    await broker.restart();

    const r = runCli(['replay', '-c', first.configFile, '--timeout', '120'], { timeoutMs: 150_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('replaying 100 saved record(s)');
    expect(r.stdout).toContain('delivered 100, quarantined 0, still saved 0');
    const messages = await consumeAll(broker.bootstrapServers, 'replay', { count: 100, timeoutMs: 60_000 });
    expect(new Set(messages.map((m) => jobIdOf(m.value as Buffer))).size).toBe(100);
  });
});

describe('records Kafka refuses for good', () => {
  it('a record larger than message.max.bytes goes to quarantine, visible in status; others flow on', async () => {
    const d = await daemon({ clusterName: 'toolarge', params: 'send_script,poll_interval=0.05' });
    const [template] = capturedBodies();
    const huge = Buffer.from(
      (template as Buffer).toString('latin1').replace(/"script":"[^"]*"/, `"script":"${'x'.repeat(1_500_000)}"`),
      'latin1',
    );
    expect((await post(d.url, huge)).status).toBe(201);
    await d.waitForLog((l) => l.logEvent === 'record.refused', 'quarantine');
    const quarantineLine = d.logs.find((l) => l.logEvent === 'record.refused');
    expect(quarantineLine).toMatchObject({ jobId: jobIdOf(template as Buffer), event: 'job finish' });
    expect(String(quarantineLine?.err)).toContain('ERR_MSG_SIZE_TOO_LARGE');

    await postAll(d.url, numberedBodies(5, 600_000), 1);
    expect(await consumeAll(broker.bootstrapServers, 'toolarge', { count: 5, timeoutMs: 60_000 })).toHaveLength(5);

    const running = JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout) as Record<string, unknown>;
    expect(running).toMatchObject({ daemon: 'running', quarantined: 1 });
    await d.stop();
    const text = runCli(['status', '-c', d.configFile]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/quarantined:\s+1/);
    expect(text.stdout).toMatch(/daemon:\s+not running/);
  });
});
