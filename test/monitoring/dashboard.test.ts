// The shipped Grafana dashboard and alert rules against a real Prometheus (Debian's
// package) scraping a real jobcompd that is publishing to a real broker: every panel's
// query returns data, and every metric the alert rules read exists. Grafana itself is not
// installable here; its only part these panels depend on is Prometheus's query API.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { postAll, startDaemon, type DaemonProcess } from '../helpers/daemon';
import { PrometheusServer } from '../helpers/prometheus';
import { numberedBodies } from '../helpers/records';
import { waitUntil } from '../hostile/fuzz-kit';

jest.setTimeout(180_000);

const DASHBOARD = join(PROJECT_ROOT, 'config/grafana/jobcompd-dashboard.json');
const RULES = join(PROJECT_ROOT, 'config/prometheus/jobcompd-alerts.yml');

interface Panel {
  title: string;
  targets: { expr: string; refId: string }[];
}

/** A panel's expression as Grafana sends it: the dashboard's variables filled in. */
function asGrafanaSends(expr: string): string {
  return expr.replaceAll('$__rate_interval', '30s').replaceAll('$instance', '.*');
}

const suite = useBroker({ autoCreateTopics: true });
let d: DaemonProcess;
let prom: PrometheusServer | undefined;

beforeAll(async () => {
  // one daemon for the whole file (suite.daemon() ones are killed after each test)
  d = await startDaemon({ bootstrapServers: suite.broker().bootstrapServers, clusterName: 'dash', rdkafka: 'statistics.interval.ms=500\n' });
  prom = await PrometheusServer.start([`127.0.0.1:${d.adminPort}`], [RULES]);
  // records flow between Prometheus's scrapes until it holds enough of them for 30 s rate windows
  let jobId = 1_000_000;
  await waitUntil(
    async () => {
      await postAll(d.url, numberedBodies(50, jobId), 4);
      jobId += 50;
      return (await prom!.query('count_over_time(jobcompd_records_delivered_total[30s]) >= 10')).length > 0;
    },
    90_000,
    '10 scrapes of a daemon under load',
    0,
  );
});

afterAll(async () => {
  await prom?.stop();
  await d?.stop();
});

const panels = (JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] }).panels;

test.each(panels.flatMap((p) => p.targets.map((t) => [`${p.title} (${t.refId})`, t.expr] as const)))('panel %s returns data', async (_name, expr) => {
  const samples = await prom!.query(asGrafanaSends(expr));
  expect(samples.length).toBeGreaterThan(0);
  for (const s of samples) expect(Number.isFinite(Number(s.value[1]))).toBe(true);
});

test('the alert rules load, read metrics jobcompd exports, and none fires on a healthy daemon', async () => {
  const { groups } = await prom!.get<{ groups: { rules: { name: string; query: string; health: string; state: string }[] }[] }>('/api/v1/rules');
  const rules = groups.flatMap((g) => g.rules);
  expect(rules.map((r) => [r.name, r.health])).toEqual(rules.map((r) => [r.name, 'ok']));
  expect(rules).toHaveLength(6);
  const metrics = new Set(rules.flatMap((r) => r.query.match(/\b(jobcompd_[a-z_]+|up)\b/g) ?? []));
  const missing: string[] = [];
  for (const m of metrics) if ((await prom!.query(m)).length === 0) missing.push(m);
  expect(missing).toEqual([]);
  expect(rules.filter((r) => r.state !== 'inactive').map((r) => r.name)).toEqual([]);
});
