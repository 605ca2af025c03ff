// The broker's JVM: a child process that never outlives this one, its log, and class-data sharing.
import { type ChildProcess, spawn } from 'node:child_process';
import { dieWithParent, onRealProcessExit } from '../harness-common';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';

const LOG_TAIL_LINES = 60;

// ---------------------------------------------------------------------------
// Making sure no broker JVM outlives this process

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLiveChildrenNow(): void {
  for (const child of liveChildren) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  liveChildren.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  onRealProcessExit(killLiveChildrenNow);
}

function javaBinary(): string {
  const home = process.env['JAVA_HOME'];
  return home !== undefined && home !== '' ? path.join(home, 'bin', 'java') : 'java';
}

// ---------------------------------------------------------------------------
// Broker log: every output line goes to <dataDir>/broker.log, the optional
// callback, line watchers, and a small in-memory tail for error messages.

export class BrokerLog {
  private readonly recent: string[] = [];
  private readonly watchers = new Set<(line: string) => void>();

  constructor(
    readonly file: string,
    private readonly callback: ((line: string) => void) | undefined,
  ) {}

  write(line: string): void {
    fs.appendFileSync(this.file, `${line}\n`);
    this.recent.push(line);
    if (this.recent.length > LOG_TAIL_LINES) this.recent.shift();
    this.callback?.(line);
    for (const watch of this.watchers) watch(line);
  }

  note(message: string): void {
    this.write(`[jobcompd harness ${new Date().toISOString()}] ${message}`);
  }

  follow(stream: NodeJS.ReadableStream): void {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => this.write(line));
  }

  /** Resolves at the first line matching `pattern`; stays pending otherwise. */
  waitForLine(pattern: RegExp): { promise: Promise<void>; cancel: () => void } {
    let watcher: ((line: string) => void) | undefined;
    const promise = new Promise<void>((resolve) => {
      watcher = (line) => {
        if (!pattern.test(line)) return;
        cancel();
        resolve();
      };
      this.watchers.add(watcher);
    });
    const cancel = (): void => {
      if (watcher !== undefined) this.watchers.delete(watcher);
    };
    return { promise, cancel };
  }

  tail(): string {
    return this.recent.join('\n');
  }
}

// ---------------------------------------------------------------------------
// Child processes

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function describeExit(status: ExitStatus): string {
  return status.signal !== null ? `was killed by ${status.signal}` : `exited with code ${String(status.code)}`;
}

export class JvmProcess {
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | undefined;

  private constructor(
    private readonly child: ChildProcess,
    mainClass: string,
    log: BrokerLog,
  ) {
    liveChildren.add(child);
    if (child.stdout) log.follow(child.stdout);
    if (child.stderr) log.follow(child.stderr);
    // 'close' (not 'exit') so that the last log lines have been read.
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        log.note(`cannot start java: ${err.message}`);
        this.settle({ code: null, signal: null }, resolve);
      });
      child.on('close', (code, signal) => {
        log.note(`${mainClass} ${describeExit({ code, signal })}`);
        this.settle({ code, signal }, resolve);
      });
    });
  }

  /** `secrets`: strings of `args` that the log note shows as *** (SCRAM passwords). */
  static spawn(mainClass: string, args: string[], jvmArgs: string[], libs: string, log: BrokerLog, secrets: string[] = []): JvmProcess {
    installExitHook();
    const java = [javaBinary(), ...jvmArgs, '-cp', path.join(libs, '*'), mainClass, ...args];
    const [command, ...rest] = dieWithParent(java);
    log.note(`exec ${secrets.reduce((line, secret) => line.split(secret).join('***'), java.join(' '))}`);
    const child = spawn(command as string, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    return new JvmProcess(child, mainClass, log);
  }

  get pid(): number | undefined {
    return this.running ? this.child.pid : undefined;
  }

  get running(): boolean {
    return this.status === undefined;
  }

  /**
   * A running broker must not keep Node alive by itself: a test that forgets
   * destroy() should still let jest exit (the exit hook then kills the JVM).
   */
  detachFromEventLoop(): void {
    this.child.unref();
    for (const stream of [this.child.stdout, this.child.stderr]) {
      if (stream instanceof net.Socket) stream.unref();
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGTERM (or SIGKILL), escalating to SIGKILL after `graceMs`. */
  async terminate(sig: NodeJS.Signals, graceMs: number): Promise<ExitStatus> {
    if (this.status !== undefined) return this.status;
    this.signal(sig);
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private settle(status: ExitStatus, resolve: (s: ExitStatus) => void): void {
    if (this.status !== undefined) return;
    this.status = status;
    liveChildren.delete(this.child);
    resolve(status);
  }
}

/** Resolves with `work`, or rejects if the process exits first or time runs out. */
export async function raceAgainstDeath<T>(
  work: Promise<T>,
  jvm: JvmProcess,
  timeoutMs: number,
  fail: (reason: string) => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(fail(`not ready after ${timeoutMs} ms`)), timeoutMs);
  });
  const death = jvm.exited.then((status): never => {
    throw fail(`the JVM ${describeExit(status)}`);
  });
  // Whichever loses the race must not surface later as an unhandled rejection.
  death.catch(() => undefined);
  work.catch(() => undefined);
  try {
    return await Promise.race([work, timeout, death]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------
// Class-data sharing: the first broker JVM that shuts down cleanly dumps the
// classes it loaded into an archive next to the jars; later JVMs map it and
// start about a second faster. A stale archive (other JDK, other jars) is
// only a warning to the JVM; we then delete it so that it gets rebuilt.

const CDS_REJECTED = /Unable to use shared archive/;
let cdsDumpInProgress = false;

interface ClassDataSharing {
  args: string[];
  /** Call once the JVM has exited. */
  finish: (status: ExitStatus) => void;
}

export function classDataSharing(libs: string, log: BrokerLog, mayDump: boolean): ClassDataSharing {
  const archive = path.join(path.dirname(libs), 'broker-classes.jsa');
  if (fs.existsSync(archive)) {
    const rejected = log.waitForLine(CDS_REJECTED);
    void rejected.promise.then(() => fs.rm(archive, { force: true }, () => undefined));
    return { args: [`-XX:SharedArchiveFile=${archive}`], finish: rejected.cancel };
  }
  if (!mayDump || cdsDumpInProgress) return { args: [], finish: () => undefined };
  cdsDumpInProgress = true;
  const pending = `${archive}.${process.pid}.tmp`;
  const finish = (status: ExitStatus): void => {
    cdsDumpInProgress = false;
    // The JVM writes the archive as it exits; a JVM killed by a signal may have
    // left half a file. The rename makes a complete archive appear atomically.
    try {
      if (status.signal === null && fs.statSync(pending).size > 0) fs.renameSync(pending, archive);
    } catch {
      // No archive this time; a later broker will try again.
    } finally {
      fs.rmSync(pending, { force: true });
    }
  };
  return { args: [`-XX:ArchiveClassesAtExit=${pending}`], finish };
}

