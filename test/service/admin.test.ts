// What an operator sees: /metrics, /healthz, /status and `jobcompd status` on a running
// daemon and a real broker, and secrets that never show anywhere.

import { request } from 'node:http';
import { consumeAll } from '../../tools/kafka/consume';
import { runCli, tempDir, writeFiles } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { join } from 'node:path';
import { post, postAll, startDaemon, type DaemonProcess } from '../helpers/daemon';
import { installHook, runHook } from '../helpers/hook';
import { capturedBodies, numberedBodies } from '../helpers/records';

jest.setTimeout(120_000);

const suite = useBroker({ autoCreateTopics: true });
// one value per secret property, so that each is shown to be hidden
const SECRETS: Record<string, string> = {
  'sasl.password': 'hunter2-do-not-print',
  'ssl.key.password': 'keypass-do-not-print',
};
// node-rdkafka's librdkafka is built without OIDC: it refuses this property, so the daemon
// cannot run with it; the refusal must not show the value either.
const JAAS_SECRET = 'PlainLoginModule required username=ops password=jaas-secret-do-not-print';

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

/** The value of one sample line of the Prometheus text format. */
function sample(metrics: string, line: string): number | undefined {
  const m = metrics.split('\n').find((l) => l.startsWith(`${line} `));
  return m === undefined ? undefined : Number(m.slice(line.length + 1));
}

/** Each named sample has the value given (one assertion, so a failure shows them all). */
function expectSamples(metrics: string, want: Record<string, number>): void {
  expect(Object.fromEntries(Object.keys(want).map((line) => [line, sample(metrics, line)]))).toEqual(want);
}

let d: DaemonProcess;

beforeAll(async () => {
  // one daemon for the whole file (suite.daemon() ones are killed after each test)
  d = await startDaemon({
    bootstrapServers: suite.broker().bootstrapServers,
    clusterName: 'ops',
    // statistics every 200 ms for broker state; debug=all makes librdkafka log everything it can
    rdkafka: `statistics.interval.ms=200\ndebug=all\nsasl.username=slurm\n${Object.entries(SECRETS).map(([k, v]) => `${k}=${v}\n`).join('')}`,
  });
  await postAll(d.url, numberedBodies(20, 20_000), 4);
  await consumeAll(suite.broker().bootstrapServers, 'ops', { count: 20, timeoutMs: 30_000 });
  await d.waitForLog(() => d.logs.filter((l) => l.logEvent === 'record.delivered').length === 20, '20 delivery reports');
});

afterAll(async () => {
  await d.stop('SIGKILL');
});

it('/metrics counts what came in and went out, with latency histograms and broker state', async () => {
  const res = await get(`${d.adminUrl}/metrics`);
  expect(res.status).toBe(200);
  const m = res.body;
  expectSamples(m, {
    'jobcompd_records_received_total{source="http"}': 20,
    'jobcompd_records_accepted_total{source="http",outcome="stored"}': 20,
    'jobcompd_records_delivered_total': 20,
    'jobcompd_backlog_records': 0,
    'jobcompd_records_quarantined_total': 0,
    'jobcompd_commit_latency_seconds_count': 20,
    'jobcompd_delivery_latency_seconds_count': 20,
    'jobcompd_producer_ready': 1,
  });
  expect(m).toMatch(/^jobcompd_kafka_broker_up\{broker="127\.0\.0\.1:\d+\/1"\} 1$/m);
  expect(m).toContain('jobcompd_process_resident_memory_bytes');
});

it('/healthz is ok while records flow, and `jobcompd status` asks the running daemon', async () => {
  expect(JSON.parse((await get(`${d.adminUrl}/healthz`)).body)).toEqual({ status: 'ok' });
  const status = JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout) as Record<string, unknown>;
  expect(status).toMatchObject({ daemon: 'running', backlog: 0, delivered: 20, quarantined: 0, producer: { state: 'ready', topics: { finish: 'ops' } } });
  expect((status.producer as { brokers: { state: string }[] }).brokers[0]?.state).toBe('UP');
  const text = runCli(['status', '-c', d.configFile]).stdout;
  expect(text).toMatch(/brokers:\s+127\.0\.0\.1:\d+\/1 UP/);
});

it('never shows a secret: logs (librdkafka debug=all included), status, metrics, check-config', async () => {
  const outputs = [
    JSON.stringify(d.logs),
    d.stderr,
    runCli(['status', '--json', '-c', d.configFile]).stdout,
    (await get(`${d.adminUrl}/metrics`)).body,
    (await get(`${d.adminUrl}/status`)).body,
    runCli(['check-config', '-c', d.configFile]).stdout,
    runCli(['check-config', '--json', '-c', d.configFile]).stdout,
  ];
  expect(d.logs.filter((l) => l.librdkafka === true).length).toBeGreaterThan(50); // debug=all was really on
  for (const out of outputs) for (const secret of Object.values(SECRETS)) expect(out).not.toContain(secret);
  const shown = runCli(['check-config', '-c', d.configFile]).stdout;
  for (const key of Object.keys(SECRETS)) expect(shown).toContain(`${key}=[REDACTED]`);
});

it('never shows a secret librdkafka refuses (a Java client\'s sasl.jaas.config copied into rdkafka.conf)', () => {
  // Refused by every librdkafka build, whatever optional features (OIDC, Cyrus SASL) it was built with.
  const dir = tempDir();
  writeFiles(dir, {
    'rdkafka.conf': `bootstrap.servers=127.0.0.1:1\nsasl.jaas.config=${JAAS_SECRET}\n`,
    'jobcompd.conf': 'ClusterName=jaas\nStateDir=state\nJobCompLoc=rdkafka.conf\n[admin]\nListen=off\n',
  });
  for (const args of [['check-config'], ['check-config', '--json'], ['run']]) {
    const r = runCli([...args, '-c', `${dir}/jobcompd.conf`]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('sasl.jaas.config: librdkafka refused the value "[REDACTED]"');
    expect(r.stdout + r.stderr).not.toContain(JAAS_SECRET);
  }
});

it('check-config --connect reaches the brokers and looks for the topics', () => {
  const r = runCli(['check-config', '--connect', '-c', d.configFile]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/Kafka:\s+reachable; brokers 127\.0\.0\.1:\d+ \(id 1\)/);
  expect(r.stdout).toContain('topic ops: exists, 1 partition(s)');
});

it('check-config --connect says so, with exit 69, when no broker answers', () => {
  const dir = tempDir();
  writeFiles(dir, { 'rdkafka.conf': 'bootstrap.servers=127.0.0.1:1\n', 'jobcompd.conf': 'ClusterName=nowhere\nJobCompLoc=rdkafka.conf\n' });
  const r = runCli(['check-config', '--connect', '-c', `${dir}/jobcompd.conf`]);
  expect(r.code).toBe(69);
  expect(r.stdout).toMatch(/Kafka:\s+UNREACHABLE: cannot read metadata from 127\.0\.0\.1:1/);
});

it('/metrics counts every source, duplicates, retries and both kinds of quarantine; /healthz is degraded while Kafka cannot be reached', async () => {
  const broker = suite.broker();
  const metrics = async (e: DaemonProcess): Promise<string> => (await get(`${e.adminUrl}/metrics`)).body;
  const scriptEnv = (jobId: number): Map<string, string> =>
    new Map(Object.entries({ JOBID: String(jobId), UID: '0', GID: '0', PROCS: '1', NODECNT: '1', EXITCODE: '0:0', DERIVED_EC: '0:0', JOBSTATE: 'COMPLETED', START: '1795319410', END: '1795319411' }));
  const [template] = capturedBodies();
  const huge = Buffer.from((template as Buffer).toString('latin1').replace(/"script":"[^"]*"/, `"script":"${'x'.repeat(1_500_000)}"`), 'latin1');
  const [body, retried] = numberedBodies(2, 21_000) as [Buffer, Buffer];

  // Kafka down from the start: accepted and counted, nothing delivered
  await broker.stop();
  let e: DaemonProcess;
  try {
    e = await suite.daemon({ clusterName: 'opscount', params: 'send_script,poll_interval=0.05', rdkafka: 'message.timeout.ms=1000\n' });
    expect(await get(`${e.adminUrl}/healthz`)).toEqual({ status: 200, body: JSON.stringify({ status: 'degraded', reason: 'not connected to Kafka; records are kept' }) });
    expect((await post(e.url, body)).status).toBe(201);
    expect(JSON.parse((await post(e.url, body)).body)).toMatchObject({ result: 'duplicate' });
    expect(JSON.parse((await post(e.url, Buffer.from('{"jobid":'))).body)).toMatchObject({ result: 'quarantined' });
    expect((await post(e.url, huge)).status).toBe(201);
    expect((await runHook(installHook(e.dir, 'socket-hook', { socket: e.hookSocket, spool: e.spoolDir }), scriptEnv(21_100))).code).toBe(0);
    expect((await runHook(installHook(e.dir, 'spool-hook', { socket: join(e.dir, 'nobody-listens.sock'), spool: e.spoolDir }), scriptEnv(21_101))).code).toBe(0);
    await e.waitForLog((l) => l.logEvent === 'record.committed' && l.source === 'spool', 'the spooled record imported');
    const m = await metrics(e);
    expectSamples(m, {
      'jobcompd_records_received_total{source="http"}': 4,
      'jobcompd_records_received_total{source="socket"}': 1,
      'jobcompd_records_received_total{source="spool"}': 1,
      'jobcompd_records_accepted_total{source="http",outcome="duplicate"}': 1,
      'jobcompd_records_accepted_total{source="http",outcome="quarantined"}': 1,
      'jobcompd_records_deduplicated_total': 1,
      'jobcompd_quarantine_records': 1,
      'jobcompd_backlog_records': 4,
    });
    expect(sample(m, 'jobcompd_oldest_pending_age_seconds')).toBeGreaterThan(0);
    expect(sample(m, 'jobcompd_producer_ready')).toBe(0);
  } finally {
    await broker.restart();
  }

  // Kafka back: delivered, the too large one refused for good
  await e.waitForLog((l) => l.logEvent === 'record.refused', 'the too large record quarantined');
  await e.waitForLog(() => e.logs.filter((l) => l.logEvent === 'record.delivered').length === 3, '3 delivered');
  let m = await metrics(e);
  expectSamples(m, {
    'jobcompd_records_delivered_total': 3,
    'jobcompd_records_quarantined_total': 1,
    'jobcompd_quarantine_records': 2,
  });
  expect(JSON.parse((await get(`${e.adminUrl}/healthz`)).body)).toEqual({ status: 'ok' });

  // Kafka goes away while connected: attempts time out and are retried
  await broker.stop();
  try {
    expect((await post(e.url, retried)).status).toBe(201);
    await e.waitForLog((l) => l.logEvent === 'delivery.failed' && l.jobId === 21_001, 'a failed attempt');
    m = await metrics(e);
    expect(sample(m, 'jobcompd_delivery_retries_total')).toBeGreaterThanOrEqual(1);
    expect(sample(m, 'jobcompd_backlog_records')).toBe(1);
  } finally {
    await broker.restart();
  }
  await e.waitForLog((l) => l.logEvent === 'record.delivered' && l.jobId === 21_001, 'the retried record delivered');
});
