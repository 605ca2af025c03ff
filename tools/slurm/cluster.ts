// A real single-node Slurm 22.05 cluster (Debian 12 packages) on loopback, for
// integration tests. munged, slurmctld and slurmd run in the foreground as
// children of this process; configuration, state, spool, logs, the munge key
// and socket all live under one directory. Nothing in /etc or /run is used.
import { type ChildProcess, spawn } from 'node:child_process';
import { dieWithParent, findProjectRoot, onRealProcessExit, reserveLoopbackPorts } from '../harness-common';
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';

export type JobCompType = 'jobcomp/none' | 'jobcomp/script' | 'jobcomp/elasticsearch';
export type SlurmDaemonName = 'munged' | 'slurmctld' | 'slurmd';

export interface ClusterOptions {
  /** Default: a fresh directory under os.tmpdir(), removed by destroy(). An existing one is reused (state too). */
  dir?: string;
  /** Default 'jobcomp/none'. */
  jobCompType?: JobCompType;
  jobCompLoc?: string;
  jobCompParams?: string;
  prologSlurmctld?: string;
  epilogSlurmctld?: string;
  /** Advertise this many CPUs (SlurmdParameters=config_overrides): more concurrent jobs than cores. */
  nodeCpus?: number;
  /** Extra slurm.conf lines. A `Key=value` line whose key the harness sets replaces the harness's line. */
  extraConf?: string[];
  /** Default 'testcluster'. */
  clusterName?: string;
}

export class SlurmHarnessError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** tools/slurm/install.sh failed. */
export class SlurmInstallError extends SlurmHarnessError {}

/** A daemon died, or the node did not become ready in time. */
export class SlurmStartError extends SlurmHarnessError {
  constructor(
    message: string,
    readonly logTail: string,
  ) {
    super(`${message}\n${logTail}`);
  }
}

/** A Slurm client command (sbatch, scontrol...) failed. */
export class SlurmCommandError extends SlurmHarnessError {
  constructor(
    readonly command: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command.join(' ')} failed (exit ${String(exitCode)}): ${stderr.trim() || '(no output on stderr)'}`);
  }
}

/** An option slurmctld would accept but not act on (it only logs an error), e.g. a non-executable JobCompLoc. */
export class SlurmOptionsError extends SlurmHarnessError {}

/** waitForJobState() ran out of time. */
export class SlurmTimeoutError extends SlurmHarnessError {}

/** A daemon had to be SIGKILLed (slurmctld: its saved state may be stale). */
export class SlurmStopError extends SlurmHarnessError {}

const MUNGED_READY_TIMEOUT_MS = 10_000;
const CTLD_PRIMARY_TIMEOUT_MS = 20_000;
const LISTEN_TIMEOUT_MS = 3_000;
const NODE_READY_TIMEOUT_MS = 30_000;
const READY_POLL_MS = 250;
const LISTEN_POLL_MS = 10;
const JOB_POLL_MS = 250;
const COMMAND_TIMEOUT_MS = 30_000;
const DRAIN_TIMEOUT_MS = 20_000;
const DRAIN_POLL_MS = 200;
/** slurmd and munged: SIGTERM, then SIGKILL after this. */
const STOP_GRACE_MS = 15_000;
/**
 * slurmctld: SIGTERM and a long wait. A SIGKILLed slurmctld leaves a stale
 * job_state that can make the next start run finished jobs again (NOTES §10);
 * a clean stop takes ~1.4 s, but jobcomp/elasticsearch blocks it for as long as
 * a receiver keeps a request unanswered. Past this we SIGKILL it anyway (no
 * process may outlive a test) and report it with SlurmStopError.
 */
const CTLD_STOP_GRACE_MS = 60_000;
const ES_KICK_ACK_TIMEOUT_MS = 5_000;
const WATCHDOG_EXIT_TIMEOUT_MS = 10_000;
const LOG_TAIL_LINES = 60;
const NODE_NAME = 'localhost';
const MARKER_VARIABLE = 'JOBCOMPD_SLURM_HARNESS';

const MUNGED_READY = /Created socket/;
const CTLD_PRIMARY = /Running as primary controller/;
/** Lines after which the node state is worth checking again. */
const NODE_EVENT = /node localhost registered|Node localhost now responding|Spawning registration agent/;
/** Schedulable base states: idle, or busy with jobs recovered across a slurmctld restart. */
const NODE_READY_STATES = new Set(['IDLE', 'MIXED', 'ALLOCATED']);
const LOGROTATE = /SIGUSR2/;
/** Once a second with bf_interval=1 and SlurmctldDebug=debug: kept in the log file, not in tails. */
const TAIL_NOISE = /_attempt_backfill: (beginning|no jobs to backfill)/;

// ---------------------------------------------------------------------------
// Locating the project; installing the packages; the machine's node shape

export { findProjectRoot };

let installPromise: Promise<void> | undefined;

/** Runs tools/slurm/install.sh (instant when everything is installed) once per process. */
export function ensureSlurmInstalled(root: string = findProjectRoot()): Promise<void> {
  installPromise ??= runInstallScript(root).catch((err: unknown) => {
    installPromise = undefined;
    throw err;
  });
  return installPromise;
}

async function runInstallScript(root: string): Promise<void> {
  const script = path.join(root, 'tools', 'slurm', 'install.sh');
  const result = await runCommand('sh', [script], { cwd: root, env: process.env, timeoutMs: 600_000 });
  if (result.error !== undefined) throw new SlurmInstallError(`cannot run ${script}: ${result.error.message}`);
  if (result.code !== 0) {
    throw new SlurmInstallError(`${script} failed (${describeExit(result)}):\n${lastLines(result.stderr, 30)}`);
  }
}

/** Sockets, cores, threads and memory as `slurmd -C` reports them (copied so slurmd does not complain, NOTES §4). */
interface NodeShape {
  shape: string;
  realMemory: string;
}

let nodeShapePromise: Promise<NodeShape> | undefined;

function machineNodeShape(): Promise<NodeShape> {
  nodeShapePromise ??= (async () => {
    const result = await runCommand('slurmd', ['-C'], { cwd: '/', env: process.env, timeoutMs: COMMAND_TIMEOUT_MS });
    const first = result.stdout.split('\n')[0] ?? '';
    const keys = ['CPUs', 'Boards', 'SocketsPerBoard', 'CoresPerSocket', 'ThreadsPerCore', 'RealMemory'];
    const fields = first.split(/\s+/).filter((f) => keys.includes(f.split('=')[0] ?? ''));
    const realMemory = fields.find((f) => f.startsWith('RealMemory='));
    if (result.code !== 0 || realMemory === undefined) {
      throw new SlurmStartError('slurmd -C did not report the node shape', `${result.stdout}${result.stderr}`);
    }
    return { shape: fields.join(' '), realMemory };
  })().catch((err: unknown) => {
    nodeShapePromise = undefined;
    throw err;
  });
  return nodeShapePromise;
}

// ---------------------------------------------------------------------------
// Short-lived commands (clients, install, slurmd -C)

interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

function runCommand(
  command: string,
  args: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let error: Error | undefined;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      error = new Error(`no answer after ${opts.timeoutMs} ms`);
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('error', (err) => (error = err));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr: error !== undefined ? `${stderr}${error.message}` : stderr, error });
    });
  });
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Making sure no Slurm or munge process outlives this process
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

const liveClusters = new Set<{ children: Set<ChildProcess>; marker: string }>();
let exitHookInstalled = false;

function markedProcesses(marker: string): number[] {
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

function killMarked(marker: string): void {
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

class Watchdog {
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

// ---------------------------------------------------------------------------
// Logs: each daemon's stdout/stderr (slurmctld -D and slurmd -D copy their log
// there; munged --foreground prints to stderr) feeds an in-memory tail and line
// watchers. The daemons also write their own log files under <dir>/log and
// <dir>/munge; harness notes go to <dir>/log/harness.log.

type LogSource = SlurmDaemonName | 'harness';

class ClusterLog {
  private readonly recent = new Map<LogSource, string[]>();
  private readonly watchers = new Set<{ source: LogSource; pattern: RegExp; fn: (line: string) => void }>();

  constructor(private readonly notesFile: string) {}

  write(source: LogSource, line: string): void {
    if (!TAIL_NOISE.test(line)) {
      let lines = this.recent.get(source);
      if (lines === undefined) this.recent.set(source, (lines = []));
      lines.push(line);
      if (lines.length > LOG_TAIL_LINES) lines.shift();
    }
    for (const w of this.watchers) if (w.source === source && w.pattern.test(line)) w.fn(line);
  }

  note(source: LogSource, message: string): void {
    const line = `[harness ${new Date().toISOString()}] ${message}`;
    try {
      fs.appendFileSync(this.notesFile, `${line}\n`);
    } catch {
      // the directory may be gone (destroy())
    }
    this.write(source, line);
    if (source !== 'harness') this.write('harness', `${source}: ${message}`);
  }

  follow(source: LogSource, stream: NodeJS.ReadableStream): void {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => this.write(source, line));
  }

  /** Calls `fn` for every later line of `source` matching `pattern`; returns the unsubscribe function. */
  watch(source: LogSource, pattern: RegExp, fn: (line: string) => void): () => void {
    const w = { source, pattern, fn };
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  tail(source: LogSource): string {
    return (this.recent.get(source) ?? []).join('\n');
  }

  /** The tails of the given sources, labelled, for error messages. */
  tails(...sources: LogSource[]): string {
    return sources.map((s) => `--- last ${s} log lines ---\n${this.tail(s) || '(none)'}`).join('\n');
  }
}

/** A promise that settles when `ring()` is called or `ms` pass, whichever is first. */
class Doorbell {
  private pending: (() => void) | undefined;
  private rang = false;

  ring(): void {
    this.rang = true;
    this.pending?.();
  }

  /** Resolves at the next ring (or at once if it rang since the last wait), after `ms`, or on abort. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.rang || signal?.aborted === true) {
      this.rang = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.pending = undefined;
        this.rang = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.pending = done;
    });
  }
}

// ---------------------------------------------------------------------------
// Daemons

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

function describeExit(status: ExitStatus): string {
  return status.signal !== null ? `was killed by ${status.signal}` : `exited with code ${String(status.code)}`;
}

class Daemon {
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
    args: string[],
    env: NodeJS.ProcessEnv,
    cwd: string,
    owner: Set<ChildProcess>,
    log: ClusterLog,
  ): Daemon {
    const argv = [name, ...args];
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

  get pid(): number | undefined {
    return this.running ? this.child.pid : undefined;
  }

  get running(): boolean {
    return this.status === undefined;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
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
async function raceAgainstDeath<T>(
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
function isListening(port: number): boolean {
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

// ---------------------------------------------------------------------------
// Layout and configuration

interface Layout {
  dir: string;
  conf: string;
  state: string;
  spool: string;
  log: string;
  run: string;
  munge: string;
  mungeKey: string;
  mungeSocket: string;
  jobs: string;
}

function layout(dir: string): Layout {
  const munge = path.join(dir, 'munge');
  return {
    dir,
    conf: path.join(dir, 'etc', 'slurm.conf'),
    state: path.join(dir, 'state'),
    spool: path.join(dir, 'spool'),
    log: path.join(dir, 'log'),
    run: path.join(dir, 'run'),
    munge,
    mungeKey: path.join(munge, 'munge.key'),
    mungeSocket: path.join(munge, 'munge.socket.2'),
    jobs: path.join(dir, 'jobs'),
  };
}

async function prepareLayout(paths: Layout): Promise<void> {
  for (const d of [path.dirname(paths.conf), paths.state, paths.spool, paths.log, paths.run, paths.munge, paths.jobs]) {
    await fsp.mkdir(d, { recursive: true });
  }
  // munged: "Socket is inaccessible: execute permissions for all required" (NOTES §2).
  await fsp.chmod(paths.dir, 0o755);
  await fsp.chmod(paths.munge, 0o755);
  if (!fs.existsSync(paths.mungeKey) || fs.statSync(paths.mungeKey).size === 0) {
    await fsp.writeFile(paths.mungeKey, randomBytes(1024), { mode: 0o600 });
  }
}

interface Ports {
  slurmctld: number;
  slurmd: number;
}

/** slurm.conf as start-slurm.sh in the lab writes it, on the given ports and paths. */
function renderSlurmConf(paths: Layout, ports: Ports, node: NodeShape, opts: ClusterOptions): string {
  const settings: [string, string][] = [
    ['ClusterName', opts.clusterName ?? 'testcluster'],
    // Accepted although the hostname is not "localhost" (NOTES §4).
    ['SlurmctldHost', `${NODE_NAME}(127.0.0.1)`],
    ['SlurmctldPort', String(ports.slurmctld)],
    ['SlurmdPort', String(ports.slurmd)],
    // Listen on 127.0.0.1 only, not on every address.
    ['CommunicationParameters', 'NoInAddrAny,NoCtldInAddrAny'],
    ['SlurmUser', 'root'],
    ['SlurmdUser', 'root'],
    ['AuthType', 'auth/munge'],
    ['CredType', 'cred/munge'],
    // Used by both auth/munge and cred/munge.
    ['AuthInfo', `socket=${paths.mungeSocket}`],
    ['StateSaveLocation', paths.state],
    ['SlurmdSpoolDir', paths.spool],
    ['SlurmctldPidFile', path.join(paths.run, 'slurmctld.pid')],
    ['SlurmdPidFile', path.join(paths.run, 'slurmd.pid')],
    ['SlurmctldLogFile', path.join(paths.log, 'slurmctld.log')],
    ['SlurmdLogFile', path.join(paths.log, 'slurmd.log')],
    // debug: the node registration lines the harness waits for.
    ['SlurmctldDebug', 'debug'],
    ['SlurmdDebug', 'info'],
    // No cgroups, no accounting database.
    ['ProctrackType', 'proctrack/linuxproc'],
    ['TaskPlugin', 'task/none'],
    ['JobAcctGatherType', 'jobacct_gather/none'],
    ['AccountingStorageType', 'accounting_storage/none'],
    ['MpiDefault', 'none'],
    ['SwitchType', 'switch/none'],
    // Otherwise "Configured MailProg is invalid" (NOTES §5).
    ['MailProg', '/bin/true'],
    ['SchedulerType', 'sched/backfill'],
    // With EpilogSlurmctld set, freed CPUs are otherwise reused only by the 60 s
    // main loop or the 30 s backfill loop (NOTES §6).
    ['SchedulerParameters', 'bf_interval=1'],
    ['SelectType', 'select/cons_tres'],
    ['SelectTypeParameters', 'CR_Core'],
    ['ReturnToService', '2'],
    ['MinJobAge', '300'],
    ['KillWait', '5'],
    ['JobCompType', opts.jobCompType ?? 'jobcomp/none'],
  ];
  const optional: [string, string | undefined][] = [
    ['JobCompLoc', opts.jobCompLoc],
    ['JobCompParams', opts.jobCompParams],
    ['PrologSlurmctld', opts.prologSlurmctld],
    ['EpilogSlurmctld', opts.epilogSlurmctld],
    ['SlurmdParameters', opts.nodeCpus !== undefined ? 'config_overrides' : undefined],
  ];
  for (const [key, value] of optional) if (value !== undefined && value !== '') settings.push([key, value]);

  const lines = settings.map(([key, value]) => `${key}=${value}`);
  const appended: string[] = [];
  for (const extra of opts.extraConf ?? []) {
    const key = /^\s*([A-Za-z]+)\s*=/.exec(extra)?.[1]?.toLowerCase();
    const at = key === undefined ? -1 : settings.findIndex(([k]) => k.toLowerCase() === key);
    if (at >= 0) lines[at] = extra;
    else appended.push(extra);
  }
  const shape = opts.nodeCpus !== undefined ? `CPUs=${opts.nodeCpus} ${node.realMemory}` : node.shape;
  return [
    '# Written by tools/slurm/cluster.ts; rewritten on every start.',
    ...lines,
    ...appended,
    `NodeName=${NODE_NAME} NodeAddr=127.0.0.1 ${shape} State=UNKNOWN`,
    `PartitionName=debug Nodes=${NODE_NAME} Default=YES MaxTime=INFINITE State=UP`,
    '',
  ].join('\n');
}

/** slurmctld starts without a usable script and only logs an error: fail early and clearly instead. */
function checkOptions(opts: ClusterOptions): void {
  const scripts: [string, string | undefined][] = [
    ['PrologSlurmctld', opts.prologSlurmctld],
    ['EpilogSlurmctld', opts.epilogSlurmctld],
  ];
  if (opts.jobCompType === 'jobcomp/script') {
    if (opts.jobCompLoc === undefined) throw new SlurmOptionsError('jobcomp/script needs jobCompLoc (the script)');
    scripts.push(['JobCompLoc', opts.jobCompLoc]);
  }
  for (const [key, file] of scripts) {
    if (file === undefined) continue;
    if (!path.isAbsolute(file)) throw new SlurmOptionsError(`${key}=${file}: Slurm needs an absolute path`);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (!fs.statSync(file).isFile()) throw new Error('not a regular file');
    } catch (err) {
      throw new SlurmOptionsError(`${key}=${file} is not an executable file: ${(err as Error).message}`);
    }
  }
  if (opts.nodeCpus !== undefined && !(Number.isInteger(opts.nodeCpus) && opts.nodeCpus > 0)) {
    throw new SlurmOptionsError(`nodeCpus must be a positive integer, not ${opts.nodeCpus}`);
  }
}

/** Slurm's own input variables in our environment would change what clients do. */
function withoutSlurmVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) {
    if (!/^(SLURM|SBATCH|SALLOC|SRUN|SQUEUE|SINFO|SACCT|SCANCEL|SCONTROL)_/.test(key)) clean[key] = value;
  }
  return clean;
}

function nodeField(showNode: string, key: string): string | undefined {
  return new RegExp(`\\b${key}=(\\S+)`).exec(showNode)?.[1];
}

function nodeSummary(showNode: string): string {
  return ['State', 'SlurmdStartTime', 'Reason'].map((k) => `${k}=${nodeField(showNode, k) ?? '?'}`).join(' ');
}

/** `scontrol show node -o`: registered with this slurmctld, responding, and schedulable. */
function nodeReady(showNode: string): boolean {
  const state = nodeField(showNode, 'State') ?? '';
  const [base, ...flags] = state.split('+');
  return (
    NODE_READY_STATES.has(base ?? '') &&
    flags.every((f) => f === 'COMPLETING') &&
    !state.includes('*') &&
    (nodeField(showNode, 'SlurmdStartTime') ?? 'None') !== 'None'
  );
}

function parseJobId(stdout: string): number | undefined {
  const match = /^Submitted batch job (\d+)/m.exec(stdout) ?? /^(\d+)(?:;\S+)?\s*$/m.exec(stdout);
  return match?.[1] !== undefined ? Number(match[1]) : undefined;
}

// ---------------------------------------------------------------------------
// The cluster

export class SlurmCluster {
  readonly confPath: string;
  /** For Slurm clients: SLURM_CONF (clients fail without it, NOTES §3) and the harness marker. */
  readonly env: NodeJS.ProcessEnv;
  private readonly paths: Layout;
  private readonly marker: string;
  private readonly children = new Set<ChildProcess>();
  private readonly registration: { children: Set<ChildProcess>; marker: string };
  private munged: Daemon | undefined;
  private slurmctld: Daemon | undefined;
  private slurmd: Daemon | undefined;
  private watchdog: Watchdog | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly dir: string,
    private readonly ownsDir: boolean,
    readonly ports: Readonly<Ports>,
    private readonly opts: ClusterOptions,
    private readonly log: ClusterLog,
  ) {
    this.paths = layout(dir);
    this.confPath = this.paths.conf;
    this.marker = `${MARKER_VARIABLE}=${randomUUID()}`;
    this.env = {
      ...withoutSlurmVariables(process.env),
      SLURM_CONF: this.confPath,
      [MARKER_VARIABLE]: this.marker.slice(MARKER_VARIABLE.length + 1),
    };
    this.registration = { children: this.children, marker: this.marker };
  }

  static async start(opts: ClusterOptions = {}): Promise<SlurmCluster> {
    const startedAt = Date.now();
    checkOptions(opts);
    await ensureSlurmInstalled();
    const node = await machineNodeShape();
    const ownsDir = opts.dir === undefined;
    const dir = path.resolve(opts.dir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'jobcompd-slurm-'))));
    const paths = layout(dir);
    await prepareLayout(paths);
    const [slurmctld, slurmd] = await reserveLoopbackPorts(2);
    if (slurmctld === undefined || slurmd === undefined) throw new SlurmHarnessError('could not reserve two ports');
    const ports = { slurmctld, slurmd };
    const log = new ClusterLog(path.join(paths.log, 'harness.log'));
    const cluster = new SlurmCluster(dir, ownsDir, ports, opts, log);
    await fsp.writeFile(paths.conf, renderSlurmConf(paths, ports, node, opts));
    await fsp.writeFile(path.join(dir, 'env.sh'), `export SLURM_CONF=${paths.conf}\n`);
    try {
      await cluster.launch();
    } catch (err) {
      // Keep the directory: its logs explain the failure.
      await cluster.stop().catch(() => undefined);
      throw err;
    }
    log.note('harness', `cluster ready in ${Date.now() - startedAt} ms (${dir}, slurmctld port ${ports.slurmctld})`);
    return cluster;
  }

  /** The pids of the daemons that are running. */
  get pids(): { munged?: number; slurmctld?: number; slurmd?: number } {
    return { munged: this.munged?.pid, slurmctld: this.slurmctld?.pid, slurmd: this.slurmd?.pid };
  }

  /**
   * Every live process that belongs to this cluster: the daemons, slurmscriptd,
   * slurmstepd, running client commands and job processes (not the jobcomp and
   * PrologSlurmctld/EpilogSlurmctld scripts, which Slurm runs with a fresh environment).
   */
  processes(): number[] {
    return markedProcesses(this.marker);
  }

  /** The last lines the daemon printed (its log, without the once-a-second backfill chatter), and harness notes. */
  logTail(which: SlurmDaemonName): string {
    return this.log.tail(which);
  }

  /** Submits a batch job (from <dir>/jobs, where slurm-N.out lands) and returns its id. */
  async sbatch(args: string[]): Promise<number> {
    const stdout = await this.client('sbatch', args);
    const id = parseJobId(stdout);
    if (id === undefined) {
      throw new SlurmHarnessError(`sbatch ${args.join(' ')}: no job id in its output: ${stdout.trim()}`);
    }
    return id;
  }

  async scancel(args: string[]): Promise<void> {
    await this.client('scancel', args);
  }

  async scontrol(args: string[]): Promise<string> {
    return this.client('scontrol', args);
  }

  /** JobState from `scontrol show job -o`, e.g. PENDING, RUNNING, COMPLETED; undefined once Slurm forgot the job. */
  async jobState(id: number): Promise<string | undefined> {
    this.assertNotStopped('scontrol');
    const command = ['scontrol', 'show', 'job', '-o', String(id)];
    const result = await this.run(command);
    if (result.code !== 0) {
      if (/Invalid job id/i.test(result.stderr)) return undefined;
      throw new SlurmCommandError(command, result.code, result.stderr);
    }
    const lines = result.stdout.split('\n');
    const own = lines.find((l) => l.startsWith(`JobId=${id} `)) ?? lines[0] ?? '';
    return /\bJobState=(\S+)/.exec(own)?.[1];
  }

  /**
   * Resolves with the job's state once it is one of `states`. Slurm offers no
   * event for this: it polls, at once whenever slurmctld logs a line naming the
   * job and otherwise every 250 ms. Client errors (slurmctld restarting) are
   * retried until the deadline.
   */
  async waitForJobState(id: number, states: string[], timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const bell = new Doorbell();
    const unwatch = this.log.watch('slurmctld', new RegExp(`\\bJobId=${id}\\b`), () => bell.ring());
    let last = 'not checked yet';
    try {
      for (;;) {
        try {
          const state = await this.jobState(id);
          if (state === undefined) {
            throw new SlurmHarnessError(`job ${id} is unknown to slurmctld (waiting for ${states.join('|')})`);
          }
          if (states.includes(state)) return state;
          last = state;
        } catch (err) {
          if (!(err instanceof SlurmCommandError)) throw err;
          last = err.message;
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new SlurmTimeoutError(
            `job ${id} did not reach ${states.join('|')} within ${timeoutMs} ms (last: ${last})\n` +
              this.log.tails('slurmctld'),
          );
        }
        await bell.wait(Math.min(JOB_POLL_MS, left));
      }
    } finally {
      unwatch();
    }
  }

  /**
   * Stops slurmctld with SIGTERM (never SIGKILL first: NOTES §10; if it does
   * not exit within 60 s it is SIGKILLed and this throws SlurmStopError without
   * restarting), starts it again on the same configuration and ports, and waits
   * until slurmd has re-registered: slurmctld pings it 3 s after starting.
   * Running jobs carry on.
   */
  async restartController(signal: 'SIGTERM' = 'SIGTERM'): Promise<void> {
    this.assertNotStopped('restartController()');
    const startedAt = Date.now();
    const ctld = this.slurmctld;
    if (ctld !== undefined) {
      this.log.note('slurmctld', `restart: ${signal}`);
      const { killed } = await ctld.terminate(CTLD_STOP_GRACE_MS);
      if (killed) throw new SlurmStopError(this.stuckControllerMessage());
    }
    const stoppedAt = Date.now();
    await this.startController();
    await this.waitForNode();
    await this.kickElasticsearch();
    const [stopMs, upMs] = [stoppedAt - startedAt, Date.now() - stoppedAt];
    this.log.note('harness', `slurmctld restarted in ${stopMs + upMs} ms (stop ${stopMs} ms, up ${upMs} ms)`);
  }

  /**
   * Cancels every job and waits (bounded) until none is left, then stops slurmd,
   * slurmctld and munged by the pids we own: SIGTERM, and SIGKILL after 15 s
   * (slurmctld: 60 s, then SlurmStopError). Finally the watchdog kills any
   * leftover process of the cluster. Keeps the directory. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  /** stop(), then removes the directory if start() created it. */
  async destroy(): Promise<void> {
    try {
      await this.stop();
    } finally {
      if (this.ownsDir) await fsp.rm(this.dir, { recursive: true, force: true });
    }
  }

  // -------------------------------------------------------------------------

  private async launch(): Promise<void> {
    installExitHook();
    liveClusters.add(this.registration);
    this.watchdog = Watchdog.spawn(this.marker, this.log);
    await this.startMunged();
    await this.startController();
    await this.startSlurmd();
    await this.waitForNode();
    await this.kickElasticsearch();
  }

  private daemonEnv(): NodeJS.ProcessEnv {
    return { ...this.env };
  }

  private startFailure(what: string, ...sources: LogSource[]): (reason: string) => Error {
    const where = `logs in ${this.paths.log} and ${this.paths.munge}`;
    return (reason) => new SlurmStartError(`${what} failed: ${reason} (${where})`, this.log.tails(...sources));
  }

  private async startMunged(): Promise<void> {
    const p = this.paths;
    for (const stale of [p.mungeSocket, `${p.mungeSocket}.lock`]) await fsp.rm(stale, { force: true });
    const args = [
      '--foreground',
      `--key-file=${p.mungeKey}`,
      `--socket=${p.mungeSocket}`,
      `--pid-file=${path.join(p.munge, 'munged.pid')}`,
      `--log-file=${path.join(p.munge, 'munged.log')}`,
      `--seed-file=${path.join(p.munge, 'munged.seed')}`,
    ];
    const ready = new Doorbell();
    const unwatch = this.log.watch('munged', MUNGED_READY, () => ready.ring());
    this.munged = Daemon.spawn('munged', args, this.daemonEnv(), p.run, this.children, this.log);
    try {
      await raceAgainstDeath(
        async (signal) => {
          while (!signal.aborted && !fs.existsSync(p.mungeSocket)) await ready.wait(50, signal);
        },
        [this.munged],
        MUNGED_READY_TIMEOUT_MS,
        this.startFailure('starting munged', 'munged'),
      );
    } finally {
      unwatch();
    }
  }

  /** slurmctld -D; resolves once it listens (slurmd started earlier would retry only after 1 s). */
  private async startController(): Promise<void> {
    const primary = new Doorbell();
    const unwatch = this.log.watch('slurmctld', CTLD_PRIMARY, () => primary.ring());
    const args = ['-D', '-f', this.confPath];
    const ctld = Daemon.spawn('slurmctld', args, this.daemonEnv(), this.paths.run, this.children, this.log);
    this.slurmctld = ctld;
    const fail = this.startFailure('starting slurmctld', 'slurmctld', 'munged');
    try {
      const seen = (signal: AbortSignal): Promise<void> => primary.wait(CTLD_PRIMARY_TIMEOUT_MS, signal);
      await raceAgainstDeath(seen, [ctld], CTLD_PRIMARY_TIMEOUT_MS, fail);
    } finally {
      unwatch();
    }
    // Listening follows within milliseconds; if it does not, slurmd just retries.
    const deadline = Date.now() + LISTEN_TIMEOUT_MS;
    while (!isListening(this.ports.slurmctld) && Date.now() < deadline && ctld.running) await delay(LISTEN_POLL_MS);
    if (!ctld.running) throw fail(`slurmctld ${describeExit(await ctld.exited)}`);
  }

  private async startSlurmd(): Promise<void> {
    const args = ['-D', '-f', this.confPath, '-N', NODE_NAME];
    this.slurmd = Daemon.spawn('slurmd', args, this.daemonEnv(), this.paths.run, this.children, this.log);
  }

  /**
   * Until slurmd has registered with this slurmctld and the node is
   * schedulable; checked whenever slurmctld logs a registration. After a
   * restart slurmctld shows the recovered state at once (MIXED with a running
   * job; an idle node is UNKNOWN) but SlurmdStartTime only after slurmd has
   * re-registered, ~3 s later.
   */
  private async waitForNode(): Promise<void> {
    const daemons = [this.munged, this.slurmctld, this.slurmd].filter((d): d is Daemon => d !== undefined);
    const bell = new Doorbell();
    const unwatch = this.log.watch('slurmctld', NODE_EVENT, () => bell.ring());
    let last = 'not checked yet';
    const fail = this.startFailure(`waiting for node ${NODE_NAME}`, 'slurmctld', 'slurmd', 'munged');
    try {
      await raceAgainstDeath(
        async (signal) => {
          while (!signal.aborted) {
            const result = await this.run(['scontrol', 'show', 'node', NODE_NAME, '-o']);
            last = result.code === 0 ? nodeSummary(result.stdout) : result.stderr.trim();
            if (result.code === 0 && nodeReady(result.stdout)) return;
            await bell.wait(READY_POLL_MS, signal);
          }
        },
        daemons,
        NODE_READY_TIMEOUT_MS,
        (reason) => fail(`${reason}; node state: ${last}`),
      );
    } finally {
      unwatch();
    }
  }

  /**
   * jobcomp/elasticsearch in 22.05: the sender thread can miss the start-up
   * wake-up and sleep 30 s before its first POST (NOTES §4). SIGUSR2 (log
   * rotation) re-runs set_location, which wakes it. By the time the node is
   * ready the thread is long past its start, so one kick suffices; we wait for
   * slurmctld to log that it handled the signal.
   */
  private async kickElasticsearch(): Promise<void> {
    const ctld = this.slurmctld;
    if (this.opts.jobCompType !== 'jobcomp/elasticsearch' || ctld === undefined) return;
    const handled = new Doorbell();
    let seen = false;
    const unwatch = this.log.watch('slurmctld', LOGROTATE, () => {
      seen = true;
      handled.ring();
    });
    try {
      ctld.signal('SIGUSR2');
      await handled.wait(ES_KICK_ACK_TIMEOUT_MS);
    } finally {
      unwatch();
    }
    if (!seen) this.log.note('slurmctld', `SIGUSR2 not acknowledged in the log within ${ES_KICK_ACK_TIMEOUT_MS} ms`);
  }

  private async stopAll(): Promise<void> {
    const startedAt = Date.now();
    const problems: string[] = [];
    if (this.slurmctld?.running && this.slurmd?.running) await this.cancelAllJobs();
    for (const daemon of [this.slurmd, this.slurmctld, this.munged]) {
      if (daemon === undefined) continue;
      const grace = daemon.name === 'slurmctld' ? CTLD_STOP_GRACE_MS : STOP_GRACE_MS;
      const { killed } = await daemon.terminate(grace);
      if (killed && daemon.name === 'slurmctld') problems.push(this.stuckControllerMessage());
      else if (killed) this.log.note(daemon.name, `did not stop within ${grace} ms of SIGTERM: SIGKILLed`);
    }
    await this.watchdog?.release();
    killMarked(this.marker); // the watchdog's sweep, in case it could not run
    liveClusters.delete(this.registration);
    this.log.note('harness', `cluster stopped in ${Date.now() - startedAt} ms`);
    if (problems.length > 0) throw new SlurmStopError(problems.join('\n'));
  }

  private stuckControllerMessage(): string {
    return (
      `slurmctld did not stop within ${CTLD_STOP_GRACE_MS} ms of SIGTERM and was SIGKILLed; its saved state in ` +
      `${this.paths.state} may be stale (a restart can run finished jobs again). A jobcomp/elasticsearch receiver ` +
      `that never answers blocks the shutdown.\n${this.log.tails('slurmctld')}`
    );
  }

  /** scancel every job, then wait (bounded) until squeue lists none, so no slurmstepd outlives slurmd. */
  private async cancelAllJobs(): Promise<void> {
    const listed = await this.run(['squeue', '-h', '-o', '%A']);
    const ids = [...new Set(listed.stdout.split('\n').map((s) => s.trim()).filter((s) => s !== ''))];
    if (listed.code !== 0 || ids.length === 0) return;
    const cancelled = await this.run(['scancel', ...ids]);
    if (cancelled.code !== 0) this.log.note('harness', `scancel ${ids.join(' ')}: ${cancelled.stderr.trim()}`);
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const left = await this.run(['squeue', '-h', '-o', '%A']);
      if (left.code !== 0 || left.stdout.trim() === '') return;
      await delay(DRAIN_POLL_MS);
    }
    this.log.note('harness', `jobs still listed ${DRAIN_TIMEOUT_MS} ms after scancel; stopping anyway`);
  }

  private run(command: string[]): Promise<CommandResult> {
    const [name, ...args] = command;
    return runCommand(name as string, args, { cwd: this.paths.jobs, env: this.env, timeoutMs: COMMAND_TIMEOUT_MS });
  }

  private assertNotStopped(what: string): void {
    if (this.stopping !== undefined) throw new SlurmHarnessError(`${what}: the cluster in ${this.dir} is stopped`);
  }

  private async client(name: string, args: string[]): Promise<string> {
    this.assertNotStopped(name);
    const command = [name, ...args];
    const result = await this.run(command);
    if (result.code !== 0) throw new SlurmCommandError(command, result.code, result.stderr);
    return result.stdout;
  }
}

// ---------------------------------------------------------------------------
// By hand: `node dist/tools/slurm/cluster.js [jobcomp/script LOC]` runs a cluster
// until Ctrl-C, then stops it (the directory is removed).

async function main(argv: string[]): Promise<void> {
  const [type, loc] = argv;
  const opts: ClusterOptions = {};
  if (type === 'jobcomp/none' || type === 'jobcomp/script' || type === 'jobcomp/elasticsearch') opts.jobCompType = type;
  if (loc !== undefined) opts.jobCompLoc = loc;
  const cluster = await SlurmCluster.start(opts);
  process.stdout.write(
    `Slurm ready in ${cluster.dir} (slurmctld port ${cluster.ports.slurmctld}). ` +
      `In another shell: export SLURM_CONF=${cluster.confPath}. Ctrl-C stops it.\n`,
  );
  // The daemons do not keep Node alive by themselves (see Daemon.spawn).
  const keepAlive = setInterval(() => undefined, 1 << 30);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await cluster.destroy();
  clearInterval(keepAlive);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
