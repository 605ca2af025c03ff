// The cluster's directory layout and slurm.conf.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { SlurmOptionsError } from './errors';
import type { NodeShape, SlurmInstallation } from './install';

export type JobCompType = 'jobcomp/none' | 'jobcomp/script' | 'jobcomp/elasticsearch' | 'jobcomp/kafka';

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
  /** Features= of node localhost (for `--constraint`). */
  nodeFeatures?: string;
  /**
   * More nodes, never started (State=FUTURE, outside the partition), for `--exclude`. Written
   * before localhost: a node after it makes slurmctld exit with "Duplicated NodeHostName".
   */
  futureNodes?: string[];
  /** Whose slurmctld and slurmd run. Default: Debian 12's packages (22.05). */
  installation?: SlurmInstallation;
  /**
   * A primary and a backup slurmctld (two SlurmctldHost lines), each in its own UTS and mount
   * namespace with its own host name, address, /etc/hosts, log and pid file (controllers.ts).
   * Default: one controller, `localhost(127.0.0.1)`.
   */
  controllers?: readonly [ControllerHost, ControllerHost];
}

/** A controller host: its name, the loopback address it listens on, and extra /etc/hosts names it sees. */
export interface ControllerHost {
  name: string;
  address: string;
  /** name -> address, only in this controller's /etc/hosts (e.g. "the jobcompd beside me") */
  hosts?: Readonly<Record<string, string>>;
}

/** The backup takes over this long after the primary stops answering (Slurm's default is 120 s). */
export const FAILOVER_SLURMCTLD_TIMEOUT_S = 3;

export const NODE_NAME = 'localhost';
/** Schedulable base states: idle, or busy with jobs recovered across a slurmctld restart. */
const NODE_READY_STATES = new Set(['IDLE', 'MIXED', 'ALLOCATED']);

export interface Layout {
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

export function layout(dir: string): Layout {
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

export async function prepareLayout(paths: Layout): Promise<void> {
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

export interface Ports {
  slurmctld: number;
  slurmd: number;
}

/** slurm.conf as start-slurm.sh in the lab writes it, on the given ports and paths. */
export function renderSlurmConf(paths: Layout, ports: Ports, node: NodeShape, opts: ClusterOptions): string {
  const settings: [string, string][] = [
    ['ClusterName', opts.clusterName ?? 'testcluster'],
    // Accepted although the hostname is not "localhost" (NOTES §4).
    ...(opts.controllers ?? [{ name: NODE_NAME, address: '127.0.0.1' }]).map((c): [string, string] => ['SlurmctldHost', `${c.name}(${c.address})`]),
    ...(opts.controllers !== undefined ? [['SlurmctldTimeout', String(FAILOVER_SLURMCTLD_TIMEOUT_S)] as [string, string]] : []),
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
  const features = opts.nodeFeatures !== undefined ? ` Features=${opts.nodeFeatures}` : '';
  const shape = opts.nodeCpus !== undefined ? `CPUs=${opts.nodeCpus} ${node.realMemory}` : node.shape;
  return [
    `# Written by tools/slurm/cluster.ts for Slurm ${opts.installation?.release ?? '22.05'}; rewritten on every start.`,
    ...lines,
    ...appended,
    ...(opts.futureNodes ?? []).map((name) => `NodeName=${name} NodeAddr=127.0.0.1 CPUs=1 State=FUTURE`),
    `NodeName=${NODE_NAME} NodeAddr=127.0.0.1 ${shape}${features} State=UNKNOWN`,
    `PartitionName=debug Nodes=${NODE_NAME} Default=YES MaxTime=INFINITE State=UP`,
    '',
  ].join('\n');
}

/** slurmctld starts without a usable script and only logs an error: fail early and clearly instead. */
export function checkOptions(opts: ClusterOptions): void {
  const scripts: [string, string | undefined][] = [
    ['PrologSlurmctld', opts.prologSlurmctld],
    ['EpilogSlurmctld', opts.epilogSlurmctld],
  ];
  if (opts.jobCompType === 'jobcomp/script') {
    if (opts.jobCompLoc === undefined) throw new SlurmOptionsError('jobcomp/script needs jobCompLoc (the script)');
    scripts.push(['JobCompLoc', opts.jobCompLoc]);
  }
  if (opts.jobCompType === 'jobcomp/kafka') {
    // The plugin's init fails on an unreadable file, and slurmctld with it.
    const loc = opts.jobCompLoc;
    if (loc === undefined || !path.isAbsolute(loc) || !fs.existsSync(loc)) {
      throw new SlurmOptionsError(`jobcomp/kafka needs jobCompLoc, the absolute path of an rdkafka.conf file (got ${String(loc)})`);
    }
    if (opts.installation === undefined) throw new SlurmOptionsError('jobcomp/kafka needs a release built from source (Debian 12 has 22.05, without it)');
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
export function withoutSlurmVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) {
    if (!/^(SLURM|SBATCH|SALLOC|SRUN|SQUEUE|SINFO|SACCT|SCANCEL|SCONTROL)_/.test(key)) clean[key] = value;
  }
  return clean;
}

export function nodeField(showNode: string, key: string): string | undefined {
  return new RegExp(`\\b${key}=(\\S+)`).exec(showNode)?.[1];
}

export function nodeSummary(showNode: string): string {
  return ['State', 'SlurmdStartTime', 'Reason'].map((k) => `${k}=${nodeField(showNode, k) ?? '?'}`).join(' ');
}

/** `scontrol show node -o`: registered with this slurmctld, responding, and schedulable. */
export function nodeReady(showNode: string): boolean {
  const state = nodeField(showNode, 'State') ?? '';
  const [base, ...flags] = state.split('+');
  return (
    NODE_READY_STATES.has(base ?? '') &&
    flags.every((f) => f === 'COMPLETING') &&
    !state.includes('*') &&
    (nodeField(showNode, 'SlurmdStartTime') ?? 'None') !== 'None'
  );
}

export function parseJobId(stdout: string): number | undefined {
  const match = /^Submitted batch job (\d+)/m.exec(stdout) ?? /^(\d+)(?:;\S+)?\s*$/m.exec(stdout);
  return match?.[1] !== undefined ? Number(match[1]) : undefined;
}
