// Storage faults, for real: a state directory on a small tmpfs that fills up, damaged and
// foreign state files, two daemons on one state file.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConsumeTimeoutError, consumeAll } from '../../tools/kafka/consume';
import { runCli, spawnCli, tempDir } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { installHook, runHook } from '../helpers/hook';
import { post, postAll, startDaemon } from '../helpers/daemon';
import { expectedPayload, jobIdOf, numberedBodies } from '../helpers/records';
import { parseEnvDump } from '../../src/record/slurm-env';
import { SCHEMA_VERSION } from '../../src/outbox/schema';

jest.setTimeout(180_000);

const suite = useBroker({ autoCreateTopics: true });
const mounts: string[] = [];

afterAll(() => {
  for (const m of mounts) execFileSync('umount', ['-l', m]);
});

/** A daemon that took `bodies` while the broker was down, then stopped cleanly: its state file holds them all. */
async function stoppedWithBacklog(clusterName: string, bodies: Buffer[], senders: number): Promise<Awaited<ReturnType<typeof suite.daemon>>> {
  const d = await suite.daemon({ clusterName });
  await suite.broker().stop();
  try {
    await postAll(d.url, bodies, senders);
    expect((await d.stop('SIGTERM')).code).toBe(0);
  } finally {
    await suite.broker().restart();
  }
  return d;
}

function smallFilesystem(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
}

describe('a state directory that fills up', () => {
  it('answers 503 (Slurm retries), the hook spools elsewhere, nothing committed is lost, all recovers', async () => {
    const dir = tempDir('jobcompd-full-');
    const stateDir = join(dir, 'state');
    smallFilesystem(stateDir, '8m');
    // no hook journal: with one, the hook is answered from it while the state file is full
    // (test/integration/hook-journal.test.ts); this is the hook without one, or with it full
    const d = await startDaemon({ bootstrapServers: suite.broker().bootstrapServers, clusterName: 'full', dir, hookConf: 'JournalBytes=0' });
    const filler = join(stateDir, 'filler');
    try {
      // Kafka down, so nothing is deleted; something else takes the disk, 1 MB stays free
      await suite.broker().stop();
      writeFileSync(filler, Buffer.alloc(7 * 1024 * 1024));
      const accepted: Buffer[] = [];
      let refused: { status: number; body: string } | undefined;
      for (const body of numberedBodies(5000, 40_000)) {
        const r = await post(d.url, body);
        if (r.status !== 201) {
          refused = r;
          break;
        }
        accepted.push(body);
      }
      expect(refused?.status).toBe(503);
      expect(JSON.parse(refused?.body ?? '{}')).toMatchObject({ error: { type: 'not_committed', reason: expect.stringContaining('SQLITE_FULL') } });
      await d.waitForLog((l) => l.logEvent === 'state.commit-failed', 'commit failure logged');
      const refusedJobId = jobIdOf(numberedBodies(5000, 40_000)[accepted.length] as Buffer);
      expect(d.logs.find((l) => l.logEvent === 'http.not-accepted')).toMatchObject({ jobId: refusedJobId, event: 'job finish', status: 503 });
      expect(await (await fetch(`${d.adminUrl}/healthz`)).json()).toMatchObject({ status: 'failing' });

      // the hook cannot commit either: it spools (the spool is on another filesystem)
      const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir });
      const env = parseEnvDump(Buffer.from('JOBID=49999\nUID=0\nGID=0\nPROCS=1\nNODECNT=1\nEXITCODE=0:0\nDERIVED_EC=0:0\nJOBSTATE=COMPLETED\nSTART=1795319410\nEND=1795319411\n'));
      expect((await runHook(hook, env)).code).toBe(0);
      expect(readdirSync(d.spoolDir).filter((f) => f.endsWith('.jch'))).toHaveLength(1);

      // space returns (the other file goes), Kafka is back: everything recovers
      rmSync(filler);
      await suite.broker().restart();
      const delivered = await consumeAll(suite.broker().bootstrapServers, 'full', { count: accepted.length + 1, timeoutMs: 120_000 });
      const ids = new Set(delivered.map((m) => jobIdOf(m.value as Buffer)));
      for (const b of accepted) expect(ids.has(jobIdOf(b))).toBe(true); // every acknowledged record
      expect(ids.has(49999)).toBe(true); // the spooled one, imported once there was room
      expect((await post(d.url, numberedBodies(1, 48_000)[0] as Buffer)).status).toBe(201);
      await consumeAll(suite.broker().bootstrapServers, 'full', { count: accepted.length + 2, timeoutMs: 60_000 });
    } finally {
      if (d.proc.exitCode === null) await d.stop('SIGKILL');
    }
  });
});

describe('a state file jobcompd cannot use', () => {
  /** A daemon on `dir` that must refuse to start; returns its exit code and stderr. */
  async function refusedStart(dir: string): Promise<{ code: number | null; stderr: string }> {
    writeFileSync(join(dir, 'rdkafka.conf'), `bootstrap.servers=${suite.broker().bootstrapServers}\n`);
    writeFileSync(join(dir, 'jobcompd.conf'), 'ClusterName=bad\nStateDir=state\nJobCompLoc=rdkafka.conf\n[admin]\nListen=off\n[http]\nListen=off\n[hook]\nSocket=off\nSpool=off\n');
    const proc = spawnCli(['run', '-c', join(dir, 'jobcompd.conf')]);
    let stderr = '';
    proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
    return { code, stderr };
  }

  it('a foreign SQLite file: refused, untouched', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'state'));
    const foreign = new Database(join(dir, 'state/jobcompd.sqlite'));
    foreign.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    foreign.close();
    const r = await refusedStart(dir);
    expect(r.code).toBe(70);
    expect(r.stderr).toContain('is not a jobcompd state file (SQLite application_id 0x0); refusing to use it');
    expect((new Database(join(dir, 'state/jobcompd.sqlite'), { readonly: true }).prepare('SELECT x FROM t').get() as { x: number }).x).toBe(1);
  });

  it('not a database at all: refused with the way out', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'state'));
    writeFileSync(join(dir, 'state/jobcompd.sqlite'), Buffer.alloc(8192, 0x41));
    const r = await refusedStart(dir);
    expect(r.code).toBe(70);
    expect(r.stderr).toMatch(/is damaged or not a database \(SQLITE_NOTADB\); jobcompd will not start on it\. Run `jobcompd repair-state`/);
  });

  it('a truncated state file: refused, and the documented recovery keeps every record it can read', async () => {
    const d = await stoppedWithBacklog('truncated', numberedBodies(400, 41_000), 8);
    const file = join(d.stateDir, 'jobcompd.sqlite');
    expect(existsSync(`${file}-wal`)).toBe(false); // a clean stop checkpoints the WAL into the file
    truncateSync(file, Math.floor(statSync(file).size * 0.6));

    const r = await refusedStart(d.dir);
    expect(r.code).toBe(70);
    expect(r.stderr).toContain('is damaged');
    expect(r.stderr).toContain('jobcompd will not start on it');

    // the way out the message names
    const repair = runCli(['repair-state', '-c', d.configFile]);
    expect(repair.code).toBe(0);
    expect(repair.stdout).toMatch(/records waiting for Kafka: \d+ recovered/);
    expect(repair.stdout).toContain('the damaged file is kept as');
    const again = await suite.daemon({ clusterName: 'truncated', dir: d.dir, port: d.port, adminPort: d.adminPort });
    const recovered = Number((await again.waitForLog((l) => l.logEvent === 'publisher.starting')).backlog);
    expect(recovered).toBeGreaterThan(100);
    expect(recovered).toBeLessThan(400);
    const messages = await consumeAll(suite.broker().bootstrapServers, 'truncated', { count: recovered, timeoutMs: 60_000 });
    expect(new Set(messages.map((m) => jobIdOf(m.value as Buffer))).size).toBe(recovered);
  });

  /** Overwrites the page of the state file that holds this job's record. */
  function damagePageOf(stateDir: string, jobId: number): void {
    const file = join(stateDir, 'jobcompd.sqlite');
    const bytes = readFileSync(file);
    const at = bytes.indexOf(`"jobid":${jobId},`);
    expect(at).toBeGreaterThan(0);
    const page = Math.floor(at / 4096) * 4096;
    bytes.fill(0xa5, page, page + 4096);
    writeFileSync(file, bytes);
  }

  it('a damaged page inside the backlog: the start does not read it, the rows before it are delivered, then exit 70 (state.damaged) and repair-state keeps the rest', async () => {
    const d = await stoppedWithBacklog('damaged-page', numberedBodies(3000, 44_000), 16);
    // the page holding job 45,500's record (the middle of the outbox) gets overwritten
    damagePageOf(d.stateDir, 45_500);

    const again = await suite.daemon({ clusterName: 'damaged-page', dir: d.dir, port: d.port, adminPort: d.adminPort });
    expect((await again.exited).code).toBe(70);
    expect(again.logs.find((l) => l.logEvent === 'state.damaged')).toMatchObject({ code: 'E_STATE_CORRUPT' });
    // fewer than all of them: the wait runs out, with what arrived
    const delivered = await consumeAll(suite.broker().bootstrapServers, 'damaged-page', { count: 3000, timeoutMs: 10_000 }).catch((err: unknown) => {
      if (err instanceof ConsumeTimeoutError) return err.received;
      throw err;
    });
    const deliveredIds = new Set(delivered.map((m) => jobIdOf(m.value as Buffer)));
    expect(deliveredIds.has(44_000)).toBe(true);
    expect(deliveredIds.has(45_500)).toBe(false);

    const repair = runCli(['repair-state', '-c', d.configFile]);
    expect(repair.code).toBe(0);
    const [, recovered, unreadable] = (/records waiting for Kafka: (\d+) recovered, (\d+) row id/.exec(repair.stdout) ?? []).map(Number);
    expect(unreadable).toBeGreaterThan(0); // the damaged page's rows
    // the hook journal's mark is a counters row, not on the damaged page: the next start still knows which entries it holds
    expect(repair.stdout).toContain('hook journal:              its mark kept');
    // every other record is delivered or still in the file (the ones in flight at the exit may be both)
    expect(deliveredIds.size + (recovered ?? 0)).toBeGreaterThanOrEqual(3000 - (unreadable ?? 0));
  });

  it('replay on a state file with a damaged page exits 70 and names repair-state, not an internal SQLite error', async () => {
    const d = await stoppedWithBacklog('damaged-replay', numberedBodies(1000, 47_000), 16);
    damagePageOf(d.stateDir, 47_500);
    const r = runCli(['replay', '-c', d.configFile, '--timeout', '60'], { timeoutMs: 90_000 });
    expect(r.code).toBe(70);
    expect(r.stderr).toContain('jobcompd repair-state');
  });

  it('a state file written by a newer jobcompd (higher schema version): refused with both versions, untouched', async () => {
    // a real state file with records waiting (no broker: they stay in it)
    const d = await suite.daemon({ bootstrapServers: '127.0.0.1:1', clusterName: 'newer' });
    const bodies = numberedBodies(5, 42_000);
    await postAll(d.url, bodies, 1);
    expect((await d.stop('SIGTERM')).code).toBe(0);
    const file = join(d.stateDir, 'jobcompd.sqlite');

    const future = SCHEMA_VERSION + 1;
    const db = new Database(file);
    db.pragma(`user_version = ${future}`);
    db.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
    const digest = (): string => createHash('sha256').update(readFileSync(file)).digest('hex');
    const before = digest();

    const r = await refusedStart(d.dir);
    expect(r.code).toBe(70); // docs/errors.md: a state file that cannot be used (foreign, newer, damaged, unwritable)
    expect(r.stderr).toBe(
      `jobcompd: ${file} has schema version ${future}, written by a newer jobcompd (this one knows up to ${SCHEMA_VERSION}); run the newer jobcompd, or its \`replay\`, to drain it.\n`,
    );

    // neither migrated nor emptied: the newer jobcompd finds its records as it left them
    expect(digest()).toBe(before);
    const after = new Database(file, { readonly: true });
    try {
      expect(after.pragma('user_version', { simple: true })).toBe(future);
      const rows = after.prepare('SELECT job_id AS jobId, payload FROM outbox ORDER BY id').all() as { jobId: number; payload: Buffer }[];
      expect(rows.map((row) => row.jobId)).toEqual(bodies.map(jobIdOf));
      rows.forEach((row, i) => expect(row.payload.equals(expectedPayload(bodies[i] as Buffer))).toBe(true));
    } finally {
      after.close();
    }
  });

  it('a second daemon on the same state file refuses clearly (exit 75)', async () => {
    const first = await suite.daemon({ clusterName: 'twodaemons' });
    const dir = tempDir();
    writeFileSync(join(dir, 'rdkafka.conf'), `bootstrap.servers=${suite.broker().bootstrapServers}\n`);
    writeFileSync(join(dir, 'jobcompd.conf'), `ClusterName=twodaemons\nStateDir=${first.stateDir}\nJobCompLoc=rdkafka.conf\n[admin]\nListen=off\n[http]\nListen=off\n[hook]\nSocket=off\nSpool=off\n`);
    const second = runCli(['run', '-c', join(dir, 'jobcompd.conf')], { timeoutMs: 30_000 });
    expect(second.code).toBe(75);
    expect(second.stderr).toContain('is in use by another jobcompd process (the daemon or a replay)');
    expect(first.proc.exitCode).toBeNull();
  });
});

describe('file modes', () => {
  it('creates the state directory 0700, the state file and the hook journal 0600, the spool 0700', async () => {
    const d = await suite.daemon({ clusterName: 'modes' });
    const mode = (p: string): number => statSync(p).mode & 0o777;
    expect(mode(d.stateDir)).toBe(0o700);
    expect(mode(join(d.stateDir, 'jobcompd.sqlite'))).toBe(0o600);
    expect(mode(join(d.stateDir, 'hook-journal'))).toBe(0o600);
    expect(mode(d.spoolDir)).toBe(0o700);
  });
});
