// A real single-node Slurm cluster on loopback, for integration tests: Debian 12's
// packages (22.05) by default, or a release built from source by build-release.sh. munged, slurmctld and slurmd run in the foreground as
// children of this process; configuration, state, spool, logs, the munge key
// and socket all live under one directory. Nothing in /etc or /run is used.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { reserveLoopbackPorts } from '../harness-common';
import { type CommandResult, COMMAND_TIMEOUT_MS, delay, describeExit, runCommand } from './commands';
import {
  checkOptions,
  type ClusterOptions,
  layout,
  type Layout,
  NODE_NAME,
  nodeReady,
  nodeSummary,
  parseJobId,
  type Ports,
  prepareLayout,
  renderSlurmConf,
  withoutSlurmVariables,
} from './config';
import { asControllerHost } from './controllers';
import { Daemon, isListening, processAlive, raceAgainstDeath } from './daemon';
import { SlurmCommandError, SlurmHarnessError, SlurmStartError, SlurmStopError, SlurmTimeoutError } from './errors';
import { clientPath, daemonCommand, DEBIAN_SLURM, ensureInstalled, machineNodeShape, type SlurmInstallation } from './install';
import { ClusterLog, Doorbell, type LogSource, type SlurmDaemonName } from './log';
import { killMarked, markedProcesses, MARKER_VARIABLE, registerLiveCluster, unregisterLiveCluster, Watchdog } from './reaper';

export * from './errors';
export type { ClusterOptions, JobCompType } from './config';
export { buildRelease, DEBIAN_SLURM, ensureSlurmInstalled, findProjectRoot, type SlurmInstallation } from './install';
export type { SlurmDaemonName } from './log';
export { processAlive } from './daemon';

const MUNGED_READY_TIMEOUT_MS = 10_000;
const CTLD_PRIMARY_TIMEOUT_MS = 20_000;
const LISTEN_TIMEOUT_MS = 3_000;
const NODE_READY_TIMEOUT_MS = 30_000;
const READY_POLL_MS = 250;
const LISTEN_POLL_MS = 10;
const JOB_POLL_MS = 250;
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
/** After a reconfigure, how long a second slurmctld may take to show up before we conclude there is none. */
const RECONFIGURE_SUCCESSOR_MS = 1_000;

const MUNGED_READY = /Created socket/;
const CTLD_PRIMARY = /Running as primary controller/;
const CTLD_BACKUP = /slurmctld running in background mode/;
/** For the backup to notice the primary is gone (FAILOVER_SLURMCTLD_TIMEOUT_S and two pings) and take over. */
const TAKEOVER_TIMEOUT_MS = 60_000;
/** Lines after which the node state is worth checking again. */
const NODE_EVENT = /node localhost registered|Node localhost now responding|Spawning registration agent/;
const LOGROTATE = /SIGUSR2/;

/** The command name of a process (/proc/PID/comm), '' once it is gone. */
function processName(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
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
  /** the controller in charge */
  private slurmctld: Daemon | undefined;
  /** the backup controller, while the primary is in charge (ClusterOptions.controllers) */
  private standby: Daemon | undefined;
  private slurmd: Daemon | undefined;
  private watchdog: Watchdog | undefined;
  private stopping: Promise<void> | undefined;
  readonly installation: SlurmInstallation;

  private constructor(
    readonly dir: string,
    private readonly ownsDir: boolean,
    readonly ports: Readonly<Ports>,
    private readonly opts: ClusterOptions,
    private readonly log: ClusterLog,
  ) {
    this.installation = opts.installation ?? DEBIAN_SLURM;
    this.paths = layout(dir);
    this.confPath = this.paths.conf;
    this.marker = `${MARKER_VARIABLE}=${randomUUID()}`;
    this.env = {
      ...withoutSlurmVariables(process.env),
      PATH: clientPath(this.installation, process.env['PATH']),
      SLURM_CONF: this.confPath,
      [MARKER_VARIABLE]: this.marker.slice(MARKER_VARIABLE.length + 1),
    };
    this.registration = { children: this.children, marker: this.marker };
  }

  static async start(opts: ClusterOptions = {}): Promise<SlurmCluster> {
    const startedAt = Date.now();
    checkOptions(opts);
    const installation = opts.installation ?? DEBIAN_SLURM;
    await ensureInstalled(installation);
    const node = await machineNodeShape(installation);
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
    this.assertOneController('restartController()');
    const startedAt = Date.now();
    const ctld = this.slurmctld;
    if (ctld !== undefined) {
      this.log.note('slurmctld', `restart: ${signal}`);
      const { killed } = await ctld.terminate(CTLD_STOP_GRACE_MS);
      if (killed) throw new SlurmStopError(this.stuckControllerMessage());
    }
    await this.startAgain(startedAt);
  }

  /**
   * kill -9 of slurmctld, then a start on the same configuration, as after a crash. Its saved
   * state is stale: a restart may run finished jobs again (NOTES §10). For fault tests.
   */
  async crashController(): Promise<void> {
    this.assertNotStopped('crashController()');
    this.assertOneController('crashController()');
    const startedAt = Date.now();
    const ctld = this.slurmctld;
    if (ctld !== undefined) {
      this.log.note('slurmctld', 'crash: SIGKILL');
      ctld.signal('SIGKILL');
      await ctld.exited;
    }
    await this.startAgain(startedAt);
  }

  /**
   * `scontrol reconfigure`. From 23.11 on slurmctld forks and execs a new slurmctld, and the
   * old process exits without shutting its plugins down (docs/
   * slurm-integration.md): from then on the harness signals the new pid. Resolves once the
   * node is schedulable again.
   */
  async reconfigure(): Promise<void> {
    this.assertNotStopped('reconfigure()');
    this.assertOneController('reconfigure()');
    const ctld = this.slurmctld;
    if (ctld === undefined) throw new SlurmHarnessError('reconfigure(): slurmctld is not running');
    const before = ctld.pid;
    // The new process logs what a fresh start logs.
    const handedOver = new Doorbell();
    const unwatch = this.log.watch('slurmctld', CTLD_PRIMARY, () => handedOver.ring());
    try {
      await this.client('scontrol', ['reconfigure']);
      await handedOver.wait(CTLD_PRIMARY_TIMEOUT_MS);
    } finally {
      unwatch();
    }
    // The successor carries our marker (it inherited the environment); slurmscriptd has its own name.
    const deadline = Date.now() + CTLD_PRIMARY_TIMEOUT_MS;
    const inPlaceAfter = Date.now() + RECONFIGURE_SUCCESSOR_MS;
    for (;;) {
      const successor = this.processes().find((pid) => pid !== before && processName(pid) === 'slurmctld');
      // No other slurmctld, and ours runs as primary again: it exec'd itself in place.
      if (successor === undefined && Date.now() > inPlaceAfter && before !== undefined && processAlive(before)) {
        this.log.note('slurmctld', `reconfigure: slurmctld pid ${before} re-executed itself`);
        break;
      }
      if (successor !== undefined) {
        ctld.handOver(successor);
        this.log.note('slurmctld', `reconfigure: slurmctld is now pid ${successor}`);
        break;
      }
      if (Date.now() > deadline) throw new SlurmStartError('reconfigure: no new slurmctld process', this.log.tails('slurmctld'));
      await delay(LISTEN_POLL_MS);
    }
    await this.waitForNode();
  }

  /**
   * With two controllers (ClusterOptions.controllers): kill -9 of the primary, as when its
   * host dies. Resolves once the backup has taken over (it logs that it runs as primary) and
   * the node is schedulable again; from then on the backup is the controller in charge.
   */
  async failOver(): Promise<void> {
    this.assertNotStopped('failOver()');
    const [primary, backup] = [this.slurmctld, this.standby];
    if (primary === undefined || backup === undefined) throw new SlurmHarnessError('failOver(): needs a running primary and backup controller (ClusterOptions.controllers)');
    const startedAt = Date.now();
    const tookOver = new Doorbell();
    const unwatch = this.log.watch('slurmctld', CTLD_PRIMARY, () => tookOver.ring());
    try {
      this.log.note('slurmctld', `failover: SIGKILL of the primary (pid ${String(primary.pid)})`);
      primary.signal('SIGKILL');
      await primary.exited;
      const fail = this.startFailure('the backup controller taking over', 'slurmctld');
      await raceAgainstDeath((signal) => tookOver.wait(TAKEOVER_TIMEOUT_MS, signal), [backup], TAKEOVER_TIMEOUT_MS, fail);
    } finally {
      unwatch();
    }
    this.slurmctld = backup;
    this.standby = undefined;
    await this.waitForNode();
    await this.kickElasticsearch();
    this.log.note('harness', `backup controller in charge ${Date.now() - startedAt} ms after the primary's SIGKILL`);
  }

  private async startAgain(startedAt: number): Promise<void> {
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
    registerLiveCluster(this.registration);
    this.watchdog = Watchdog.spawn(this.marker, this.log);
    await this.startMunged();
    await this.startController();
    if (this.opts.controllers !== undefined) await this.startBackupController();
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
    this.munged = Daemon.spawn('munged', daemonCommand(this.installation, 'munged'), args, this.daemonEnv(), p.run, this.children, this.log);
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

  /** slurmctld -D (as the first controller host with two); resolves once it listens (slurmd started earlier would retry only after 1 s). */
  private async startController(): Promise<void> {
    const primary = new Doorbell();
    const unwatch = this.log.watch('slurmctld', CTLD_PRIMARY, () => primary.ring());
    const ctld = await this.spawnController(0);
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

  /** The second controller host's slurmctld; resolves once it runs as the backup. */
  private async startBackupController(): Promise<void> {
    const standing = new Doorbell();
    const unwatch = this.log.watch('slurmctld', CTLD_BACKUP, () => standing.ring());
    const ctld = await this.spawnController(1);
    this.standby = ctld;
    try {
      await raceAgainstDeath((signal) => standing.wait(CTLD_PRIMARY_TIMEOUT_MS, signal), [ctld], CTLD_PRIMARY_TIMEOUT_MS, this.startFailure('starting the backup slurmctld', 'slurmctld'));
    } finally {
      unwatch();
    }
  }

  /** slurmctld -D, with two controllers as controller host `index` (controllers.ts). Both log as "slurmctld". */
  private async spawnController(index: 0 | 1): Promise<Daemon> {
    let executable = daemonCommand(this.installation, 'slurmctld');
    let args = ['-D', '-f', this.confPath];
    const hosts = this.opts.controllers;
    if (hosts !== undefined) ({ executable, args } = await asControllerHost(this.paths, hosts[index], hosts, executable, args));
    return Daemon.spawn('slurmctld', executable, args, this.daemonEnv(), this.paths.run, this.children, this.log);
  }

  private async startSlurmd(): Promise<void> {
    const args = ['-D', '-f', this.confPath, '-N', NODE_NAME];
    this.slurmd = Daemon.spawn('slurmd', daemonCommand(this.installation, 'slurmd'), args, this.daemonEnv(), this.paths.run, this.children, this.log);
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
    for (const daemon of [this.slurmd, this.standby, this.slurmctld, this.munged]) {
      if (daemon === undefined) continue;
      const grace = daemon.name === 'slurmctld' ? CTLD_STOP_GRACE_MS : STOP_GRACE_MS;
      const { killed } = await daemon.terminate(grace);
      if (killed && daemon.name === 'slurmctld') problems.push(this.stuckControllerMessage());
      else if (killed) this.log.note(daemon.name, `did not stop within ${grace} ms of SIGTERM: SIGKILLed`);
    }
    await this.watchdog?.release();
    killMarked(this.marker); // the watchdog's sweep, in case it could not run
    unregisterLiveCluster(this.registration);
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

  private assertOneController(what: string): void {
    if (this.opts.controllers !== undefined) throw new SlurmHarnessError(`${what}: not with two controllers (use failOver())`);
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
