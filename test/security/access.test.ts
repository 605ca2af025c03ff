// Who may hand records to jobcompd: the hook socket checks its peer's uid (SO_PEERCRED,
// from the kernel) and can be given to a group; an HTTP listener off loopback needs basic
// auth (which Slurm's elasticsearch plugin sends from its URL) or an explicit opt-out.

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { consumeAll } from '../../tools/kafka/consume';
import { SlurmCluster } from '../../tools/slurm/cluster';
import { runCli, tempDir, writeFiles } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { post } from '../helpers/daemon';
import { HOOK_BINARY } from '../helpers/hook';
import { numberedBodies } from '../helpers/records';
import { records } from '../helpers/slurm-suite';
import { NOBODY_ID } from '../../src/record/slurm-values';

jest.setTimeout(120_000);

const suite = useBroker({ autoCreateTopics: true });

/** Run the native hook as another user, the way slurmctld would run it as SlurmUser. */
function hookAs(uid: number, hookConf: string, env: Record<string, string>): { code: number; stderr: string } {
  const dir = tempDir();
  const { hook } = writeFiles(dir, { hook: '', 'hook.conf': hookConf });
  execFileSync('cp', [HOOK_BINARY, hook as string]);
  execFileSync('chmod', ['755', dir, hook as string]);
  try {
    execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', hook as string], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { status: number; stderr: Buffer };
    return { code: e.status, stderr: e.stderr.toString() };
  }
}

const JOB_ENV = { JOBID: '', UID: '0', GID: '0', PROCS: '1', NODECNT: '1', EXITCODE: '0:0', DERIVED_EC: '0:0', JOBSTATE: 'COMPLETED', START: '1795319410', END: '1795319411' };

describe('the hook socket', () => {
  it('refuses a peer whose uid is not allowed (SO_PEERCRED) and says so in the log', async () => {
    // a world-writable socket, so that only the uid check stands in the way
    const d = await suite.daemon({ clusterName: 'peers', hookConf: 'SocketMode=0666' });
    execFileSync('chmod', ['0711', d.dir]); // let nobody reach the socket's directory
    const conf = `socket = ${d.hookSocket}\nspool = ${join(d.dir, 'nobody-spool')}\ntimeout_ms = 2000\n`;
    const run = hookAs(NOBODY_ID, conf, { ...JOB_ENV, JOBID: '60001' });
    expect(run.code).not.toBe(0); // refused, and it cannot write a spool it does not own either
    const refused = await d.waitForLog((l) => l.logEvent === 'hook.peer-refused');
    expect(refused).toMatchObject({ uid: NOBODY_ID });
    expect(JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout)).toMatchObject({ backlog: 0, quarantined: 0 });
  });

  it('a refused peer that keeps its connection open loses it after [hook] Timeout: it cannot hold the only connection slot', async () => {
    const d = await suite.daemon({ clusterName: 'peers-held', hookConf: 'SocketMode=0666\nTimeout=1\nMaxConnections=1' });
    execFileSync('chmod', ['0711', d.dir]);
    // as nobody: reads the answer and the end of stream, keeps its own end open and writes
    // a byte every 50 ms until jobcompd has closed the connection (EPIPE)
    const holder = `
      const s = require('node:net').connect({ path: process.argv[1], allowHalfOpen: true });
      let answer = '';
      s.on('data', (b) => (answer += b.toString('latin1')));
      s.on('end', () => {
        const t0 = Date.now();
        const tick = setInterval(() => s.write('x'), 50);
        s.on('error', () => {
          clearInterval(tick);
          console.log(JSON.stringify({ status: answer[0], heldMs: Date.now() - t0 }));
          process.exit(0);
        });
      });`;
    const held = await new Promise<{ status: string; heldMs: number }>((resolve, reject) => {
      execFile('setpriv', [`--reuid=${NOBODY_ID}`, `--regid=${NOBODY_ID}`, '--clear-groups', process.execPath, '-e', holder, d.hookSocket], (err, stdout) =>
        err ? reject(err) : resolve(JSON.parse(stdout) as { status: string; heldMs: number }),
      );
    });
    expect(held.status).toBe('E');
    expect(held.heldMs).toBeGreaterThanOrEqual(900); // the deadline, not at once
    // the only slot is free again: root's hook is answered, not closed at once and spooled
    const conf = `socket = ${d.hookSocket}\nspool = ${join(d.dir, 'root-spool')}\n`;
    expect(hookAs(0, conf, { ...JOB_ENV, JOBID: '60003' })).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout)).toMatchObject({ quarantined: 0 });
    expect(existsSync(join(d.dir, 'root-spool'))).toBe(false);
  });

  it('accepts that peer once it is in AllowedUsers, reaching the socket through its group', async () => {
    const d = await suite.daemon({ clusterName: 'peers2', hookConf: 'SocketMode=0660\nSocketGroup=nogroup\nAllowedUsers=root, nobody' });
    execFileSync('chmod', ['0711', d.dir]);
    const nogroup = Number(execFileSync('getent', ['group', 'nogroup'], { encoding: 'utf8' }).split(':')[2]);
    const st = statSync(d.hookSocket);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(nogroup);
    // the hook runs as nobody:nogroup: the group lets it connect, AllowedUsers lets it send
    const conf = `socket = ${d.hookSocket}\nspool = ${join(d.dir, 'nobody-spool')}\n`;
    expect(hookAs(NOBODY_ID, conf, { ...JOB_ENV, JOBID: '60002' })).toEqual({ code: 0, stderr: '' });
    const [m] = records(await consumeAll(suite.broker().bootstrapServers, 'peers2', { count: 1, timeoutMs: 30_000 }));
    expect(m?.jobid).toBe(60002);
  });

  it('an unknown user in AllowedUsers is a configuration error', () => {
    const dir = tempDir();
    writeFiles(dir, { 'rdkafka.conf': 'bootstrap.servers=127.0.0.1:1\n', 'jobcompd.conf': 'ClusterName=x\nJobCompLoc=rdkafka.conf\n[hook]\nAllowedUsers=root, no-such-user-here\n' });
    const r = runCli(['check-config', '-c', join(dir, 'jobcompd.conf')]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('jobcompd.conf:4: AllowedUsers: no such user: "no-such-user-here"');
  });
});

describe('the HTTP listener off loopback', () => {
  // [admin] has no authentication at all; [http] may have basic auth instead of the opt-out.
  it.each([
    ['http', '9200'],
    ['admin', '9201'],
  ])('[%s] will not listen on a non-loopback address without an explicit opt-out', (section, port) => {
    const dir = tempDir();
    const conf = `ClusterName=x\nJobCompLoc=rdkafka.conf\n[${section}]\nListen=0.0.0.0:${port}\n`;
    writeFiles(dir, { 'rdkafka.conf': 'bootstrap.servers=127.0.0.1:1\n', 'jobcompd.conf': conf });
    const r = runCli(['check-config', '-c', join(dir, 'jobcompd.conf')]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`jobcompd.conf: [${section}] Listen`);
    writeFiles(dir, { 'jobcompd.conf': `${conf}AllowUnauthenticated=yes\n` });
    expect(runCli(['check-config', '-c', join(dir, 'jobcompd.conf')]).code).toBe(0);
  });

  it('with basic auth: 401 without or with wrong credentials, 201 with them; the password is never shown', async () => {
    const secret = 'p4ss-not-in-logs';
    const d = await suite.daemon({ clusterName: 'basic', httpConf: `BasicAuthUser=slurm\nBasicAuthPassword=${secret}` });
    const [a, b] = numberedBodies(2, 61_000);
    expect((await post(d.url, a as Buffer)).status).toBe(401);
    const wrong = await fetch(`${d.url}/slurm/_doc`, { method: 'POST', body: a as Buffer, headers: { Authorization: `Basic ${Buffer.from('slurm:nope').toString('base64')}` } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Basic realm="jobcompd"');
    const right = await fetch(`${d.url}/slurm/_doc`, { method: 'POST', body: b as Buffer, headers: { Authorization: `Basic ${Buffer.from(`slurm:${secret}`).toString('base64')}` } });
    expect(right.status).toBe(201);
    await d.waitForLog((l) => l.logEvent === 'http.auth-refused');
    const shown = [JSON.stringify(d.logs), runCli(['check-config', '--json', '-c', d.configFile]).stdout, runCli(['status', '--json', '-c', d.configFile]).stdout];
    for (const out of shown) expect(out).not.toContain(secret);
  });

  it('refusals are logged at most once a minute, with their count, not once each', async () => {
    const d = await suite.daemon({ clusterName: 'basicflood', httpConf: 'BasicAuthUser=slurm\nBasicAuthPassword=flood-secret' });
    const bodies = numberedBodies(41, 62_000);
    const wrong = { Authorization: `Basic ${Buffer.from('slurm:a-much-longer-wrong-password').toString('base64')}` };
    const statuses = [];
    for (const body of bodies.slice(0, 40)) statuses.push((await fetch(`${d.url}/slurm/_doc`, { method: 'POST', body, headers: wrong })).status);
    expect(new Set(statuses)).toEqual(new Set([401]));
    const right = { Authorization: `Basic ${Buffer.from('slurm:flood-secret').toString('base64')}` };
    expect((await fetch(`${d.url}/slurm/_doc`, { method: 'POST', body: bodies[40] as Buffer, headers: right })).status).toBe(201);
    await d.waitForLog((l) => l.logEvent === 'record.committed' && l.jobId === 62_040, 'the good record');
    const lines = d.logs.filter((l) => l.logEvent === 'http.auth-refused');
    expect(lines).toHaveLength(1);
  });

  it('Slurm 22.05 jobcomp/elasticsearch sends the credentials of its URL: records arrive', async () => {
    const d = await suite.daemon({ clusterName: 'basicslurm', httpConf: 'BasicAuthUser=slurm\nBasicAuthPassword=from-the-url' });
    const slurm = await SlurmCluster.start({ clusterName: 'basicslurm', jobCompType: 'jobcomp/elasticsearch', jobCompLoc: `http://slurm:from-the-url@127.0.0.1:${d.port}/slurm/_doc` });
    try {
      const id = await slurm.sbatch(['-J', 'auth', '-o', '/dev/null', '--wrap', 'true']);
      const [rec] = records(await consumeAll(suite.broker().bootstrapServers, 'basicslurm', { count: 1, timeoutMs: 60_000 }));
      expect(rec).toMatchObject({ jobid: id, job_name: 'auth', state: 'COMPLETED' });
    } finally {
      await slurm.destroy();
    }
  });
});
