// `jobcompd replay` on saved state against a real broker: filters, dry runs, and migration of
// the state files Slurm's own plugins leave behind.

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consumeAll, countMessages } from '../../tools/kafka/consume';
import { encodeKafkaState } from '../../src/migrate/slurm-state';
import { JOBCOMPD, runCli, tempDir, writeFiles } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { postAll, type DaemonProcess } from '../helpers/daemon';
import { expectedPayload, jobIdOf, numberedBodies } from '../helpers/records';

jest.setTimeout(180_000);

const suite = useBroker({ autoCreateTopics: true });
const FIXTURES = join(__dirname, '../fixtures');

/** A stopped daemon whose state file holds `bodies`, undelivered. */
async function savedState(cluster: string, bodies: Buffer[]): Promise<DaemonProcess> {
  const d = await suite.daemon({ clusterName: cluster });
  await suite.broker().stop();
  try {
    await postAll(d.url, bodies, 1); // one at a time: rows in body order
    expect((await d.stop('SIGTERM')).code).toBe(0);
  } finally {
    await suite.broker().restart();
  }
  return d;
}

/** A stopped daemon with an empty state file: a configuration to replay with. */
async function stoppedDaemon(cluster: string): Promise<DaemonProcess> {
  const d = await suite.daemon({ clusterName: cluster });
  expect((await d.stop('SIGTERM')).code).toBe(0);
  return d;
}

function replay(d: DaemonProcess, ...args: string[]): ReturnType<typeof runCli> {
  return runCli(['replay', '-c', d.configFile, '--timeout', '60', ...args], { timeoutMs: 90_000 });
}

it('--dry-run prints the saved payloads, filtered, without sending or changing anything', async () => {
  const bodies = numberedBodies(6, 30_000);
  const d = await savedState('dry', bodies);
  const all = replay(d, '--dry-run');
  expect(all.code).toBe(0);
  expect(all.stdout).toBe(bodies.map((b) => `${expectedPayload(b).toString('utf8')}\n`).join(''));

  const one = replay(d, '--dry-run', '--json', '--job', '30002');
  const lines = one.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ from: 'outbox', jobId: 30002, event: 'job finish', topic: 'dry', payload: expectedPayload(bodies[2] as Buffer).toString('utf8') });

  expect(replay(d, '--dry-run', '--since', '2999-01-01T00:00:00').stdout).toBe('');
  expect(await countMessages(suite.broker().bootstrapServers, 'dry')).toBe(0);
  expect(JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout)).toMatchObject({ backlog: 6 });
});

it('filters send only the matching records; the others stay saved for a later replay', async () => {
  const d = await savedState('filtered', numberedBodies(5, 31_000));
  const some = replay(d, '--job', '31001,31003');
  expect(some.code).toBe(0);
  expect(some.stdout).toContain('replaying 2 saved record(s)');
  expect(some.stdout).toContain('delivered 2, quarantined 0, still saved 0');
  const sent = await consumeAll(suite.broker().bootstrapServers, 'filtered', { count: 2, timeoutMs: 30_000 });
  expect(sent.map((m) => jobIdOf(m.value as Buffer)).sort()).toEqual([31001, 31003]);
  expect(JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout)).toMatchObject({ backlog: 3 });

  const rest = replay(d, '--event', 'finish', '--until', String(Date.now() / 1000 + 60));
  expect(rest.stdout).toContain('delivered 3,');
  expect(await countMessages(suite.broker().bootstrapServers, 'filtered')).toBe(5);
});

it("--from-slurm-state imports Slurm 22.05's elasticsearch_state (mapped) and sends it; a second import adds nothing", async () => {
  const d = await stoppedDaemon('migrate-es');
  const file = join(FIXTURES, 'slurm-state/elasticsearch_state.2jobs.bin');
  const planned = replay(d, '--from-slurm-state', file, '--dry-run');
  expect(planned.code).toBe(0);
  const first = replay(d, '--from-slurm-state', file);
  expect(first.code).toBe(0);
  expect(first.stdout).toContain('imported elasticsearch_state.2jobs.bin (elasticsearch_state): 2 new, 0 already known, 0 quarantined');
  const records = await consumeAll(suite.broker().bootstrapServers, 'migrate-es', { count: 2, timeoutMs: 30_000 });
  // the dry run printed exactly what was then produced
  expect(records.map((m) => `${m.value?.toString('utf8') ?? ''}\n`).sort()).toEqual(planned.stdout.split(/(?<=\n)/).sort());
  const recs = records.map((m) => JSON.parse(m.value?.toString('utf8') ?? '{}') as { jobid: number });
  expect(recs.map((r) => r.jobid).sort()).toEqual([21, 22]);
  for (const r of recs) expect(r).toMatchObject({ container: null, failed_node: null }); // mapped to the 25.05 record

  const again = replay(d, '--from-slurm-state', file);
  expect(again.stdout).toContain('0 new, 2 already known');
  expect(await countMessages(suite.broker().bootstrapServers, 'migrate-es')).toBe(2);
});

it("--from-slurm-state sends jobcomp/kafka's saved messages as they are, start events to the start topic", async () => {
  const d = await stoppedDaemon('migrate-kafka');
  const finish = readFileSync(join(FIXTURES, 'kafka-25.05/job4242-finish.json'));
  const start = readFileSync(join(FIXTURES, 'kafka-25.05/job4242-start.json'));
  const file = join(tempDir(), 'jobcomp_kafka_state');
  writeFileSync(file, encodeKafkaState(0x2b00, [{ event: 1, jobId: 4242, payload: finish }, { event: 2, jobId: 4242, payload: start }]));
  const r = replay(d, '--from-slurm-state', file);
  expect(r.stdout).toContain('(jobcomp_kafka_state, Slurm 25.05): 2 new');
  const [end] = await consumeAll(suite.broker().bootstrapServers, 'migrate-kafka', { count: 1, timeoutMs: 30_000 });
  const [begin] = await consumeAll(suite.broker().bootstrapServers, 'migrate-kafka-job-start', { count: 1, timeoutMs: 30_000 });
  expect(end?.value?.equals(finish)).toBe(true);
  expect(begin?.value?.equals(start)).toBe(true);
});

it('a file that is no Slurm state file is refused with the reason and exit 65', async () => {
  const d = await stoppedDaemon('migrate-bad');
  const dir = tempDir();
  const { elasticsearch_state: file } = writeFiles(dir, { elasticsearch_state: 'not a state file' });
  const r = replay(d, '--from-slurm-state', file as string);
  expect(r.code).toBe(65);
  expect(r.stderr).toMatch(/jobcompd: .*elasticsearch_state/);
});

it('shows a progress bar on a terminal, plain lines on a pipe, and with --json one summary object', async () => {
  const d = await savedState('progress', numberedBodies(3, 32_000));
  const cmd = ['replay', '-c', d.configFile, '--timeout', '60'];
  await suite.broker().stop();
  let piped: ReturnType<typeof runCli>;
  try {
    piped = replay(d, '--timeout', '2.5'); // no broker: nothing goes out, a progress line every 2 s
  } finally {
    await suite.broker().restart();
  }
  expect(piped.code).toBe(75);
  expect(piped.stdout).toContain('\n  0/3 sent (0 delivered, 0 quarantined)\n');
  expect(piped.stdout).not.toMatch(/[\r[]/);

  const json = runCli([...cmd, '--json', '--job', '32000'], { timeoutMs: 90_000 });
  expect(json.code).toBe(0);
  expect(JSON.parse(json.stdout)).toEqual({
    stateFile: join(d.stateDir, 'jobcompd.sqlite'),
    imported: null,
    requeued: null,
    total: 1,
    delivered: 1,
    quarantined: 0,
    remaining: 0,
    outcome: 'drained',
  });

  // script(1) gives the replay a pseudo-terminal as stdout
  const tty = spawnSync('script', ['-qfec', [JOBCOMPD, ...cmd].join(' '), '/dev/null'], { encoding: 'utf8', timeout: 90_000, env: { ...process.env, JOBCOMPD_CONFIG: '' } });
  expect(tty.status).toBe(0);
  expect(tty.stdout).toContain(`\r  [${'#'.repeat(30)}] 2/2 sent (2 delivered, 0 quarantined)`);
  expect(await countMessages(suite.broker().bootstrapServers, 'progress')).toBe(3);
});
