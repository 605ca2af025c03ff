// Locating the project; installing the packages; the machine's node shape
import * as path from 'node:path';
import { findProjectRoot } from '../harness-common';
import { COMMAND_TIMEOUT_MS, describeExit, lastLines, runCommand } from './commands';
import { SlurmInstallError, SlurmStartError } from './errors';

export { findProjectRoot };

/** Whose Slurm programs run: Debian's packages on PATH, or a release built by build-release.sh. */
export interface SlurmInstallation {
  /** e.g. '22.05' or '24.11.7' */
  release: string;
  /** The install prefix of a built release (bin/, sbin/, lib/slurm/); undefined for Debian's packages. */
  prefix?: string;
}

export const DEBIAN_SLURM: SlurmInstallation = { release: '22.05' };

/** Build a release can take: ~4 min on 2 cores, longer while other builds hold the machine. */
const BUILD_TIMEOUT_MS = 60 * 60_000;

/** The daemon's executable: a built release's sbin/, or the name for PATH. */
export function daemonCommand(inst: SlurmInstallation, name: 'slurmctld' | 'slurmd' | 'munged'): string {
  return inst.prefix !== undefined && name !== 'munged' ? path.join(inst.prefix, 'sbin', name) : name;
}

/** PATH for the clients (sbatch, scontrol...): a built release's bin/ first. */
export function clientPath(inst: SlurmInstallation, pathVar: string | undefined): string {
  const base = pathVar ?? '/usr/bin:/bin';
  return inst.prefix !== undefined ? `${path.join(inst.prefix, 'bin')}:${base}` : base;
}

/**
 * Builds `version` (once: tools/slurm/build-release.sh caches it outside the checkout) and
 * returns where it is. A missing archive or a failed build throws SlurmInstallError with the
 * build log's tail. The caller holds the machine's heavy lock (make conformance does).
 */
export async function buildRelease(version: string, root: string = findProjectRoot()): Promise<SlurmInstallation> {
  const script = path.join(root, 'tools', 'slurm', 'build-release.sh');
  const result = await runCommand(script, [version], { cwd: root, env: process.env, timeoutMs: BUILD_TIMEOUT_MS });
  const prefix = result.stdout.trim().split('\n').pop();
  if (result.error !== undefined || result.code !== 0 || prefix === undefined || prefix === '') {
    throw new SlurmInstallError(`${script} ${version} failed (${describeExit(result)}):\n${lastLines(result.stderr, 40)}`);
  }
  return { release: version, prefix };
}

/** Debian's packages: installed if missing. A built release: built by buildRelease() already. */
export function ensureInstalled(inst: SlurmInstallation): Promise<void> {
  return inst.prefix === undefined ? ensureSlurmInstalled() : Promise.resolve();
}

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
export interface NodeShape {
  shape: string;
  realMemory: string;
}

const nodeShapes = new Map<string, Promise<NodeShape>>();

export function machineNodeShape(inst: SlurmInstallation): Promise<NodeShape> {
  const slurmd = daemonCommand(inst, 'slurmd');
  const known = nodeShapes.get(slurmd);
  if (known !== undefined) return known;
  const shape = (async () => {
    const result = await runCommand(slurmd, ['-C'], { cwd: '/', env: process.env, timeoutMs: COMMAND_TIMEOUT_MS });
    const first = result.stdout.split('\n')[0] ?? '';
    const keys = ['CPUs', 'Boards', 'SocketsPerBoard', 'CoresPerSocket', 'ThreadsPerCore', 'RealMemory'];
    const fields = first.split(/\s+/).filter((f) => keys.includes(f.split('=')[0] ?? ''));
    const realMemory = fields.find((f) => f.startsWith('RealMemory='));
    if (result.code !== 0 || realMemory === undefined) {
      throw new SlurmStartError('slurmd -C did not report the node shape', `${result.stdout}${result.stderr}`);
    }
    return { shape: fields.join(' '), realMemory };
  })().catch((err: unknown) => {
    nodeShapes.delete(slurmd);
    throw err;
  });
  nodeShapes.set(slurmd, shape);
  return shape;
}
