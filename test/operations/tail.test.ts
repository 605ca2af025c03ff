// `jobcompd tail` against a real broker: the records jobcompd published come out byte for
// byte (JSON lines), filtered by event and job, as CSV in the plugin's column order, as a
// table; and a --group sink killed with SIGKILL resumes where it stopped, losing nothing
// (docs/operations.md "jobcompd tail").

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Producer } from 'node-rdkafka';
import { consumeAll } from '../../tools/kafka/consume';
import { dieWithParent } from '../../tools/harness-common';
import { JOBCOMPD, runCli, tempDir, writeFiles } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { postAll, startDaemon, type DaemonProcess } from '../helpers/daemon';
import { expectedPayload, jobIdOf, numberedBodies } from '../helpers/records';
import { parseElasticsearchBody } from '../../src/record/from-elasticsearch';
import { serialize } from '../../src/record/serialize';
import { JobEvent } from '../../src/record/job-record';
import { DEFAULT_PAYLOAD_OPTIONS } from '../../src/record/to-payload';
import { recordColumns } from '../../src/record/columns';
import { DEFAULT_RECORD_FORMAT } from '../../src/record/record-format';
import { BATCH_SIZE } from '../../src/tail/reader';

jest.setTimeout(180_000);

const suite = useBroker({ autoCreateTopics: false });
const CLUSTER = 'tl';
const FINISH = numberedBodies(30, 1000);
const START = numberedBodies(5, 1000);

let conf: string;
let daemon: DaemonProcess;

/** Lines of text, without the last (empty) one. */
function lines(text: string): string[] {
  return text.split('\n').filter((l, i, all) => i < all.length - 1 || l !== '');
}

function startPayload(body: Buffer): Buffer {
  return serialize({ ...parseElasticsearchBody(body), event: JobEvent.start }, DEFAULT_PAYLOAD_OPTIONS);
}

/** Publish start records as the daemon would (it receives them from the prolog hook). */
async function produceStartRecords(payloads: Buffer[]): Promise<void> {
  const producer = new Producer({ 'metadata.broker.list': suite.broker().bootstrapServers, dr_cb: true });
  await new Promise<void>((resolve, reject) => producer.connect({}, (err) => (err ? reject(err) : resolve())));
  producer.setPollInterval(50);
  let delivered = 0;
  const all = new Promise<void>((resolve) =>
    producer.on('delivery-report', () => {
      if (++delivered === payloads.length) resolve();
    }),
  );
  for (const p of payloads) producer.produce(`${CLUSTER}-job-start`, null, p);
  await all;
  await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
}

function tail(args: string[]): { code: number | null; stdout: string; stderr: string } {
  return runCli(['tail', ...args, '-c', conf], { timeoutMs: 60_000 });
}

beforeAll(async () => {
  // one daemon for the whole file (suite.daemon() ones are killed after each test)
  daemon = await startDaemon({ bootstrapServers: suite.broker().bootstrapServers, clusterName: CLUSTER, params: 'poll_interval=0.05,enable_job_start' });
  conf = join(daemon.dir, 'jobcompd.conf');
  expect(runCli(['topics', 'create', '--partitions', '2', '-c', conf]).code).toBe(0);
  await postAll(daemon.url, FINISH, 4);
  await produceStartRecords(START.map(startPayload));
  await consumeAll(suite.broker().bootstrapServers, CLUSTER, { count: FINISH.length, timeoutMs: 60_000 });
});

afterAll(async () => {
  await daemon?.stop('SIGKILL');
});

const sorted = (xs: string[]): string[] => [...xs].sort();

test('--from-beginning without --follow prints every record there is, byte for byte, and exits', () => {
  const r = tail(['--from-beginning', '--format', 'json']);
  expect(r.code).toBe(0);
  const want = [...FINISH.map(expectedPayload), ...START.map(startPayload)].map((b) => b.toString('latin1'));
  expect(sorted(lines(Buffer.from(r.stdout, 'utf8').toString('latin1')))).toEqual(sorted(want));
});

test('--event and --job select records', () => {
  const starts = tail(['--from-beginning', '--format', 'json', '--event', 'start']);
  expect(sorted(lines(starts.stdout))).toEqual(sorted(START.map((b) => startPayload(b).toString('utf8'))));
  const two = tail(['--from-beginning', '--format', 'json', '--event', 'end', '--job', '1003,1017']);
  expect(sorted(lines(two.stdout))).toEqual(sorted([FINISH[3], FINISH[17]].map((b) => expectedPayload(b as Buffer).toString('utf8'))));
});

/** RFC 4180 rows (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (quoted) {
      if (c === '"' && text.charAt(i + 1) === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\r' && text.charAt(i + 1) === '\n') row.push(field), rows.push(row), (row = []), (field = ''), i++;
    else field += c;
  }
  return rows;
}

test('--format csv: the columns in the plugin order, one row per record with its values', () => {
  const r = tail(['--from-beginning', '--format', 'csv', '--event', 'end']);
  expect(r.code).toBe(0);
  const [header, ...rows] = parseCsv(r.stdout);
  const columns = recordColumns(DEFAULT_RECORD_FORMAT.layout);
  expect(header).toEqual(columns);
  expect(rows).toHaveLength(FINISH.length);
  const want = new Map(FINISH.map((b) => [jobIdOf(expectedPayload(b)), JSON.parse(expectedPayload(b).toString('utf8')) as Record<string, unknown>]));
  for (const row of rows) {
    const record = want.get(Number(row[0]));
    expect(record).toBeDefined();
    const asText = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
    expect(row).toEqual(columns.map((c) => asText(record?.[c])));
  }
});

test('--format table: a header and one row per record', () => {
  const r = tail(['--from-beginning', '--format', 'table', '--job', '1001']);
  expect(r.code).toBe(0);
  const [header, ...rows] = lines(r.stdout);
  expect(header?.split(/\s+/).slice(0, 3)).toEqual(['TIME', 'EVENT', 'JOBID']);
  expect(rows.map((l) => l.split(/\s+/).slice(1, 3)).sort()).toEqual([
    ['end', '1001'],
    ['start', '1001'],
  ]);
});

test('--since prints only what was published from then on', async () => {
  const since = Date.now();
  const later = numberedBodies(7, 3000);
  await postAll(daemon.url, later, 4);
  await consumeAll(suite.broker().bootstrapServers, CLUSTER, { count: FINISH.length + later.length, timeoutMs: 60_000 });
  const r = tail(['--since', String(since / 1000), '--format', 'json']);
  expect(r.code).toBe(0);
  expect(sorted(lines(r.stdout))).toEqual(sorted(later.map((b) => expectedPayload(b).toString('utf8'))));
});

/** A `tail --group` sink appending to `file`. */
function startSink(file: string, extra: string[]): ChildProcess {
  const fd = openSync(file, 'a');
  const [command, ...args] = dieWithParent([JOBCOMPD, 'tail', '--group', 'sink', '--follow', '--format', 'json', ...extra, '-c', conf]);
  const child = spawn(command as string, args, { env: { ...process.env, JOBCOMPD_CONFIG: '' }, stdio: ['ignore', fd, 'inherit'] });
  closeSync(fd);
  return child;
}

async function waitForLines(file: string, atLeast: number, timeoutMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = lines(readFileSync(file, 'utf8'));
    if (got.length >= atLeast) return got;
    if (Date.now() > deadline) throw new Error(`only ${got.length} of ${atLeast} lines in ${file}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('a --group sink killed with SIGKILL resumes where it stopped: nothing lost, at most one batch twice', async () => {
  const file = join(tempDir(), 'sink.jsonl');
  writeFiles(join(file, '..'), { 'sink.jsonl': '' });
  const before = lines(tail(['--from-beginning', '--format', 'json']).stdout);

  const first = startSink(file, ['--from-beginning']);
  await waitForLines(file, before.length);
  const burst = numberedBodies(1500, 5000);
  const posting = postAll(daemon.url, burst.slice(0, 750), 8);
  // kill while the first half is flowing
  await waitForLines(file, before.length + 200);
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));
  await posting;
  // the second half is published while no sink runs
  await postAll(daemon.url, burst.slice(750), 8);

  // no --from-beginning: only the group's committed offsets can make it start where it was
  const second = startSink(file, []);
  const want = new Set([...before, ...burst.map((b) => expectedPayload(b).toString('utf8'))]);
  const deadline = Date.now() + 90_000;
  const allThere = (): boolean => {
    const got = new Set(lines(readFileSync(file, 'utf8')));
    return [...want].every((w) => got.has(w));
  };
  while (!allThere() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  second.kill('SIGTERM');
  const code = await new Promise((resolve) => second.once('exit', (c) => resolve(c)));
  expect(code).toBe(0);
  const got = lines(readFileSync(file, 'utf8'));
  expect(new Set(got)).toEqual(want);
  expect(got.length - want.size).toBeLessThanOrEqual(BATCH_SIZE);
});
