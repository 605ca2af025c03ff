// Making sure no Slurm or munge process outlives this process.
//
// Every daemon gets JOBCOMPD_SLURM_HARNESS=<random id> in its environment, and
// so do clients and, through sbatch, the jobs. The daemons are direct children
// (setpriv --pdeathsig SIGKILL: they die with Node however Node dies), but
// slurmstepd and the job processes are not: slurmd double-forks them and they
// survive a killed slurmd. Two sweeps find them by the marker:
// - an exit hook on the real `process` (a Node exit, including jest's);
// - a watchdog shell in its own session, reading a pipe from this process:
//   the pipe closes when stop() is done or when Node dies, even by SIGKILL.
// Both SIGKILL: if this process exits without stop(), the cluster crashed, and a
// directory reused after that recovers a stale state (NOTES §10).

import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { onRealProcessExit } from '../harness-common';
import { describeExit } from './commands';
import type { ClusterLog } from './log';

export const MARKER_VARIABLE = 'JOBCOMPD_SLURM_HARNESS';
const WATCHDOG_EXIT_TIMEOUT_MS = 10_000;

export interface LiveCluster {
  children: Set<ChildProcess>;
  marker: string;
}

const liveClusters = new Set<LiveCluster>();
let exitHookInstalled = false;

export function markedProcesses(marker: string): number[] {
  const entry = Buffer.from(`${marker}\0`);
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let environ: Buffer;
    try {
      environ = fs.readFileSync(`/proc/${name}/environ`);
    } catch {
      continue; // gone meanwhile
    }
    // A zombie's environ is empty: it counts as gone.
    const at = environ.indexOf(entry);
    if (at === 0 || (at > 0 && environ[at - 1] === 0)) pids.push(Number(name));
  }
  return pids;
}

export function killMarked(marker: string): void {
  for (const pid of markedProcesses(marker)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function killLiveClustersNow(): void {
  for (const cluster of liveClusters) {
    for (const child of cluster.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    killMarked(cluster.marker);
  }
  liveClusters.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  onRealProcessExit(killLiveClustersNow);
}


// $1 is NAME=VALUE. `cat` returns at EOF: stop() closed the pipe, or Node died.
const WATCHDOG_SCRIPT = `
cat >/dev/null 2>&1
i=0
while [ $i -lt 50 ]; do
  pids=$(grep -lzxF -e "$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3)
  [ -z "$pids" ] && exit 0
  kill -KILL $pids 2>/dev/null
  sleep 0.1
  i=$((i + 1))
done
exit 1
`;

export class Watchdog {
  private readonly exited: Promise<void>;

  constructor(
    private readonly child: ChildProcess,
    log: ClusterLog,
  ) {
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        log.note('harness', `watchdog: ${err.message}`);
        resolve();
      });
      child.on('close', (code, signal) => {
        if (code !== 0) log.note('harness', `watchdog ${describeExit({ code, signal })}`);
        resolve();
      });
    });
  }

  static spawn(marker: string, log: ClusterLog): Watchdog {
    const child = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'jobcompd-slurm-watchdog', marker], {
      cwd: '/',
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.unref();
    if (child.stdin instanceof net.Socket) child.stdin.unref();
    // EPIPE if the watchdog is already gone when stop() closes the pipe.
    child.stdin?.on('error', () => undefined);
    return new Watchdog(child, log);
  }

  /** Closes the pipe: the watchdog kills whatever still carries the marker, then exits. */
  async release(): Promise<void> {
    this.child.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, WATCHDOG_EXIT_TIMEOUT_MS)));
    await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
  }
}

/** Registers a cluster whose processes the exit hook kills if this process exits without stop(). */
export function registerLiveCluster(cluster: LiveCluster): void {
  installExitHook();
  liveClusters.add(cluster);
}

export function unregisterLiveCluster(cluster: LiveCluster): void {
  liveClusters.delete(cluster);
}
