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
import { plotDashboard, type DashboardPanel } from './plot-dashboard';

jest.setTimeout(180_000);

const DASHBOARD = join(PROJECT_ROOT, 'config/grafana/jobcompd-dashboard.json');
const RULES = join(PROJECT_ROOT, 'config/prometheus/jobcompd-alerts.yml');

type Panel = DashboardPanel;

/** A panel's expression as Grafana sends it: the dashboard's variables filled in. */
function asGrafanaSends(expr: string): string {
  return expr.replaceAll('$__rate_interval', '30s').replaceAll('$instance', '.*');
}

// Declared before useBroker(): afterAll hooks run in the order they are declared, and the
// picture needs the broker, which useBroker's own afterAll destroys.
afterAll(async () => {
  const picture = process.env.DASHBOARD_PNG;
  if (picture !== undefined && picture !== '' && prom !== undefined) await drawPicture(prom, picture);
});

const suite = useBroker({ autoCreateTopics: true });
let d: DaemonProcess;
let prom: PrometheusServer | undefined;
let startedAt = 0;
let jobId = 1_000_000;

beforeAll(async () => {
  // one daemon for the whole file (suite.daemon() ones are killed after each test)
  d = await startDaemon({ bootstrapServers: suite.broker().bootstrapServers, clusterName: 'dash', rdkafka: 'statistics.interval.ms=500\n' });
  prom = await PrometheusServer.start([`127.0.0.1:${d.adminPort}`], [RULES]);
  startedAt = Date.now() / 1000;
  // records flow between Prometheus's scrapes until it holds enough of them for 30 s rate windows
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
  type AlertRule = { name: string; query: string; health: string; state: string };
  const alertRules = async (): Promise<AlertRule[]> => (await prom!.get<{ groups: { rules: AlertRule[] }[] }>('/api/v1/rules')).groups.flatMap((g) => g.rules);
  const rules = await alertRules();
  expect(rules.map((r) => [r.name, r.health])).toEqual(rules.map((r) => [r.name, 'ok']));
  expect(rules).toHaveLength(6);
  const metrics = new Set(rules.flatMap((r) => r.query.match(/\b(jobcompd_[a-z_]+|up)\b/g) ?? []));
  const missing: string[] = [];
  for (const m of metrics) if ((await prom!.query(m)).length === 0) missing.push(m);
  expect(missing).toEqual([]);
  // The burst of beforeAll leaves records waiting up to poll_interval for the delivery report
  // that deletes them, which can hold the backlog over JobcompdBacklogGrowing's threshold for
  // a few evaluations: 'pending' (its `for` is 15 m), never firing. Once the burst is
  // delivered, every rule of a healthy daemon is inactive.
  let active: string[] = [];
  await waitUntil(
    async () => {
      active = (await alertRules()).filter((r) => r.state !== 'inactive').map((r) => r.name);
      return active.length === 0;
    },
    30_000,
    'every alert rule inactive',
    500,
  ).catch(() => undefined);
  expect(active).toEqual([]);
});

/** Until Prometheus's latest scrape satisfies `expr` (an instant query that returns a sample), calling `meanwhile`. */
async function promSees(p: PrometheusServer, expr: string, what: string, meanwhile: () => Promise<void>): Promise<void> {
  await waitUntil(
    async () => {
      await meanwhile();
      return (await p.query(expr)).length > 0;
    },
    120_000,
    what,
    0,
  );
}

/**
 * DASHBOARD_PNG=docs/dashboard.png (docs/operations.md "Alerts and a dashboard"): after the
 * tests, a broker outage under load (backlog and oldest record rise, the connection panel
 * drops), the drain after the restart, 20 s more of load, then every panel plotted over the
 * whole run. A picture, not a test: its waits only pace the scenario.
 */
async function drawPicture(p: PrometheusServer, out: string): Promise<void> {
  const post = async (): Promise<void> => {
    await postAll(d.url, numberedBodies(20, jobId), 4);
    jobId += 20;
  };
  const idle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 250));
  await suite.broker().stop();
  await promSees(p, 'jobcompd_backlog_records > 300', 'a backlog during the outage', post);
  await suite.broker().restart();
  await promSees(p, 'jobcompd_backlog_records == 0', 'the backlog drained', idle);
  const loadUntil = Date.now() + 20_000;
  await promSees(p, `vector(time()) > ${loadUntil / 1000}`, '20 s of load after the drain', post);
  await plotDashboard(p, panels, asGrafanaSends, { start: startedAt, end: Date.now() / 1000 }, out);
}
