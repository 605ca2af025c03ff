// The hook's deadline_s while the spool write itself hangs (issue 14): jobcompd is down, so
// the hook goes straight to the spool, and the spool's file system is frozen (fsfreeze), so
// the hook blocks inside the kernel. slurmctld waits for the hook: it must exit anyway.

import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli';
import { capture, installHook, runHook, withJobId, type HookRun } from '../helpers/hook';
import { Cleanups, freeze, loopFilesystem } from '../helpers/loop-fs';

jest.setTimeout(60_000);

/** Far less than "never": a hook that ignores its deadline is still running by then. */
const BOUND_MS = 10_000;

const cleanups = new Cleanups();
let dir: string;
let spool: string;

beforeAll(() => {
  dir = tempDir('jobcompd-frozen-');
  const mountpoint = join(dir, 'fs');
  loopFilesystem(join(dir, 'spool.img'), mountpoint, cleanups);
  spool = join(mountpoint, 'spool');
  mkdirSync(spool);
  chmodSync(spool, 0o700);
  freeze(mountpoint, cleanups);
});

afterAll(() => cleanups.run());

/**
 * Run the hook; if it has not exited after BOUND_MS, kill it and fail. runHook resolves on
 * 'close': the exit and EOF on stderr; Slurm's run_command() also reads the hook's stdout
 * and stderr until EOF.
 */
async function runBounded(path: string, env: ReadonlyMap<string, string>): Promise<HookRun> {
  let child: ChildProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child?.kill('SIGKILL');
      reject(new Error(`the hook was still running after ${BOUND_MS} ms with deadline_s = 2`));
    }, BOUND_MS);
  });
  try {
    return await Promise.race([runHook(path, env, (c) => (child = c)), bound]);
  } finally {
    clearTimeout(timer);
  }
}

describe('deadline_s while the spool file system is frozen', () => {
  it('as PrologSlurmctld the hook exits 0 at its deadline, saying so on stderr', async () => {
    const hook = installHook(dir, 'prolog-hook', { socket: join(dir, 'absent.sock'), spool, extra: 'deadline_s = 2\n' });
    const run = await runBounded(hook, withJobId(capture('prolog_ctld.1.'), 'SLURM_JOB_ID', 8001));
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('deadline_s');
    expect(run.ms).toBeGreaterThanOrEqual(1_900); // it did block until the deadline
  });

  it('as jobcomp/script the hook exits non-zero at its deadline (the record is lost, and Slurm logs that)', async () => {
    const hook = installHook(dir, 'jobcomp-hook', { socket: join(dir, 'absent.sock'), spool, extra: 'deadline_s = 2\n' });
    const run = await runBounded(hook, withJobId(capture('jobcomp.1.'), 'JOBID', 8002));
    expect(run.code).not.toBe(0);
    expect(run.code).not.toBeNull();
    expect(run.stderr).toContain('deadline_s');
    expect(run.ms).toBeGreaterThanOrEqual(1_900);
  });
});
