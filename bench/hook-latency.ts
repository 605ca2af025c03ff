// Hook latency: what slurmctld waits per record on the jobcomp/script path.
// jobcomp/script forks and waits for one script per job, serially; this does the same:
// N sequential runs of the native hook (fresh process, the job's environment, the record
// committed by a running jobcompd before the hook exits), next to /bin/true with the same
// environment (the floor: fork/exec alone).
//
//   node dist/bench/hook-latency.js [runs]        (make bench)

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { KafkaBroker, findProjectRoot } from '../tools/kafka/broker';
import { parseEnvDump } from '../src/record/slurm-env';

const root = findProjectRoot();
const runs = Number(process.argv[2] ?? 2000);

function run(path: string, env: Record<string, string>): Promise<number> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], { env, cwd: '/tmp', stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`${path} exited ${String(code)}`))));
  });
}

function summary(ms: number[]): { p50: number; p99: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? NaN };
}

async function series(path: string, env: Map<string, string>, firstJobId: number, count = runs): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(await run(path, Object.fromEntries([...env, ['JOBID', String(firstJobId + i)]])));
  }
  return out;
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'jobcompd-bench-'));
  const broker = await KafkaBroker.start({ autoCreateTopics: true });
  const daemon = spawn(join(root, 'bin/jobcompd'), ['run', '-c', join(work, 'jobcompd.conf')], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    writeFileSync(join(work, 'rdkafka.conf'), `bootstrap.servers=${broker.bootstrapServers}\n`);
    writeFileSync(
      join(work, 'jobcompd.conf'),
      `ClusterName=bench\nStateDir=${join(work, 'state')}\nJobCompLoc=${join(work, 'rdkafka.conf')}\nLogLevel=info\n[admin]\nListen=off\n[http]\nListen=off\n[hook]\nSocket=${join(work, 'hook.sock')}\nSpool=${join(work, 'spool')}\n`,
    );
    await ready(daemon);
    const hook = join(work, 'jobcomp-hook');
    symlinkSync(join(root, 'native/build/jobcompd-hook'), hook);
    writeFileSync(`${hook}.conf`, `socket = ${join(work, 'hook.sock')}\nspool = ${join(work, 'spool')}\n`);
    const fixtures = join(root, 'test/fixtures/script-22.05/run2');
    const env = parseEnvDump(readFileSync(join(fixtures, readdirSync(fixtures).find((f) => f.startsWith('jobcomp.1.')) ?? '')));
    env.delete('PWD');

    await series(hook, env, 1, Math.min(200, runs)); // warm-up: page cache, first SQLite pages, JIT of the daemon
    const floor = summary(await series('/bin/true', env, 0));
    const hooked = summary(await series(hook, env, 1_000_000));
    const spooled = readdirSync(join(work, 'spool')).length;
    const fmt = (n: number): string => n.toFixed(2).padStart(8);
    process.stdout.write(
      [
        `hook latency, ${runs} sequential runs each (${cpus().length} cores, ${cpus()[0]?.model ?? '?'})`,
        `                                      p50 ms   p99 ms   max ms`,
        `/bin/true (fork/exec floor)          ${fmt(floor.p50)} ${fmt(floor.p99)} ${fmt(floor.max)}`,
        `jobcompd-hook (committed, fsync'd)   ${fmt(hooked.p50)} ${fmt(hooked.p99)} ${fmt(hooked.max)}`,
        `records spooled instead of committed: ${spooled}`,
        JSON.stringify({ bench: 'hook-latency', runs, floor, hook: hooked, spooled }),
        '',
      ].join('\n'),
    );
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => daemon.once('exit', resolve));
    await broker.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

function ready(daemon: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!daemon.stdout) return reject(new Error('no stdout'));
    createInterface({ input: daemon.stdout }).on('line', (line) => {
      if (line.includes('"jobcompd ready"')) resolve();
    });
    daemon.once('exit', (code) => reject(new Error(`jobcompd exited (${String(code)})`)));
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
