// Proves the real-Slurm harness in tools/slurm: Debian's slurmctld, slurmd and
// munged 22.05 on loopback, no mocks. The tests in each describe block run in
// order and share one cluster, the way a daemon test would use it.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { processAlive, SlurmCluster, SlurmOptionsError, SlurmStartError } from '../../tools/slurm/cluster';

jest.setTimeout(240_000);

const JOB_TIMEOUT_MS = 30_000;
const DUMP_TIMEOUT_MS = 15_000;
const FINAL = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT'];

// The lab's dump-env.sh. Slurm runs jobcomp/script and PrologSlurmctld with a
// fresh environment and no arguments, so the output dir is fixed relative to
// the script: <dir of the link>/dumps/<link name>.<jobid>.<epoch>.<pid>.env,
// written to a temporary name and renamed so that readers never see half a file.
const PROBE = `#!/bin/sh
kind=$(basename "$0" .sh)
out=$(dirname "$0")/dumps; mkdir -p "$out"
id=\${JOBID:-\${SLURM_JOB_ID:-unknown}}
f="$out/$kind.$id.$(date +%s.%N).$$"
{ echo "# argv0=$0"; echo "# argc=$#"
  echo "# cwd=$(pwd) uid=$(id -u) ppid=$PPID time=$(date +%s.%N)"
  env | sort; } > "$f.tmp" && mv "$f.tmp" "$f.env"
exit 0
`;

/** Writes the probe into <dir>/probe and links it under the given names; returns the dumps dir. */
async function installProbe(dir: string, names: string[]): Promise<string> {
  const probeDir = path.join(dir, 'probe');
  const dumps = path.join(probeDir, 'dumps');
  await fsp.mkdir(dumps, { recursive: true });
  const script = path.join(probeDir, 'dump-env.sh');
  await fsp.writeFile(script, PROBE, { mode: 0o755 });
  for (const name of names) await fsp.symlink(script, path.join(probeDir, name));
  return dumps;
}

function dumpsOf(dumps: string, kind: string, jobId: number): string[] {
  return fs.readdirSync(dumps).filter((f) => f.startsWith(`${kind}.${jobId}.`) && f.endsWith('.env'));
}

/** Resolves with the dump of `kind` for `jobId` once it appears (fs.watch, bounded). */
function waitForDump(dumps: string, kind: string, jobId: number): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const watcher = fs.watch(dumps);
    const finish = (err: Error | undefined, file?: string): void => {
      clearTimeout(timer);
      watcher.close();
      if (err !== undefined) reject(err);
      else resolve(parseDump(fs.readFileSync(path.join(dumps, file as string), 'utf8')));
    };
    const check = (): void => {
      const [file] = dumpsOf(dumps, kind, jobId);
      if (file !== undefined) finish(undefined, file);
    };
    const timer = setTimeout(() => {
      const present = fs.readdirSync(dumps).join(' ');
      finish(new Error(`no ${kind} dump for job ${jobId} in ${dumps} after ${DUMP_TIMEOUT_MS} ms: ${present}`));
    }, DUMP_TIMEOUT_MS);
    watcher.on('change', check);
    watcher.on('error', (err) => finish(err));
    check(); // after the watch is set up: nothing can slip in between
  });
}

function parseDump(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (line.startsWith('#') || eq < 0) continue;
    vars.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return vars;
}

describe('SlurmCluster with jobcomp/script and PrologSlurmctld', () => {
  let dir: string;
  let dumps: string;
  let cluster: SlurmCluster;

  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'jobcompd-slurm-test-'));
    dumps = await installProbe(dir, ['jobcomp.sh', 'prolog_ctld.sh']);
    const startedAt = Date.now();
    cluster = await SlurmCluster.start({
      dir,
      jobCompType: 'jobcomp/script',
      jobCompLoc: path.join(dir, 'probe', 'jobcomp.sh'),
      prologSlurmctld: path.join(dir, 'probe', 'prolog_ctld.sh'),
    });
    process.stdout.write(`slurm cluster started in ${Date.now() - startedAt} ms\n`);
  });

  afterAll(async () => {
    await cluster?.destroy();
    if (dir !== undefined) await fsp.rm(dir, { recursive: true, force: true });
  });

  test('runs munged, slurmctld and slurmd under its directory, on loopback', async () => {
    const { munged, slurmctld, slurmd } = cluster.pids;
    expect([munged, slurmctld, slurmd]).toEqual([expect.any(Number), expect.any(Number), expect.any(Number)]);
    expect(cluster.confPath).toBe(path.join(dir, 'etc', 'slurm.conf'));
    expect(cluster.env['SLURM_CONF']).toBe(cluster.confPath);
    const conf = fs.readFileSync(cluster.confPath, 'utf8');
    expect(conf).toContain(`SlurmctldPort=${cluster.ports.slurmctld}\n`);
    expect(conf).toContain(`JobCompLoc=${path.join(dir, 'probe', 'jobcomp.sh')}\n`);
    expect(await cluster.scontrol(['show', 'node', 'localhost', '-o'])).toMatch(/\bState=IDLE\b/);
    expect(fs.existsSync(path.join(dir, 'log', 'slurmctld.log'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'munge', 'munge.socket.2'))).toBe(true);
    expect(cluster.logTail('slurmctld')).toMatch(/Running as primary controller/);
    // Every process of the cluster carries its marker, the daemons included.
    expect(cluster.processes()).toEqual(expect.arrayContaining([munged, slurmctld, slurmd]));
  });

  test('a job runs to COMPLETED; jobcomp/script and PrologSlurmctld see it', async () => {
    const id = await cluster.sbatch(['--wrap', 'true']);
    expect(await cluster.waitForJobState(id, FINAL, JOB_TIMEOUT_MS)).toBe('COMPLETED');

    const record = await waitForDump(dumps, 'jobcomp', id);
    expect(record.get('JOBID')).toBe(String(id));
    expect(record.get('JOBSTATE')).toBe('COMPLETED');
    expect(record.get('EXITCODE')).toBe('0:0');
    expect(record.get('WORK_DIR')).toBe(path.join(dir, 'jobs'));

    const prolog = await waitForDump(dumps, 'prolog_ctld', id);
    expect(prolog.get('SLURM_SCRIPT_CONTEXT')).toBe('prolog_slurmctld');
    expect(prolog.get('SLURM_JOB_ID')).toBe(String(id));
    expect(prolog.get('SLURM_CLUSTER_NAME')).toBe('testcluster');
  });

  test('sbatch --parsable and a held job cancelled while pending: CANCELLED, no prolog', async () => {
    const id = await cluster.sbatch(['--parsable', '-H', '--wrap', 'true']);
    expect(await cluster.jobState(id)).toBe('PENDING');
    await cluster.scancel([String(id)]);
    expect(await cluster.waitForJobState(id, ['CANCELLED'], JOB_TIMEOUT_MS)).toBe('CANCELLED');

    const record = await waitForDump(dumps, 'jobcomp', id);
    expect(record.get('JOBSTATE')).toBe('CANCELLED');
    expect(record.get('DB_FLAGS')).toBe('None');
    // The record is written when the job ends; a prolog would have run before it started.
    expect(dumpsOf(dumps, 'prolog_ctld', id)).toEqual([]);
  });

  test('jobState() is undefined for a job Slurm does not know', async () => {
    expect(await cluster.jobState(999_999)).toBeUndefined();
  });

  test('restartController() replaces slurmctld; running and new jobs still complete', async () => {
    const running = await cluster.sbatch(['--wrap', 'sleep 2']);
    await cluster.waitForJobState(running, ['RUNNING'], JOB_TIMEOUT_MS);
    const before = cluster.pids;
    const startedAt = Date.now();
    await cluster.restartController();
    process.stdout.write(`slurmctld restarted in ${Date.now() - startedAt} ms\n`);
    const after = cluster.pids;
    expect(after.slurmctld).toEqual(expect.any(Number));
    expect(after.slurmctld).not.toBe(before.slurmctld);
    expect(processAlive(before.slurmctld as number)).toBe(false);
    expect(after.slurmd).toBe(before.slurmd);
    expect(after.munged).toBe(before.munged);

    // Resolved only once slurmd has re-registered, although the node was busy (MIXED) all along.
    expect(await cluster.scontrol(['show', 'node', 'localhost', '-o'])).not.toMatch(/SlurmdStartTime=None/);
    expect(await cluster.waitForJobState(running, FINAL, JOB_TIMEOUT_MS)).toBe('COMPLETED');
    expect((await waitForDump(dumps, 'jobcomp', running)).get('JOBSTATE')).toBe('COMPLETED');

    const id = await cluster.sbatch(['--wrap', 'true']);
    expect(await cluster.waitForJobState(id, FINAL, JOB_TIMEOUT_MS)).toBe('COMPLETED');
    expect((await waitForDump(dumps, 'jobcomp', id)).get('JOBSTATE')).toBe('COMPLETED');
  });

  test('stop() cancels running jobs and leaves no process of the cluster alive', async () => {
    const id = await cluster.sbatch(['--wrap', 'sleep 300']);
    await cluster.waitForJobState(id, ['RUNNING'], JOB_TIMEOUT_MS);
    const daemons = Object.values(cluster.pids);
    const all = cluster.processes(); // daemons, slurmscriptd, slurmstepd, the job's shell and sleep
    expect(all.length).toBeGreaterThan(daemons.length);

    const startedAt = Date.now();
    await cluster.stop();
    process.stdout.write(`slurm cluster stopped in ${Date.now() - startedAt} ms\n`);
    expect(cluster.pids).toEqual({ munged: undefined, slurmctld: undefined, slurmd: undefined });
    expect(all.filter(processAlive)).toEqual([]);
    expect(cluster.processes()).toEqual([]);
    // The cancelled job was recorded before slurmctld went down.
    expect((await waitForDump(dumps, 'jobcomp', id)).get('JOBSTATE')).toBe('CANCELLED');
    // The directory (logs, state) is kept; stop() is idempotent.
    expect(fs.existsSync(path.join(dir, 'log', 'slurmctld.log'))).toBe(true);
    await cluster.stop();
    await expect(cluster.sbatch(['--wrap', 'true'])).rejects.toThrow(/stopped/);
  });
});

interface Post {
  url: string;
  body: string;
  at: number;
}

describe('SlurmCluster with jobcomp/elasticsearch', () => {
  let cluster: SlurmCluster;
  let server: http.Server;
  const posts: Post[] = [];
  const received = new EventEmitter();

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const post = { url: req.url ?? '', body, at: Date.now() };
        posts.push(post);
        received.emit('post', post);
        res.writeHead(201).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    cluster = await SlurmCluster.start({
      jobCompType: 'jobcomp/elasticsearch',
      jobCompLoc: `http://127.0.0.1:${port}/slurm/_doc`,
    });
  });

  afterAll(async () => {
    const dir = cluster?.dir;
    await cluster?.destroy();
    if (dir !== undefined) expect(fs.existsSync(dir)).toBe(false);
    await new Promise((resolve) => server?.close(resolve));
  });

  /** The POST of job `id`'s record, as soon as the receiver gets it; rejects after `timeoutMs`. */
  function postOf(id: number, timeoutMs: number): Promise<Post> {
    const isOurs = (p: Post): boolean => p.body.includes(`"jobid":${id},`);
    const seen = posts.find(isOurs);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const onPost = (p: Post): void => {
        if (!isOurs(p)) return;
        clearTimeout(timer);
        received.off('post', onPost);
        resolve(p);
      };
      const timer = setTimeout(() => {
        received.off('post', onPost);
        reject(new Error(`no POST for job ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      received.on('post', onPost);
    });
  }

  /** Runs `sbatch --wrap true`; resolves with its record's POST and how long after COMPLETED it came. */
  async function jobAndItsPost(): Promise<{ id: number; post: Post; lagMs: number }> {
    const id = await cluster.sbatch(['--wrap', 'true']);
    await cluster.waitForJobState(id, ['COMPLETED'], JOB_TIMEOUT_MS);
    const endedAt = Date.now();
    // The sender thread polls its queue once a second; 30 s would mean it missed its wake-up.
    const post = await postOf(id, 10_000);
    return { id, post, lagMs: post.at - endedAt };
  }

  test('the first record is POSTed within seconds of the job ending (no 30 s start-up race)', async () => {
    const { id, post, lagMs } = await jobAndItsPost();
    process.stdout.write(`elasticsearch POST ${lagMs} ms after COMPLETED\n`);
    expect(post.url).toBe('/slurm/_doc');
    expect(JSON.parse(post.body)).toMatchObject({ jobid: id, state: 'COMPLETED' });
  });

  test('after restartController() too', async () => {
    await cluster.restartController();
    const { id, post, lagMs } = await jobAndItsPost();
    process.stdout.write(`elasticsearch POST ${lagMs} ms after COMPLETED, after a restart\n`);
    expect(JSON.parse(post.body)).toMatchObject({ jobid: id, state: 'COMPLETED' });
  });
});

describe('SlurmCluster start-up failures', () => {
  /** Live processes whose command line names `dir`. */
  function processesNaming(dir: string): number[] {
    return fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .map(Number)
      .filter((pid) => {
        try {
          return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir) && processAlive(pid);
        } catch {
          return false;
        }
      });
  }

  test('slurmctld refusing its configuration: SlurmStartError with its log tail, nothing left running', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'jobcompd-slurm-test-'));
    try {
      const attempt = SlurmCluster.start({ dir, extraConf: ['NoSuchOption=1'] });
      await expect(attempt).rejects.toBeInstanceOf(SlurmStartError);
      await expect(attempt).rejects.toThrow(/starting slurmctld failed: slurmctld exited with code 1/);
      await expect(attempt).rejects.toThrow(/last slurmctld log lines[\s\S]*unrecognized key: NoSuchOption/);
      expect(processesNaming(dir)).toEqual([]);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  test('a JobCompLoc that is not an executable file is refused before anything starts', async () => {
    const missing = path.join(os.tmpdir(), 'jobcompd-no-such-script.sh');
    const attempt = SlurmCluster.start({ jobCompType: 'jobcomp/script', jobCompLoc: missing });
    await expect(attempt).rejects.toBeInstanceOf(SlurmOptionsError);
    await expect(attempt).rejects.toThrow(/JobCompLoc=.*not an executable file/);
  });
});
