// Hook latency: what slurmctld waits per record on the jobcomp/script and prolog paths.
// jobcomp/script forks and waits for one script per job, serially; this does the same:
// sequential runs of the native hook (fresh process, the job's environment, the record
// committed by a running jobcompd before the hook exits), next to /bin/true with the same
// environment (the floor: fork/exec alone) and a Node.js one-shot client sending the same
// record (what a naive hook costs).
//
//   node dist/bench/hook-latency.js [--runs 10000] [--node-runs 1000]

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnvDump } from '../src/record/slurm-env';
import { BenchDaemon, note, option, runBench, percentiles, root, saveResult, startBroker } from './lib';

function run(argv: string[], env: Record<string, string>): Promise<number> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { env, cwd: '/tmp', stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`${argv.join(' ')} exited ${String(code)}`))));
  });
}

async function series(argv: string[], env: Map<string, string>, firstJobId: number, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(await run(argv, Object.fromEntries([...env, ['JOBID', String(firstJobId + i)]])));
  return out;
}

export interface HookLatency {
  runs: number;
  nodeRuns: number;
  floor: ReturnType<typeof percentiles>;
  hook: ReturnType<typeof percentiles>;
  node: ReturnType<typeof percentiles>;
}

export async function hookLatencyBench(opts: { runs: number; nodeRuns: number }): Promise<HookLatency> {
  const broker = await startBroker();
  const daemon = await BenchDaemon.start({ bootstrapServers: broker.bootstrapServers, clusterName: 'bench-hook' });
  try {
    const hook = join(daemon.work, 'jobcomp-hook');
    symlinkSync(join(root, 'native/build/jobcompd-hook'), hook);
    writeFileSync(`${hook}.conf`, `socket = ${daemon.socketPath}\nspool = ${join(daemon.work, 'spool')}\n`);
    const fixtures = join(root, 'test/fixtures/script-22.05/run2');
    const env = parseEnvDump(readFileSync(join(fixtures, readdirSync(fixtures).find((f) => f.startsWith('jobcomp.1.')) ?? '')));
    env.delete('PWD');

    await series([hook], env, 1, Math.min(200, opts.runs)); // warm-up: page cache, first SQLite pages, the daemon's JIT
    const floor = percentiles(await series(['/bin/true'], env, 0, opts.runs));
    note(`/bin/true: ${JSON.stringify(floor)}`);
    const hooked = percentiles(await series([hook], env, 1_000_000, opts.runs));
    note(`jobcompd-hook: ${JSON.stringify(hooked)}`);
    const nodeEnv = new Map([...env, ['JOBCOMPD_SOCKET', daemon.socketPath]]);
    const node = percentiles(await series([process.execPath, join(root, 'dist/bench/node-hook.js')], nodeEnv, 2_000_000, opts.nodeRuns));
    note(`node one-shot: ${JSON.stringify(node)}`);
    const spooled = readdirSync(join(daemon.work, 'spool')).length;
    if (spooled > 0) throw new Error(`${spooled} records were spooled instead of committed: the figures would not be the socket path's`);
    return { runs: opts.runs, nodeRuns: opts.nodeRuns, floor, hook: hooked, node };
  } finally {
    await daemon.stop();
    await broker.destroy();
  }
}

export function hookLatencyTable(h: HookLatency): string {
  const row = (what: string, runs: number, p: ReturnType<typeof percentiles>): string => `| ${what} | ${runs} | ${p.p50.toFixed(2)} | ${p.p99.toFixed(2)} | ${p.max.toFixed(2)} |`;
  return [
    '| sequential runs, fresh process each | runs | p50 ms | p99 ms | max ms |',
    '|---|---|---|---|---|',
    row('`/bin/true` (fork/exec floor)', h.runs, h.floor),
    row('`jobcompd-hook` (committed, fsync\'d)', h.runs, h.hook),
    row('Node.js one-shot client (same record)', h.nodeRuns, h.node),
  ].join('\n');
}

if (require.main === module) {
  const opts = { runs: option('runs', 10_000), nodeRuns: option('node-runs', 1000) };
  runBench(async () => {
    const h = await hookLatencyBench(opts);
    process.stdout.write(`${hookLatencyTable(h)}\n`);
    note(`saved ${saveResult('hook-latency', h)}`);
  });
}
