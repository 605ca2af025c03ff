// The hook journal against the real daemon and broker (docs/delivery-guarantees.md#the-hook-journal):
// hooks that come one at a time are answered from it, and a record answered from it that
// the state file could not take yet is committed from it at the next start, after kill -9.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consumeAll, countMessages } from '../../tools/kafka/consume';
import { runCli, tempDir } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { capture, installHook, runHook, withJobId } from '../helpers/hook';
import { jobIdOf } from '../helpers/records';
import { startDaemon } from '../helpers/daemon';

jest.setTimeout(120_000);

const suite = useBroker({ autoCreateTopics: true });
const mounts: string[] = [];

afterAll(() => {
  for (const m of mounts) execFileSync('umount', ['-l', m]);
});

async function metric(adminUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

it('hooks one after the other are answered from the journal; each record is published once', async () => {
  const d = await suite.daemon({ clusterName: 'journal-seq' });
  const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir });
  for (let i = 0; i < 20; i++) expect((await runHook(hook, withJobId(capture('jobcomp.1.'), 'JOBID', 3100 + i))).code).toBe(0);
  expect(readdirSync(d.spoolDir).filter((f) => f.endsWith('.jch'))).toEqual([]);
  expect(await metric(d.adminUrl, 'jobcompd_hook_journal_answered_total')).toBeGreaterThan(0);

  const messages = await consumeAll(suite.broker().bootstrapServers, 'journal-seq', { count: 20, timeoutMs: 30_000 });
  expect(messages.map((m) => jobIdOf(m.value as Buffer)).sort()).toEqual(Array.from({ length: 20 }, (_, i) => 3100 + i));
  expect(await countMessages(suite.broker().bootstrapServers, 'journal-seq')).toBe(20);
});

it('answered from the journal while the state file is full, then kill -9: the next start commits it, and it is published once', async () => {
  const dir = tempDir('jobcompd-journal-full-');
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', stateDir]);
  mounts.push(stateDir);
  const d = await suite.daemon({ clusterName: 'journal-full', dir });
  const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir });
  const filler = join(stateDir, 'filler');
  try {
    // every byte left goes: the state file cannot grow its write-ahead log, the journal was made whole at start
    try {
      writeFileSync(filler, Buffer.alloc(8 * 1024 * 1024));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    }
    expect((await runHook(hook, withJobId(capture('jobcomp.1.'), 'JOBID', 3201))).code).toBe(0);
    expect(readdirSync(d.spoolDir).filter((f) => f.endsWith('.jch'))).toEqual([]); // answered, not spooled
    await d.waitForLog((l) => l.logEvent === 'state.commit-failed', 'the commit of the state file failed');
  } finally {
    await d.stop('SIGKILL');
  }

  rmSync(filler);
  const again = await startDaemon({ bootstrapServers: suite.broker().bootstrapServers, clusterName: 'journal-full', dir });
  try {
    await again.waitForLog((l) => l.logEvent === 'hook.journal-recovered' && l.entries === 1, 'the entry committed at start');
    const [message] = await consumeAll(suite.broker().bootstrapServers, 'journal-full', { count: 1, timeoutMs: 30_000 });
    expect(jobIdOf(message?.value as Buffer)).toBe(3201);
    await again.stop('SIGKILL');
  } finally {
    if (again.proc.exitCode === null) await again.stop('SIGKILL');
  }

  // a third start finds nothing left: the entry was applied
  const third = await startDaemon({ bootstrapServers: suite.broker().bootstrapServers, clusterName: 'journal-full', dir });
  try {
    expect(third.logs.some((l) => l.logEvent === 'hook.journal-recovered')).toBe(false);
    expect(await countMessages(suite.broker().bootstrapServers, 'journal-full')).toBe(1);
  } finally {
    await third.stop('SIGKILL');
  }
});

it('with [hook] JournalBytes=0 the hook is answered after the commit, as without a journal', async () => {
  const d = await suite.daemon({ clusterName: 'journal-off', hookConf: 'JournalBytes=0' });
  const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir });
  expect((await runHook(hook, withJobId(capture('jobcomp.1.'), 'JOBID', 3301))).code).toBe(0);
  expect(await metric(d.adminUrl, 'jobcompd_hook_journal_answered_total')).toBe(0);
  expect(readdirSync(d.stateDir)).not.toContain('hook-journal');
  await consumeAll(suite.broker().bootstrapServers, 'journal-off', { count: 1, timeoutMs: 30_000 });
});

it('an input answered from the journal that cannot be mapped is quarantined with its reason, even over MaxQuarantineBytes', async () => {
  const d = await suite.daemon({ clusterName: 'journal-bad', extraConf: 'MaxQuarantineBytes=1' });
  const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir });
  const bad = withJobId(capture('jobcomp.1.'), 'JOBID', 3401);
  bad.set('EXITCODE', 'not exit:signal');
  expect((await runHook(hook, bad)).code).toBe(0); // "A": durable in the journal, answered before it is mapped
  expect(readdirSync(d.spoolDir).filter((f) => f.endsWith('.jch'))).toEqual([]);
  await d.waitForLog((l) => l.logEvent === 'record.quarantined' && l.jobId === 3401, 'the input quarantined');
  expect(await metric(d.adminUrl, 'jobcompd_hook_journal_answered_total')).toBe(1);
  expect(JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout)).toMatchObject({ quarantined: 1 });
});
