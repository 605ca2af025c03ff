// `make install` (docs/install.md): the installed tree runs on its own, from anywhere. It
// once did not: the documented `cp -a ... node_modules` copied the native addon's package
// (then jobcompd-peercred), a relative link into native/, which then dangled, so every command failed with
// MODULE_NOT_FOUND. Installed into a temporary DESTDIR from this (built) tree; the installed
// commands run outside the repository, so nothing can come from its node_modules.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Outbox } from '../../src/outbox/outbox';
import { JobEvent } from '../../src/record/job-record';
import { PROJECT_ROOT, tempDir, writeFiles, type CliResult } from '../helpers/cli';
import { elfInterpreter } from '../helpers/hook';

jest.setTimeout(120_000);

const destdir = tempDir('jobcompd-install-');
const LIBDIR = join(destdir, 'usr/lib/jobcompd');
const INSTALLED = join(LIBDIR, 'bin/jobcompd');

const work = tempDir('jobcompd-install-conf-');
const { 'jobcompd.conf': conf } = writeFiles(work, {
  'rdkafka.conf': 'bootstrap.servers=127.0.0.1:1\n', // never contacted
  'jobcompd.conf': 'ClusterName=hpc1\nStateDir=state\nJobCompLoc=rdkafka.conf\n',
});

/** The installed jobcompd, run in a directory outside the repository, with no NODE_PATH. */
function installed(args: string[]): CliResult {
  const env: NodeJS.ProcessEnv = { ...process.env, JOBCOMPD_CONFIG: '' };
  delete env.NODE_PATH;
  const r = spawnSync(INSTALLED, args, { cwd: work, env, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let install: CliResult;

beforeAll(() => {
  const r = spawnSync('make', ['install', `DESTDIR=${destdir}`], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 110_000 });
  if (r.error) throw r.error;
  install = { code: r.status, stdout: r.stdout, stderr: r.stderr };
});

afterAll(() => {
  rmSync(destdir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

it('make install DESTDIR=... succeeds', () => {
  expect({ code: install.code, stderr: install.stderr }).toEqual({ code: 0, stderr: '' });
});

it('the installed jobcompd --help runs (it loads the hook-socket addon)', () => {
  const r = installed(['--help']);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(r.stdout).toMatch(/^Usage: jobcompd \[options\] \[command\]\n/);
  for (const name of ['run', 'check-config', 'convert', 'replay', 'repair-state', 'status']) expect(r.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
});

it('the installed jobcompd check-config accepts a valid configuration (it creates a librdkafka producer)', () => {
  const r = installed(['check-config', '-c', conf as string]);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(r.stdout.split('\n').slice(0, 3)).toEqual([`configuration OK (${conf})`, '  ClusterName:   hpc1', `  state dir:     ${join(work, 'state')}`]);
  expect(r.stdout).toContain('  librdkafka:    bootstrap.servers=127.0.0.1:1\n');
});

it('the installed jobcompd replay --dry-run reads the state file (better-sqlite3)', async () => {
  const outbox = Outbox.open(join(work, 'state'));
  await outbox.append({ event: JobEvent.finish, jobId: 7, payload: Buffer.from('{"jobid":7}'), source: 'http', receivedAt: Date.now() });
  outbox.close();
  const r = installed(['replay', '-c', conf as string, '--dry-run']);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(r.stdout).toBe('{"jobid":7}\n');
});

/** The installed daemon's Node.js command line and environment, read from /proc once it is ready. */
async function daemonProcess(extraEnv: NodeJS.ProcessEnv): Promise<{ argv: string[]; env: Map<string, string> }> {
  const env: NodeJS.ProcessEnv = { ...process.env, JOBCOMPD_CONFIG: '', ...extraEnv };
  delete env.NODE_PATH;
  const child = spawn(INSTALLED, ['run', '-c', conf as string], { cwd: work, env, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line.includes('"jobcompd ready"')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`jobcompd exited (${String(code)}) before it was ready`)));
    });
    const read = (name: string): string[] => readFileSync(`/proc/${String(child.pid)}/${name}`, 'latin1').split('\0').filter((s) => s !== '');
    return { argv: read('cmdline'), env: new Map(read('environ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) };
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}

it("runs the daemon with bin/jobcompd's Node.js flags and MALLOC_ARENA_MAX=2, which the caller's environment overrides (docs/install.md)", async () => {
  const plain = await daemonProcess({ MALLOC_ARENA_MAX: undefined });
  expect(plain.argv.slice(0, 4)).toEqual([join(LIBDIR, 'node/bin/node'), '--max-semi-space-size=4', '--no-parallel-scavenge', '--no-concurrent-array-buffer-sweeping']);
  expect(plain.env.get('MALLOC_ARENA_MAX')).toBe('2');
  const site = await daemonProcess({ MALLOC_ARENA_MAX: '4' });
  expect(site.env.get('MALLOC_ARENA_MAX')).toBe('4');
});

it('installs the documented layout, and neither configuration nor development packages', () => {
  expect(lstatSync(join(LIBDIR, 'node_modules/jobcompd-hook-socket')).isDirectory()).toBe(true); // not a link
  expect(existsSync(join(LIBDIR, 'node_modules/node-rdkafka/build/deps/librdkafka.so.1'))).toBe(true);
  expect(existsSync(join(LIBDIR, 'node_modules/node-rdkafka/deps'))).toBe(false); // librdkafka's sources
  for (const dev of ['jest', 'ts-jest', 'typescript', '@types', '.bin']) expect([dev, existsSync(join(LIBDIR, 'node_modules', dev))]).toEqual([dev, false]);
  expect(statSync(join(destdir, 'usr/libexec/jobcompd/jobcompd-hook')).mode & 0o7777).toBe(0o755);
  expect(readlinkSync(join(destdir, 'usr/bin/jobcompd'))).toBe('/usr/lib/jobcompd/bin/jobcompd');
  expect(existsSync(join(destdir, 'etc'))).toBe(false);
});

it('installs the hook static-pie: it needs no dynamic loader, whatever libc the slurmctld host has', () => {
  // native/Makefile, HOOK_LINK (docs/install.md#the-native-hooks-build); scripts/system-deps.sh installs the static libc
  expect(elfInterpreter(join(destdir, 'usr/libexec/jobcompd/jobcompd-hook'))).toBeNull();
});

it('leaves the source tree as it was: its development packages and its link to native/hook-socket', () => {
  expect(lstatSync(join(PROJECT_ROOT, 'node_modules/jobcompd-hook-socket')).isSymbolicLink()).toBe(true);
  expect(existsSync(join(PROJECT_ROOT, 'node_modules/jest/package.json'))).toBe(true);
});
