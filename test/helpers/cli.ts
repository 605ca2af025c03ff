// Running the real jobcompd executable (built into dist/ by `npm run build`).

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dieWithParent } from '../../tools/harness-common';

export const PROJECT_ROOT = resolve(__dirname, '../..');
export const JOBCOMPD = join(PROJECT_ROOT, 'bin/jobcompd');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let installedForOtherUsers: string | undefined;
let installDir: string | undefined;
// jest ends its workers without running process 'exit' handlers: clean up per test file
afterAll(() => {
  if (installDir !== undefined) rmSync(installDir, { recursive: true, force: true });
  installDir = undefined;
  installedForOtherUsers = undefined;
});

/**
 * The jobcompd another user runs: `make install` of this checkout into a world-readable
 * temporary directory, once per test file. That user may not be able to reach the checkout
 * itself (a clone in root's home, or in any 0700 directory: docs/development.md).
 */
function jobcompdForOtherUsers(): string {
  if (installedForOtherUsers !== undefined) return installedForOtherUsers;
  const destdir = mkdtempSync(join(tmpdir(), 'jobcompd-installed-'));
  chmodSync(destdir, 0o755);
  const r = spawnSync('make', ['-s', 'install', `DESTDIR=${destdir}`], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 110_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`make install DESTDIR=${destdir} failed (exit ${r.status}): ${r.stderr}`);
  installDir = destdir;
  installedForOtherUsers = join(destdir, 'usr/lib/jobcompd/bin/jobcompd');
  return installedForOtherUsers;
}

export function runCli(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number; asUid?: number } = {}): CliResult {
  // asUid: run as that user and group, without supplementary groups (tests run as root),
  // from an installed tree that user can read, in a directory it can reach
  const [command, ...argv] =
    opts.asUid === undefined
      ? [JOBCOMPD, ...args]
      : ['setpriv', `--reuid=${opts.asUid}`, `--regid=${opts.asUid}`, '--clear-groups', jobcompdForOtherUsers(), ...args];
  const r = spawnSync(command as string, argv, {
    cwd: opts.asUid === undefined ? undefined : '/',
    input: opts.input,
    env: { ...process.env, JOBCOMPD_CONFIG: '', ...opts.env },
    timeout: opts.timeoutMs ?? 30_000,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024, // replay --dry-run --json of thousands of records
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * runCli without blocking: while a test waits in spawnSync, it does not read the stdout of
 * the daemons it started, and a daemon that logs a lot then blocks on its full pipe (and
 * cannot answer the command the test is waiting for). Use this while a daemon is busy.
 */
export function runCliAsync(args: string[], opts: { timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      JOBCOMPD,
      args,
      { env: { ...process.env, JOBCOMPD_CONFIG: '' }, timeout: opts.timeoutMs ?? 30_000, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The raw stdout bytes of a command (for payload comparisons). */
export function runCliBytes(args: string[], input: Buffer): { code: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(JOBCOMPD, args, { input, env: { ...process.env, JOBCOMPD_CONFIG: '' }, timeout: 30_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

/** A long-running jobcompd (the daemon) that dies with the test process, whatever happens to it. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const [command, ...rest] = dieWithParent([JOBCOMPD, ...args]);
  return spawn(command as string, rest, { env: { ...process.env, JOBCOMPD_CONFIG: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function tempDir(prefix = 'jobcompd-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Write files (name -> content) into dir; returns name -> absolute path. */
export function writeFiles(dir: string, files: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, text] of Object.entries(files)) {
    out[name] = join(dir, name);
    writeFileSync(out[name] as string, text);
  }
  return out;
}
