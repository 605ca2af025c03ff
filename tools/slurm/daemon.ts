// The daemons (munged, slurmctld, slurmd) as children of this process, and waiting
// for them without sleeping.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { dieWithParent } from '../harness-common';
import { describeExit, type ExitStatus } from './commands';
import type { ClusterLog, SlurmDaemonName } from './log';

export class Daemon {
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | undefined;

  private constructor(
    readonly name: SlurmDaemonName,
    private readonly child: ChildProcess,
    private readonly owner: Set<ChildProcess>,
    log: ClusterLog,
  ) {
    owner.add(child);
    if (child.stdout) log.follow(name, child.stdout);
    if (child.stderr) log.follow(name, child.stderr);
    // 'close' (not 'exit') so that the last log lines have been read.
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        log.note(name, `cannot start ${name}: ${err.message}`);
        this.settle({ code: null, signal: null }, resolve);
      });
      child.on('close', (code, signal) => {
        log.note(name, `${name} (pid ${String(child.pid)}) ${describeExit({ code, signal })}`);
        this.settle({ code, signal }, resolve);
      });
    });
  }

  static spawn(
    name: SlurmDaemonName,
    executable: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    cwd: string,
    owner: Set<ChildProcess>,
    log: ClusterLog,
  ): Daemon {
    const argv = [executable, ...args];
    const [command, ...rest] = dieWithParent(argv);
    const child = spawn(command as string, rest, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const daemon = new Daemon(name, child, owner, log);
    log.note(name, `exec ${name} ${args.join(' ')} (pid ${String(child.pid)})`);
    // A running cluster must not keep Node alive by itself: a test that forgets
    // stop() should still let jest exit (the exit hook then kills the daemons).
    child.unref();
    for (const stream of [child.stdout, child.stderr]) if (stream instanceof net.Socket) stream.unref();
    return daemon;
  }

  /**
   * The process that carries on after this one exec'd a successor and exited (slurmctld's
   * reconfigure from 23.11 on): it holds our pipes, so `exited` waits for it too.
   */
  private successor: number | undefined;

  get pid(): number | undefined {
    return this.running ? (this.successor ?? this.child.pid) : undefined;
  }

  get running(): boolean {
    return this.status === undefined;
  }

  /** From now on, signals go to `pid` (see successor). */
  handOver(pid: number): void {
    this.successor = pid;
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    if (this.successor === undefined) {
      this.child.kill(sig);
      return;
    }
    try {
      process.kill(this.successor, sig);
    } catch {
      // already gone; its pipes close and `exited` settles
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit status and whether SIGKILL was needed. */
  async terminate(graceMs: number): Promise<{ status: ExitStatus; killed: boolean }> {
    if (this.status !== undefined) return { status: this.status, killed: false };
    let killed = false;
    this.signal('SIGTERM');
    const timer = setTimeout(() => {
      killed = true;
      this.signal('SIGKILL');
    }, graceMs);
    try {
      return { status: await this.exited, killed };
    } finally {
      clearTimeout(timer);
    }
  }

  private settle(status: ExitStatus, resolve: (s: ExitStatus) => void): void {
    if (this.status !== undefined) return;
    this.status = status;
    this.owner.delete(this.child);
    resolve(status);
  }
}

/**
 * Runs `work` until it resolves; rejects with `fail(reason)` if one of the
 * daemons exits first or time runs out. `work` gets a signal that is aborted
 * when the race is over, so that its polling stops.
 */
export async function raceAgainstDeath<T>(
  work: (signal: AbortSignal) => Promise<T>,
  daemons: Daemon[],
  timeoutMs: number,
  fail: (reason: string) => Error,
): Promise<T> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(fail(`not ready after ${timeoutMs} ms`)), timeoutMs);
  });
  const deaths = daemons.map((d) =>
    d.exited.then((status): never => {
      throw fail(`${d.name} ${describeExit(status)}`);
    }),
  );
  const running = work(abort.signal);
  // Whichever loses the race must not surface later as an unhandled rejection.
  for (const p of [running, ...deaths]) p.catch(() => undefined);
  try {
    return await Promise.race([running, timeout, ...deaths]);
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/** Whether something listens on TCP `port` (read from /proc: probing with connect() would log errors in slurmctld). */
export function isListening(port: number): boolean {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let table: string;
    try {
      table = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of table.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state === '0A' && local?.endsWith(hexPort)) return true;
    }
  }
  return false;
}

/** Whether `pid` is a live process (a zombie waiting for a late reaper counts as gone, NOTES §8). */
export function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name, which may contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
