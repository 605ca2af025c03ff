// Hook latency: what slurmctld waits per record on the jobcomp/script and prolog paths.
// jobcomp/script forks and waits for one script per job, serially; this does the same:
// sequential runs of the native hook (fresh process, the job's environment, the record
// committed by a running jobcompd before the hook exits), next to /bin/true with the same
// environment (the floor: fork/exec alone) and a Node.js one-shot client sending the same
// record (what a naive hook costs).
//
//   node dist/bench/hook-latency.js [--runs 10000] [--node-runs 1000] [--series 3]

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnvDump } from '../src/record/slurm-env';
import { BenchDaemon, note, option, percentiles, root, runBench, saveResult, startBroker } from './lib';

function run(argv: string[], env: Record<string, string>): Promise<number> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { env, cwd: '/tmp', stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(`${argv.join(' ')} exited ${String(code)}`))));
  });
}

/** `count` sequential runs, each with its own job id (JOBID for jobcomp/script, SLURM_JOB_ID in prolog context). */
async function series(argv: string[], env: Map<string, string>, firstJobId: number, count: number): Promise<number[]> {
  const idVar = env.has('SLURM_JOB_ID') ? 'SLURM_JOB_ID' : 'JOBID';
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(await run(argv, Object.fromEntries([...env, [idVar, String(firstJobId + i)]])));
  return out;
}

type Percentiles = ReturnType<typeof percentiles>;

/** One measurement repeated in several series: the pooled percentiles, and each series' own. */
export interface Measured extends Percentiles {
  series: Percentiles[];
}

export interface HookLatency {
  runs: number;
  nodeRuns: number;
  series: number;
  floor: Measured;
  /** jobcomp/script: the job end environment */
  hook: Measured;
  /** PrologSlurmctld: the job start environment (start records enabled) */
  prolog: Measured;
  node: Measured;
}

function fixtureEnv(prefix: string): Map<string, string> {
  const fixtures = join(root, 'test/fixtures/script-22.05/run2');
  const env = parseEnvDump(readFileSync(join(fixtures, readdirSync(fixtures).find((f) => f.startsWith(prefix)) ?? '')));
  env.delete('PWD');
  return env;
}

function pooled(series: number[][]): Measured {
  return { ...percentiles(series.flat()), series: series.map(percentiles) };
}

export async function hookLatencyBench(opts: { runs: number; nodeRuns: number; series: number }): Promise<HookLatency> {
  const broker = await startBroker();
  const daemon = await BenchDaemon.start({ bootstrapServers: broker.bootstrapServers, clusterName: 'bench-hook', jobCompParams: 'enable_job_start' });
  try {
    const hook = join(daemon.work, 'jobcomp-hook');
    symlinkSync(join(root, 'native/build/jobcompd-hook'), hook);
    writeFileSync(`${hook}.conf`, `socket = ${daemon.socketPath}\nspool = ${join(daemon.work, 'spool')}\n`);
    const env = fixtureEnv('jobcomp.1.');
    const prologEnv = fixtureEnv('prolog_ctld.1.'); // SLURM_SCRIPT_CONTEXT=prolog_slurmctld
    const nodeEnv = new Map([...env, ['JOBCOMPD_SOCKET', daemon.socketPath]]);

    await series([hook], env, 1, Math.min(200, opts.runs)); // warm-up: page cache, first SQLite pages, the daemon's JIT
    // The series are interleaved (floor, hook, prolog, node; again...) so that a noisy
    // neighbour on this shared machine spreads over all of them instead of one.
    const runs: Record<'floor' | 'hook' | 'prolog' | 'node', number[][]> = { floor: [], hook: [], prolog: [], node: [] };
    for (let i = 0; i < opts.series; i++) {
      const base = (i + 1) * 10_000_000;
      runs.floor.push(await series(['/bin/true'], env, 0, opts.runs));
      runs.hook.push(await series([hook], env, base, opts.runs));
      runs.prolog.push(await series([hook], prologEnv, base + 3_000_000, opts.runs));
      runs.node.push(await series([process.execPath, join(root, 'dist/bench/node-hook.js')], nodeEnv, base + 6_000_000, opts.nodeRuns));
      note(`series ${i + 1}/${opts.series}: p50 /bin/true ${percentiles(runs.floor[i] ?? []).p50.toFixed(2)} ms, hook ${percentiles(runs.hook[i] ?? []).p50.toFixed(2)} ms, prolog ${percentiles(runs.prolog[i] ?? []).p50.toFixed(2)} ms, node ${percentiles(runs.node[i] ?? []).p50.toFixed(2)} ms`);
    }
    const spooled = readdirSync(join(daemon.work, 'spool')).length;
    if (spooled > 0) throw new Error(`${spooled} records were spooled instead of committed: the figures would not be the socket path's`);
    return { runs: opts.runs, nodeRuns: opts.nodeRuns, series: opts.series, floor: pooled(runs.floor), hook: pooled(runs.hook), prolog: pooled(runs.prolog), node: pooled(runs.node) };
  } finally {
    await daemon.stop();
    await broker.destroy();
  }
}

/** "median (min-max)" of one percentile over the series. */
function spread(m: Measured, key: keyof Percentiles): string {
  const v = m.series.map((p) => p[key]).sort((a, b) => a - b);
  const median = v[Math.floor((v.length - 1) / 2)] ?? NaN;
  return v.length > 1 ? `${median.toFixed(2)} (${(v[0] ?? NaN).toFixed(2)}-${(v[v.length - 1] ?? NaN).toFixed(2)})` : median.toFixed(2);
}

export function hookLatencyTable(h: HookLatency): string {
  const row = (what: string, runs: number, m: Measured): string => `| ${what} | ${h.series} × ${runs} | ${spread(m, 'p50')} | ${spread(m, 'p99')} | ${m.max.toFixed(2)} |`;
  return [
    '| sequential runs, fresh process each | series × runs | p50 ms, median of the series (min-max) | p99 ms, median (min-max) | max ms, all runs |',
    '|---|---|---|---|---|',
    row('`/bin/true` (fork/exec floor)', h.runs, h.floor),
    row('`jobcompd-hook` as jobcomp/script (end record committed, fsync\'d)', h.runs, h.hook),
    row('`jobcompd-hook` as PrologSlurmctld (start record committed, fsync\'d)', h.runs, h.prolog),
    row('Node.js one-shot client (same end record)', h.nodeRuns, h.node),
  ].join('\n');
}

if (require.main === module) {
  const opts = { runs: option('runs', 10_000), nodeRuns: option('node-runs', 1000), series: option('series', 3) };
  runBench(async () => {
    const h = await hookLatencyBench(opts);
    process.stdout.write(`${hookLatencyTable(h)}\n`);
    note(`saved ${saveResult('hook-latency', h)}`);
  });
}
