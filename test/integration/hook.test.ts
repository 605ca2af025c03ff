// The native hook against the real daemon and a real Kafka broker: committed before it
// exits, spooled when jobcompd is down or hung, imported from the spool later, published
// once even when it arrives twice.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { consumeAll, countMessages } from '../../tools/kafka/consume';
import { runCli, runCliBytes, tempDir } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { capture, installHook, runHook, withJobId } from '../helpers/hook';
import { jobIdOf } from '../helpers/records';
import { post } from '../helpers/daemon';

jest.setTimeout(120_000);

const suite = useBroker({ autoCreateTopics: true });
function spoolFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jch')) : [];
}

it('jobcomp/script: the record is committed before the hook exits 0, and published as convert maps it', async () => {
  const d = await suite.daemon({ clusterName: 'hookend' });
  const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir });
  const env = withJobId(capture('jobcomp.1.'), 'JOBID', 1001);
  const run = await runHook(hook, env);
  expect(run).toMatchObject({ code: 0, stderr: '' });
  expect(spoolFiles(d.spoolDir)).toEqual([]);
  await d.waitForLog((l) => l.logEvent === 'record.committed' && l.jobId === 1001 && l.source === 'socket', 'commit');

  const [message] = await consumeAll(suite.broker().bootstrapServers, 'hookend', { count: 1, timeoutMs: 30_000 });
  const dump = Buffer.from([...env].map(([k, v]) => `${k}=${v}\n`).join(''), 'latin1');
  expect(message?.value?.equals(runCliBytes(['convert', '--from', 'script'], dump).stdout)).toBe(true);
});

it('PrologSlurmctld: a start record in <ClusterName>-job-start with @start = when the hook ran', async () => {
  const d = await suite.daemon({ clusterName: 'hookstart', params: 'enable_job_start,poll_interval=0.05' });
  const hook = installHook(d.dir, 'prolog-hook', { socket: d.hookSocket, spool: d.spoolDir });
  const before = Math.floor(Date.now() / 1000);
  expect((await runHook(hook, withJobId(capture('prolog_ctld.1.'), 'SLURM_JOB_ID', 2001))).code).toBe(0);
  const [message] = await consumeAll(suite.broker().bootstrapServers, 'hookstart-job-start', { count: 1, timeoutMs: 30_000 });
  const record = JSON.parse(message?.value?.toString('utf8') ?? '{}') as Record<string, unknown>;
  expect(record).toMatchObject({ jobid: 2001, state: null, partition: 'debug', nodes: 'localhost', total_cpus: 1 });
  const start = Date.parse(`${String(record['@start'])}Z`) / 1000;
  expect(start).toBeGreaterThanOrEqual(before);
  expect(start).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
});

it('start records are not stored without enable_job_start; epilog environments never are', async () => {
  const d = await suite.daemon({ clusterName: 'nostart' });
  const hook = installHook(d.dir, 'prolog-hook', { socket: d.hookSocket, spool: d.spoolDir });
  expect((await runHook(hook, capture('prolog_ctld.2.'))).code).toBe(0);
  expect((await runHook(hook, capture('epilog_ctld.2.'))).code).toBe(0);
  expect(spoolFiles(d.spoolDir)).toEqual([]);
  await d.stop();
  expect(JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout)).toMatchObject({ backlog: 0, delivered: 0, quarantined: 0 });
});

it('RecordFormat=24.11: a 26.05 body is published in the 24.11 layout, and a prolog makes no start record (24.11 had none)', async () => {
  const d = await suite.daemon({ clusterName: 'fmt2411', params: 'enable_job_start,send_comment,poll_interval=0.05', extraConf: 'RecordFormat=24.11' });
  const layouts = join(__dirname, '../fixtures/kafka-layouts');
  expect((await post(d.url, readFileSync(join(layouts, '26.05-send_comment.finish.json')))).status).toBe(201);
  const [message] = await consumeAll(suite.broker().bootstrapServers, 'fmt2411', { count: 1, timeoutMs: 30_000 });
  // the 24.11 record of the same job; the body had no script to send
  const expected = readFileSync(join(layouts, '24.05.1-24.11.finish.json'), 'latin1').replace(/"script":"[^"]*",/, '');
  expect(message?.value?.toString('latin1')).toBe(expected);

  const hook = installHook(d.dir, 'prolog-hook', { socket: d.hookSocket, spool: d.spoolDir });
  expect((await runHook(hook, withJobId(capture('prolog_ctld.1.'), 'SLURM_JOB_ID', 2411))).code).toBe(0);
  expect(spoolFiles(d.spoolDir)).toEqual([]);
  await d.stop();
  expect(JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout)).toMatchObject({ backlog: 0, delivered: 1, quarantined: 0 });
});

it('with jobcompd down the hook spools the record and exits 0; jobcompd imports it at start', async () => {
  const dir = tempDir('jobcompd-spool-');
  const hook = installHook(dir, 'jobcomp-hook', { socket: join(dir, 'hook.sock'), spool: join(dir, 'spool') });
  for (const id of [3001, 3002, 3003]) {
    const run = await runHook(hook, withJobId(capture('jobcomp.2.'), 'JOBID', id));
    expect(run.code).toBe(0);
  }
  expect(spoolFiles(join(dir, 'spool'))).toHaveLength(3);

  const d = await suite.daemon({ clusterName: 'spooled', dir });
  const messages = await consumeAll(suite.broker().bootstrapServers, 'spooled', { count: 3, timeoutMs: 30_000 });
  expect(messages.map((m) => jobIdOf(m.value as Buffer)).sort()).toEqual([3001, 3002, 3003]);
  expect(spoolFiles(d.spoolDir)).toEqual([]);
});

it('a hung jobcompd: the hook gives up after timeout_ms and spools; the record is still published once', async () => {
  const d = await suite.daemon({ clusterName: 'hung' });
  const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir, timeoutMs: 300 });
  d.proc.kill('SIGSTOP');
  let run;
  try {
    run = await runHook(hook, withJobId(capture('jobcomp.3.'), 'JOBID', 4001));
  } finally {
    d.proc.kill('SIGCONT');
  }
  expect(run.code).toBe(0);
  expect(run.ms).toBeGreaterThanOrEqual(300);
  // jobcompd now gets the record twice: from the socket (it was sent) and from the spool.
  await d.waitForLog((l) => l.logEvent === 'spool.imported', 'spool import');
  await d.waitForLog((l) => l.logEvent === 'record.duplicate' && l.jobId === 4001, 'the second copy dropped');
  await consumeAll(suite.broker().bootstrapServers, 'hung', { count: 1, timeoutMs: 30_000 });
  await d.stop();
  expect(await countMessages(suite.broker().bootstrapServers, 'hung')).toBe(1);
  expect(JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout)).toMatchObject({ delivered: 1, deduplicated: 1 });
});

it('when neither jobcompd nor the spool can take the record: prolog context still exits 0, jobcomp context 1', async () => {
  const dir = tempDir('jobcompd-nospool-');
  const cfg = { socket: join(dir, 'absent.sock'), spool: '/proc/version/spool' };
  const prolog = installHook(dir, 'prolog-hook', cfg);
  const jobcomp = installHook(dir, 'jobcomp-hook', cfg);
  expect((await runHook(prolog, capture('prolog_ctld.1.'))).code).toBe(0);
  expect((await runHook(jobcomp, capture('jobcomp.1.'))).code).toBe(1);
});

it('run by hand (no Slurm context) it explains itself and exits 64', async () => {
  const dir = tempDir('jobcompd-manual-');
  const hook = installHook(dir, 'jobcomp-hook', { socket: join(dir, 's'), spool: join(dir, 'spool') });
  const run = await runHook(hook, new Map([['PATH', '/usr/bin:/bin']]));
  expect(run.code).toBe(64);
  expect(run.stderr).toContain('not run by Slurm');
});
