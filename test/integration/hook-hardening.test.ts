// The hook and spool paths under the faults that must never cost a record (issue 14): a
// message over MaxMessageBytes, spool files that cannot be imported, objects planted in the
// spool, a cut message in quarantine, a spool directory others could tamper with, and a
// jobcompd that hangs for longer than slurmctld can wait. Real daemon, real hook, real broker.

import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, ftruncateSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { consumeAll, countMessages } from '../../tools/kafka/consume';
import { encodeRequest } from '../../src/sources/hook-protocol';
import { runCli, tempDir } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { capture, installHook, runHook, withJobId } from '../helpers/hook';
import { jobIdOf } from '../helpers/records';
import { envBlock } from '../hostile/fuzz-kit';

jest.setTimeout(120_000);

const suite = useBroker({ autoCreateTopics: true });
const SMALL_MAX = 64 * 1024;

function spoolFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jch')) : [];
}

/**
 * A file placed into a live spool as the hook places its own (written under a name the
 * import skips, then renamed). Written in place, it can be imported half-written: a file
 * read while still empty is quarantined as malformed and never reaches rejected/, which
 * once left this suite waiting for a spool.rejected line until jest's timeout in CI.
 */
function placeInSpool(spool: string, name: string, write: (path: string) => void): void {
  const temporary = join(spool, `.${name}.tmp`);
  write(temporary);
  renameSync(temporary, join(spool, name));
}

function rejectedDir(spool: string): string {
  return join(spool, 'rejected');
}

/** A jobcomp/script message (header and environment) for `jobId`, `padBytes` larger than usual. */
function jobcompMessage(jobId: number, padBytes = 0): Buffer {
  const env = withJobId(capture('jobcomp.1.'), 'JOBID', jobId);
  if (padBytes > 0) env.set('PAD', 'p'.repeat(padBytes));
  return encodeRequest(envBlock(env));
}

/** Send raw bytes on the hook socket, half-close, and return the answer's status byte. */
function sendRaw(socketPath: string, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect(socketPath, () => sock.end(bytes));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(chunks).subarray(0, 1).toString('latin1')));
  });
}

function status(configFile: string): { backlog: number; delivered: number; quarantined: number } {
  return JSON.parse(runCli(['status', '--json', '-c', configFile]).stdout) as { backlog: number; delivered: number; quarantined: number };
}

describe('nothing is cut short and acknowledged', () => {
  it('a hook message over MaxMessageBytes is not committed: the hook spools it whole, and the import moves it whole to rejected/', async () => {
    const d = await suite.daemon({ clusterName: 'toolarge', hookConf: `MaxMessageBytes=${SMALL_MAX}\nSpoolScanInterval=0.05` });
    const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir });
    const env = withJobId(capture('jobcomp.1.'), 'JOBID', 5001);
    const pad = 'p'.repeat(SMALL_MAX + 10_000);
    env.set('PAD', pad);
    expect((await runHook(hook, env)).code).toBe(0);

    const line = await d.waitForLog((l) => l.logEvent === 'spool.rejected', 'the spool file moved to rejected/');
    expect(line).toMatchObject({ code: 'E_SPOOL_REJECTED', jobId: 5001, event: 'job finish' });
    const [kept, ...others] = readdirSync(rejectedDir(d.spoolDir));
    expect(others).toEqual([]);
    const file = readFileSync(join(rejectedDir(d.spoolDir), kept as string));
    expect(file.subarray(0, 4).toString('latin1')).toBe('JCH1');
    expect(file.readUInt32BE(4)).toBe(file.length - 8);
    expect(file.includes(Buffer.from(`\0PAD=${pad}\0`, 'latin1'))).toBe(true);
    expect(spoolFiles(d.spoolDir)).toEqual([]);
    await d.stop();
    expect(status(d.configFile)).toMatchObject({ backlog: 0, quarantined: 0 });
  });

  it('spool files over MaxMessageBytes (one a sparse 3 GiB file) are moved whole to rejected/; the next file is imported', async () => {
    const d = await suite.daemon({ clusterName: 'bigspool', hookConf: `MaxMessageBytes=${SMALL_MAX}\nSpoolScanInterval=0.05` });
    const big = jobcompMessage(5002, SMALL_MAX);
    placeInSpool(d.spoolDir, 'jobcomp.5002.1.1.1.jch', (path) => writeFileSync(path, big));
    placeInSpool(d.spoolDir, 'jobcomp.5003.1.1.1.jch', (path) => {
      const fd = openSync(path, 'w');
      ftruncateSync(fd, 3 * 1024 ** 3);
      closeSync(fd);
    });
    placeInSpool(d.spoolDir, 'jobcomp.5004.1.1.1.jch', (path) => writeFileSync(path, jobcompMessage(5004)));

    const messages = await consumeAll(suite.broker().bootstrapServers, 'bigspool', { count: 1, timeoutMs: 30_000 });
    expect(messages.map((m) => jobIdOf(m.value as Buffer))).toEqual([5004]);
    await d.waitForLog((l) => l.logEvent === 'spool.rejected' && l.jobId === 5002, 'the big file rejected');
    await d.waitForLog((l) => l.logEvent === 'spool.rejected' && l.jobId === 5003, 'the sparse file rejected');
    const rejected = rejectedDir(d.spoolDir);
    expect(readdirSync(rejected).sort()).toEqual(['jobcomp.5002.1.1.1.jch', 'jobcomp.5003.1.1.1.jch']);
    expect(readFileSync(join(rejected, 'jobcomp.5002.1.1.1.jch')).equals(big)).toBe(true);
    expect(statSync(join(rejected, 'jobcomp.5003.1.1.1.jch')).size).toBe(3 * 1024 ** 3);
    await d.stop();
    expect(status(d.configFile)).toMatchObject({ backlog: 0, delivered: 1, quarantined: 0 });
  });

  it('a cut hook message kept in quarantine is never published by replay --quarantined', async () => {
    const d = await suite.daemon({ clusterName: 'cutframe' });
    const whole = jobcompMessage(5005);
    expect(await sendRaw(d.hookSocket, whole.subarray(0, whole.length - 40))).toBe('Q');
    expect((await d.stop('SIGTERM')).code).toBe(0);

    const r = runCli(['replay', '-c', d.configFile, '--quarantined', '--json', '--timeout', '30'], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as { requeued: { requeued: number; kept: unknown[] }; delivered: number };
    expect(summary).toMatchObject({ requeued: { requeued: 0, kept: [expect.anything()] }, delivered: 0 });
    expect(await countMessages(suite.broker().bootstrapServers, 'cutframe')).toBe(0);
    expect(status(d.configFile)).toMatchObject({ quarantined: 1 });
  });
});

describe('the spool reader', () => {
  it('a FIFO, a symbolic link and a directory planted in the spool neither block nor crash the import: they go to rejected/', async () => {
    const d = await suite.daemon({ clusterName: 'planted', hookConf: 'SpoolScanInterval=0.05' });
    const outside = join(d.dir, 'outside.jch');
    writeFileSync(outside, jobcompMessage(6001));
    symlinkSync(outside, join(d.spoolDir, 'jobcomp.6001.1.1.1.jch'));
    execFileSync('mkfifo', [join(d.spoolDir, 'jobcomp.6002.1.1.1.jch')]);
    mkdirSync(join(d.spoolDir, 'jobcomp.6003.1.1.1.jch'));
    placeInSpool(d.spoolDir, 'jobcomp.6004.1.1.1.jch', (path) => writeFileSync(path, jobcompMessage(6004)));

    const messages = await consumeAll(suite.broker().bootstrapServers, 'planted', { count: 1, timeoutMs: 30_000 });
    expect(messages.map((m) => jobIdOf(m.value as Buffer))).toEqual([6004]);
    for (const id of [6001, 6002, 6003]) await d.waitForLog((l) => l.logEvent === 'spool.rejected' && l.jobId === id, `job ${id} rejected`);
    const rejected = rejectedDir(d.spoolDir);
    expect(lstatSync(join(rejected, 'jobcomp.6001.1.1.1.jch')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(rejected, 'jobcomp.6002.1.1.1.jch')).isFIFO()).toBe(true);
    expect(lstatSync(join(rejected, 'jobcomp.6003.1.1.1.jch')).isDirectory()).toBe(true);
    expect(existsSync(outside)).toBe(true);
    expect(d.proc.exitCode).toBeNull();
    await d.stop();
    expect(await countMessages(suite.broker().bootstrapServers, 'planted')).toBe(1);
    expect(status(d.configFile)).toMatchObject({ backlog: 0, delivered: 1, quarantined: 0 });
  });
});

describe('the hook never hangs slurmctld and writes only where it should', () => {
  it('spool files are named with the host name and a random part: two spools of one job never collide', async () => {
    const dir = tempDir('jobcompd-spoolname-');
    const spool = join(dir, 'spool');
    const hook = installHook(dir, 'jobcomp-hook', { socket: join(dir, 'absent.sock'), spool });
    const env = withJobId(capture('jobcomp.2.'), 'JOBID', 7001);
    expect((await runHook(hook, env)).code).toBe(0);
    expect((await runHook(hook, env)).code).toBe(0);
    const names = spoolFiles(spool);
    expect(names).toHaveLength(2);
    for (const n of names) expect(n).toMatch(new RegExp(`^jobcomp\\.7001\\.${hostname().replace(/[.]/g, '\\.')}\\.`));
    expect((statSync(join(spool, names[0] as string)).mode & 0o777).toString(8)).toBe('600');
  });

  it('a spool directory others may write to, owned by another user, or reached by a symbolic link is refused: nothing written, jobcomp exits 1, prolog 0', async () => {
    const dir = tempDir('jobcompd-spoolcheck-');
    const env = withJobId(capture('jobcomp.2.'), 'JOBID', 7002);
    const prologEnv = withJobId(capture('prolog_ctld.1.'), 'SLURM_JOB_ID', 7002);
    const worldWritable = join(dir, 'open');
    mkdirSync(worldWritable);
    chmodSync(worldWritable, 0o777);
    const foreign = join(dir, 'foreign');
    mkdirSync(foreign, { mode: 0o700 });
    const real = join(dir, 'real');
    mkdirSync(real, { mode: 0o700 });
    const viaLink = join(dir, 'link');
    symlinkSync(real, viaLink);
    const cases: [string, string][] = [
      ['world-writable', worldWritable],
      ['symbolic link', viaLink],
    ];
    if (process.getuid?.() === 0) {
      execFileSync('chown', ['nobody', foreign]);
      cases.push(['owned by nobody', foreign]);
    }
    for (const [what, spool] of cases) {
      const jobcomp = installHook(dir, `jobcomp-${what.replace(/ /g, '-')}`, { socket: join(dir, 'absent.sock'), spool });
      const prolog = installHook(dir, `prolog-${what.replace(/ /g, '-')}`, { socket: join(dir, 'absent.sock'), spool });
      expect({ what, jobcomp: (await runHook(jobcomp, env)).code, prolog: (await runHook(prolog, prologEnv)).code }).toEqual({ what, jobcomp: 1, prolog: 0 });
    }
    expect({ open: readdirSync(worldWritable), foreign: readdirSync(foreign), real: readdirSync(real) }).toEqual({ open: [], foreign: [], real: [] });
  });

  it('a connection that never sends its message does not hold up the records of the hooks after it', async () => {
    const d = await suite.daemon({ clusterName: 'idleconn' });
    const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir });
    const idle = connect(d.hookSocket);
    await new Promise<void>((resolve) => idle.once('connect', resolve));
    try {
      for (const jobId of [7101, 7102, 7103]) expect((await runHook(hook, withJobId(capture('jobcomp.1.'), 'JOBID', jobId))).code).toBe(0);
      // answered, not spooled: each record was committed while the idle connection stayed open
      expect(spoolFiles(d.spoolDir)).toEqual([]);
      const s = status(d.configFile);
      expect(s.backlog + s.delivered).toBe(3);
    } finally {
      idle.destroy();
    }
  });

  it('a total deadline: with timeout_ms far beyond it and jobcompd hung, the hook spools within deadline and exits 0', async () => {
    const d = await suite.daemon({ clusterName: 'deadline', hookConf: 'SpoolScanInterval=0.05' });
    const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir, timeoutMs: 60_000, extra: 'deadline_s = 2\n' });
    d.proc.kill('SIGSTOP');
    let run;
    try {
      run = await runHook(hook, withJobId(capture('jobcomp.3.'), 'JOBID', 7003));
    } finally {
      d.proc.kill('SIGCONT');
    }
    expect({ code: run.code, inTime: run.ms < 2500 }).toEqual({ code: 0, inTime: true });
    const messages = await consumeAll(suite.broker().bootstrapServers, 'deadline', { count: 1, timeoutMs: 30_000 });
    expect(messages.map((m) => jobIdOf(m.value as Buffer))).toEqual([7003]);
  });
});
