// Hook latency: what slurmctld waits per record on the jobcomp/script and prolog paths.
// jobcomp/script forks and waits for one script per job, serially; this does the same:
// sequential runs of the native hook (fresh process, the job's environment, the record
// committed by a running jobcompd before the hook exits), next to /bin/true with the same
// environment (the floor: fork/exec alone) and a Node.js one-shot client sending the same
// record (what a naive hook costs). Two more views of the same:
//   - the hook against answer-only-server.ts (answers at once, commits nothing): the hook's
//     own cost and the socket's, without jobcompd's commit;
//   - a C launcher (launcher.c: fork, exec, wait, as slurmctld does; Node's spawn() costs
//     over a millisecond of its own) running /bin/true and the hook: what the jobcomp/script
//     path carries in records/s, one record after the other; beside them a static /bin/true
//     (static-true.c) and the hook linked dynamically (HOOK_LINK=dynamic), the other side of
//     native/Makefile's static link; and from the launcher, the hook
//     against the floors of any receiver: a C server (durable-answer-server.c) and a Node.js
//     one (answer-only-server.ts), each answering at once, and each writing the message and
//     fdatasyncing it before it answers: what any durable receiver pays, in C and in Node.js;
//   - fdatasync of this disk, in the state directory: a commit cannot be faster.
//
//   node dist/bench/hook-latency.js [--runs 10000] [--node-runs 1000] [--series 3]

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, fdatasyncSync, openSync, readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnvDump } from '../src/record/slurm-env';
import { BenchDaemon, note, option, percentiles, root, runBench, saveResult, startAnswerOnlyServer, startAnswerServer, startBroker, type FloorServer } from './lib';

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

/** `count` sequential runs by the C launcher (fork, exec, wait), each with its own job id; the milliseconds of each. */
function launcherSeries(launcher: string, program: string, env: Map<string, string>, firstJobId: number, count: number): number[] {
  const r = spawnSync(launcher, [String(count), String(firstJobId), program], { env: Object.fromEntries(env), cwd: '/tmp', encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`launcher ${program} exited ${String(r.status)}: ${r.stderr}`);
  return r.stdout.trim().split('\n').map(Number);
}

/** bench/<name>.c, compiled into `dir` (cc, as the native hook is) with `link`'s flags; the executable's path. */
function compileBenchProgram(dir: string, name: 'launcher' | 'durable-answer-server' | 'static-true', link: string[] = []): string {
  const out = join(dir, name);
  const r = spawnSync('cc', ['-std=c99', '-O2', '-Wall', '-Wextra', '-Werror', ...link, '-o', out, join(root, `bench/${name}.c`)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot compile bench/${name}.c: ${r.stderr}`);
  return out;
}

/** The native hook linked against the shared libc (native/Makefile, HOOK_LINK=dynamic), built into `dir`. */
function buildDynamicHook(dir: string): string {
  const build = join(dir, 'hook-dynamic');
  const r = spawnSync('make', ['-s', '-C', join(root, 'native'), 'HOOK_LINK=dynamic', `BUILD=${build}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot build the hook with HOOK_LINK=dynamic: ${r.stderr}`);
  return join(build, 'jobcompd-hook');
}

/** durable-answer-server.c: answers at once (`sync` false), or after writing and fdatasyncing the message. */
function startCAnswerServer(program: string, sync: boolean): Promise<FloorServer> {
  return startAnswerServer('durable-answer-server', (dir) => [program, join(dir, 'answer.sock'), join(dir, 'data'), ...(sync ? [] : ['--no-sync'])]);
}

/**
 * fdatasync after writing 12 KiB (what one record's commit writes to the WAL: three pages),
 * in `dir`: at the end of the file (it grows, as a WAL does until its first reset) and over
 * what was written before (as a WAL reused after a checkpoint). The milliseconds of each.
 */
function fdatasyncSeries(dir: string, count: number): { append: number[]; overwrite: number[] } {
  const file = join(dir, 'fdatasync-probe');
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(12 * 1024, 0x5a);
  const timed = (offset: number): number => {
    writeSync(fd, block, 0, block.length, offset);
    const t0 = process.hrtime.bigint();
    fdatasyncSync(fd);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  try {
    const append = Array.from({ length: count }, (_, i) => timed(i * block.length));
    const overwrite = Array.from({ length: count }, (_, i) => timed(i * block.length));
    return { append, overwrite };
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
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
  /** the hook against answer-only-server.ts: no commit */
  answerOnly: Measured;
  /** the C launcher: /bin/true, and the hook as jobcomp/script */
  launcherFloor: Measured;
  launcherHook: Measured;
  /** the same without the dynamic loader: static-true.c; and with it: the hook linked dynamically */
  launcherStaticFloor: Measured;
  launcherHookDynamic: Measured;
  /** the same against a daemon with [hook] JournalBytes=0: answered after the state file's commit */
  launcherHookNoJournal: Measured;
  /** the C launcher running the hook against the floors of any receiver: C and Node.js servers, answering at once or after an fdatasync */
  launcherCAnswer: Measured;
  launcherCDurable: Measured;
  launcherNodeAnswer: Measured;
  launcherNodeDurable: Measured;
  /** fdatasync of 12 KiB in the state directory's file system */
  fdatasyncAppend: Measured;
  fdatasyncOverwrite: Measured;
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
  const noJournal = await BenchDaemon.start({ bootstrapServers: broker.bootstrapServers, clusterName: 'bench-hook-no-journal', jobCompParams: 'enable_job_start', hookConf: 'JournalBytes=0' });
  try {
    const hook = join(daemon.work, 'jobcomp-hook');
    symlinkSync(join(root, 'native/build/jobcompd-hook'), hook);
    writeFileSync(`${hook}.conf`, `socket = ${daemon.socketPath}\nspool = ${join(daemon.work, 'spool')}\n`);
    const hookNoJournal = join(noJournal.work, 'jobcomp-hook');
    symlinkSync(join(root, 'native/build/jobcompd-hook'), hookNoJournal);
    writeFileSync(`${hookNoJournal}.conf`, `socket = ${noJournal.socketPath}\nspool = ${join(noJournal.work, 'spool')}\n`);
    const env = fixtureEnv('jobcomp.1.');
    const prologEnv = fixtureEnv('prolog_ctld.1.'); // SLURM_SCRIPT_CONTEXT=prolog_slurmctld
    const nodeEnv = new Map([...env, ['JOBCOMPD_SOCKET', daemon.socketPath]]);
    const launcher = compileBenchProgram(daemon.work, 'launcher');
    const cServer = compileBenchProgram(daemon.work, 'durable-answer-server');
    const staticTrue = compileBenchProgram(daemon.work, 'static-true', ['-static-pie']);
    const hookDynamic = join(daemon.work, 'jobcomp-hook-dynamic');
    symlinkSync(buildDynamicHook(daemon.work), hookDynamic);
    writeFileSync(`${hookDynamic}.conf`, `socket = ${daemon.socketPath}\nspool = ${join(daemon.work, 'spool')}\n`);
    const servers: FloorServer[] = [];
    /** a hook (its own name and .conf) sending to `server`, stopped with the others at the end */
    const hookTo = async (name: string, server: Promise<FloorServer>): Promise<string> => {
      const started = await server;
      servers.push(started);
      const path = join(daemon.work, name);
      symlinkSync(join(root, 'native/build/jobcompd-hook'), path);
      writeFileSync(`${path}.conf`, `socket = ${started.address}\nspool = ${join(daemon.work, 'spool')}\n`);
      return path;
    };

    await series([hook], env, 1, Math.min(200, opts.runs)); // warm-up: page cache, first SQLite pages, the daemon's JIT
    // The series are interleaved (floor, hook, prolog, node; again...) so that a noisy
    // neighbour on this shared machine spreads over all of them instead of one.
    type Kind =
      | 'floor' | 'hook' | 'prolog' | 'node' | 'answerOnly' | 'launcherFloor' | 'launcherHook' | 'launcherStaticFloor' | 'launcherHookDynamic' | 'launcherHookNoJournal'
      | 'launcherCAnswer' | 'launcherCDurable' | 'launcherNodeAnswer' | 'launcherNodeDurable' | 'fdatasyncAppend' | 'fdatasyncOverwrite';
    const runs: Record<Kind, number[][]> = {
      floor: [], hook: [], prolog: [], node: [], answerOnly: [], launcherFloor: [], launcherHook: [], launcherStaticFloor: [], launcherHookDynamic: [], launcherHookNoJournal: [],
      launcherCAnswer: [], launcherCDurable: [], launcherNodeAnswer: [], launcherNodeDurable: [], fdatasyncAppend: [], fdatasyncOverwrite: [],
    };
    try {
      const bareHook = await hookTo('answer-only-hook', startAnswerOnlyServer('socket'));
      const floors: [Kind, string][] = [
        ['launcherCAnswer', await hookTo('c-answer-hook', startCAnswerServer(cServer, false))],
        ['launcherCDurable', await hookTo('c-durable-hook', startCAnswerServer(cServer, true))],
        ['launcherNodeAnswer', bareHook],
        ['launcherNodeDurable', await hookTo('node-durable-hook', startAnswerOnlyServer('socket-durable'))],
      ];
      for (const [, floorHook] of floors) launcherSeries(launcher, floorHook, env, 0, Math.min(200, opts.runs)); // warm-up
      launcherSeries(launcher, hookNoJournal, env, 1, Math.min(200, opts.runs));
      launcherSeries(launcher, hookDynamic, env, 2_000_000, Math.min(200, opts.runs));
      for (let i = 0; i < opts.series; i++) {
        const base = (i + 1) * 10_000_000;
        runs.floor.push(await series(['/bin/true'], env, 0, opts.runs));
        runs.hook.push(await series([hook], env, base, opts.runs));
        runs.prolog.push(await series([hook], prologEnv, base + 3_000_000, opts.runs));
        runs.node.push(await series([process.execPath, join(root, 'dist/bench/node-hook.js')], nodeEnv, base + 6_000_000, opts.nodeRuns));
        runs.answerOnly.push(await series([bareHook], env, base, opts.runs));
        runs.launcherFloor.push(launcherSeries(launcher, '/bin/true', env, 0, opts.runs));
        runs.launcherHook.push(launcherSeries(launcher, hook, env, base + 7_000_000, opts.runs));
        runs.launcherStaticFloor.push(launcherSeries(launcher, staticTrue, env, 0, opts.runs));
        runs.launcherHookDynamic.push(launcherSeries(launcher, hookDynamic, env, base + 8_000_000, opts.runs));
        runs.launcherHookNoJournal.push(launcherSeries(launcher, hookNoJournal, env, base + 7_000_000, opts.runs));
        for (const [kind, floorHook] of floors) runs[kind].push(launcherSeries(launcher, floorHook, env, 0, opts.runs));
        const synced = fdatasyncSeries(daemon.work, Math.min(opts.runs, 2000));
        runs.fdatasyncAppend.push(synced.append);
        runs.fdatasyncOverwrite.push(synced.overwrite);
        const p50 = (k: Kind): string => percentiles(runs[k][i] ?? []).p50.toFixed(2);
        note(
          `series ${i + 1}/${opts.series}: p50 /bin/true ${p50('floor')} ms, hook ${p50('hook')} ms, prolog ${p50('prolog')} ms, node ${p50('node')} ms, ` +
            `hook to an answer-only server ${p50('answerOnly')} ms; C launcher: /bin/true ${p50('launcherFloor')} ms, hook ${p50('launcherHook')} ms (${p50('launcherHookNoJournal')} without the journal), ` +
            `static /bin/true ${p50('launcherStaticFloor')} ms, hook linked dynamically ${p50('launcherHookDynamic')} ms, ` +
            `hook to C ${p50('launcherCAnswer')} ms answering, ${p50('launcherCDurable')} ms syncing, to Node.js ${p50('launcherNodeAnswer')} ms answering, ${p50('launcherNodeDurable')} ms syncing; ` +
            `fdatasync ${p50('fdatasyncAppend')} ms appending, ${p50('fdatasyncOverwrite')} ms overwriting`,
        );
      }
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
    const spooled = readdirSync(join(daemon.work, 'spool')).length + readdirSync(join(noJournal.work, 'spool')).length;
    if (spooled > 0) throw new Error(`${spooled} records were spooled instead of committed: the figures would not be the socket path's`);
    return {
      runs: opts.runs,
      nodeRuns: opts.nodeRuns,
      series: opts.series,
      floor: pooled(runs.floor),
      hook: pooled(runs.hook),
      prolog: pooled(runs.prolog),
      node: pooled(runs.node),
      answerOnly: pooled(runs.answerOnly),
      launcherFloor: pooled(runs.launcherFloor),
      launcherHook: pooled(runs.launcherHook),
      launcherStaticFloor: pooled(runs.launcherStaticFloor),
      launcherHookDynamic: pooled(runs.launcherHookDynamic),
      launcherHookNoJournal: pooled(runs.launcherHookNoJournal),
      launcherCAnswer: pooled(runs.launcherCAnswer),
      launcherCDurable: pooled(runs.launcherCDurable),
      launcherNodeAnswer: pooled(runs.launcherNodeAnswer),
      launcherNodeDurable: pooled(runs.launcherNodeDurable),
      fdatasyncAppend: pooled(runs.fdatasyncAppend),
      fdatasyncOverwrite: pooled(runs.fdatasyncOverwrite),
    };
  } finally {
    await daemon.stop();
    await noJournal.stop();
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
    row('`jobcompd-hook` against a server that answers at once and commits nothing', h.runs, h.answerOnly),
    row('fdatasync of 12 KiB appended to a file in the state directory (no process started)', Math.min(h.runs, 2000), h.fdatasyncAppend),
    row('fdatasync of 12 KiB written over earlier data, same file (no process started)', Math.min(h.runs, 2000), h.fdatasyncOverwrite),
  ].join('\n');
}

/** What the jobcomp/script path carries: the C launcher's runs, one after the other. */
export function launcherTable(h: HookLatency): string {
  const perSecond = (m: Measured): string => {
    const v = m.series.map((p) => 1000 / p.mean).sort((a, b) => a - b);
    return `${(v[Math.floor((v.length - 1) / 2)] ?? NaN).toFixed(0)} (${(v[0] ?? NaN).toFixed(0)}-${(v[v.length - 1] ?? NaN).toFixed(0)})`;
  };
  const row = (what: string, m: Measured): string => `| ${what} | ${h.series} × ${h.runs} | ${spread(m, 'p50')} | ${spread(m, 'p99')} | ${perSecond(m)} |`;
  return [
    '| fork, exec, wait from C, one after the other (as slurmctld runs jobcomp/script) | series × runs | p50 ms, median (min-max) | p99 ms, median (min-max) | records/s (1000 / mean ms), median (min-max) |',
    '|---|---|---|---|---|',
    row('`/bin/true`', h.launcherFloor),
    row('`jobcompd-hook` as jobcomp/script (end record committed, fsync\'d)', h.launcherHook),
    row('a static `/bin/true` (`static-true.c`, static-pie: no dynamic loader)', h.launcherStaticFloor),
    row('`jobcompd-hook` linked dynamically (`HOOK_LINK=dynamic`), as jobcomp/script', h.launcherHookDynamic),
    row('`jobcompd-hook` as jobcomp/script, `[hook] JournalBytes=0` (answered after the state file\'s commit, as before the hook journal)', h.launcherHookNoJournal),
    row('`jobcompd-hook` against a C server that answers at once (`durable-answer-server.c --no-sync`)', h.launcherCAnswer),
    row('`jobcompd-hook` against a C server that writes the message and fdatasyncs it before answering (`durable-answer-server.c`)', h.launcherCDurable),
    row('`jobcompd-hook` against a Node.js server that answers at once (`answer-only-server.ts socket`)', h.launcherNodeAnswer),
    row('`jobcompd-hook` against a Node.js server that writes the message and fdatasyncs it before answering (`answer-only-server.ts socket-durable`)', h.launcherNodeDurable),
  ].join('\n');
}

if (require.main === module) {
  const opts = { runs: option('runs', 10_000), nodeRuns: option('node-runs', 1000), series: option('series', 3) };
  runBench(async () => {
    const h = await hookLatencyBench(opts);
    process.stdout.write(`${hookLatencyTable(h)}\n\n${launcherTable(h)}\n`);
    note(`saved ${saveResult('hook-latency', h)}`);
  });
}
