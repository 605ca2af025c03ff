// The state dir belongs to SlurmUser (0700). `jobcompd status` run by another user must not
// mistake "may not read it" for "no state file"; and a state file that root creates with
// replay or repair-state must stay usable by the daemon's user.

import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { STATE_FILE_NAME } from '../../src/outbox/open';
import { Outbox } from '../../src/outbox/outbox';
import { JobEvent } from '../../src/record/job-record';
import { NOBODY_ID } from '../../src/record/slurm-values';
import { runCli, tempDir, writeFiles } from '../helpers/cli';
import { freePort, post, startDaemon } from '../helpers/daemon';
import { numberedBodies } from '../helpers/records';

jest.setTimeout(60_000);


/** A configuration others may read, its state dir not created yet. */
async function config(): Promise<{ dir: string; conf: string; stateDir: string }> {
  const dir = tempDir();
  chmodSync(dir, 0o755);
  const adminPort = await freePort(); // nothing listens there: no daemon to ask
  const { 'jobcompd.conf': conf } = writeFiles(dir, {
    'rdkafka.conf': 'bootstrap.servers=127.0.0.1:1\n',
    'jobcompd.conf': `ClusterName=perm\nStateDir=state\nJobCompLoc=rdkafka.conf\n[admin]\nListen=127.0.0.1:${adminPort}\n`,
  });
  return { dir, conf: conf as string, stateDir: join(dir, 'state') };
}

async function stateWithOneRecord(stateDir: string): Promise<void> {
  const outbox = Outbox.open(stateDir);
  await outbox.append({ event: JobEvent.finish, jobId: 7, payload: Buffer.from('{"jobid":7}'), source: 'http', receivedAt: Date.now() });
  outbox.close();
}

describe('jobcompd status by a user who may not read the state dir', () => {
  it('without a daemon: a clear error naming the file, exit 77, not "backlog 0"', async () => {
    const { conf, stateDir } = await config();
    await stateWithOneRecord(stateDir);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);

    const r = runCli(['status', '-c', conf], { asUid: NOBODY_ID });
    expect(r.code).toBe(77);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`cannot read the state file ${join(stateDir, STATE_FILE_NAME)}: permission denied`);
    expect(r.stderr).toContain('run jobcompd status as SlurmUser or root');
    expect(r.stderr).toMatch(/asking the daemon at http:\/\/127\.0\.0\.1:\d+\/status failed: fetch failed \(.*ECONNREFUSED/);

    expect(JSON.parse(runCli(['status', '--json', '-c', conf]).stdout)).toMatchObject({ daemon: 'not running', backlog: 1 });
  });

  it('no state file at all is still "not running, backlog 0"', async () => {
    const { conf } = await config();
    const r = runCli(['status', '--json', '-c', conf], { asUid: NOBODY_ID });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ daemon: 'not running', backlog: 0 });
  });

  it('with a daemon running: its numbers, asked over [admin] Listen', async () => {
    const d = await startDaemon({ bootstrapServers: '127.0.0.1:1' }); // no broker: the record waits
    try {
      chmodSync(d.dir, 0o755);
      expect((await post(d.url, numberedBodies(1, 70_000)[0] as Buffer)).status).toBe(201);
      const r = runCli(['status', '--json', '-c', d.configFile], { asUid: NOBODY_ID });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ daemon: 'running', backlog: 1, producer: { state: 'connecting' } });
    } finally {
      await d.stop('SIGKILL');
    }
  });
});

describe('state files root creates', () => {
  it('replay and repair-state give them to the state dir owner, so SlurmUser can open them', async () => {
    const { conf, stateDir } = await config();
    mkdirSync(stateDir, { mode: 0o700 });
    chownSync(stateDir, NOBODY_ID, NOBODY_ID);
    const file = join(stateDir, STATE_FILE_NAME);
    const owner = (): { uid: number; gid: number } => ({ uid: statSync(file).uid, gid: statSync(file).gid });

    const replay = runCli(['replay', '-c', conf, '--timeout', '20']); // nothing saved: drained at once
    expect(replay.code).toBe(0);
    expect(owner()).toEqual({ uid: NOBODY_ID, gid: NOBODY_ID });

    const repair = runCli(['repair-state', '-c', conf]);
    expect(repair.code).toBe(0);
    expect(owner()).toEqual({ uid: NOBODY_ID, gid: NOBODY_ID });
    expect(execFileSync('find', [stateDir, '-not', '-user', String(NOBODY_ID)], { encoding: 'utf8' })).toBe('');

    const status = runCli(['status', '--json', '-c', conf], { asUid: NOBODY_ID });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ daemon: 'not running', backlog: 0 });
  });
});
