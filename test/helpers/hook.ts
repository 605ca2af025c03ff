// Running the real native hook the way Slurm does: argv[0] is the installed path, the
// environment holds only the job's variables, and "<argv0>.conf" configures it.

import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnvDump } from '../../src/record/slurm-env';
import { PROJECT_ROOT } from './cli';

export const HOOK_BINARY = join(PROJECT_ROOT, 'native/build/jobcompd-hook');

export interface HookConfig {
  socket: string;
  spool: string;
  timeoutMs?: number;
  /** more "key = value" lines */
  extra?: string;
}

/** Install the hook as `<dir>/<name>` (a symlink, as a package would) with its config beside it. */
export function installHook(dir: string, name: string, cfg: HookConfig): string {
  const path = join(dir, name);
  symlinkSync(HOOK_BINARY, path);
  writeFileSync(`${path}.conf`, `# written by the test\nsocket = ${cfg.socket}\nspool = ${cfg.spool}\ntimeout_ms = ${cfg.timeoutMs ?? 1000}\n${cfg.extra ?? ''}`);
  return path;
}

export interface HookRun {
  code: number | null;
  stderr: string;
  ms: number;
}

/** Run the hook with exactly `env` as its environment, like slurmctld does; `onSpawn` gets the process. */
export function runHook(path: string, env: ReadonlyMap<string, string>, onSpawn?: (child: ChildProcess) => void): Promise<HookRun> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], { env: Object.fromEntries(env), cwd: '/tmp', stdio: ['ignore', 'ignore', 'pipe'] });
    onSpawn?.(child);
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
  });
}

const CAPTURES = join(__dirname, '../fixtures/script-22.05/run2');

/** The environment a real Slurm 22.05 gave its hook (captures named "<context>.<n>."). */
export function capture(prefix: string): Map<string, string> {
  const name = readdirSync(CAPTURES).find((f) => f.startsWith(prefix));
  if (!name) throw new Error(`no capture ${prefix}`);
  const env = parseEnvDump(readFileSync(join(CAPTURES, name)));
  env.delete('PWD'); // added by the probe's shell, not by Slurm
  return env;
}

/**
 * The program interpreter an ELF executable names (PT_INTERP: the dynamic loader), or null for
 * a static one. 64-bit little-endian only, as the hook is built here.
 */
export function elfInterpreter(path: string): string | null {
  const elf = readFileSync(path);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error(`${path}: not a 64-bit little-endian ELF file`);
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (elf.readUInt32LE(at) !== 3) continue; // PT_INTERP
    const offset = Number(elf.readBigUInt64LE(at + 8));
    const size = Number(elf.readBigUInt64LE(at + 32));
    return elf.toString('latin1', offset, offset + size).replace(/\0+$/, '');
  }
  return null;
}

export function withJobId(env: Map<string, string>, key: 'JOBID' | 'SLURM_JOB_ID', id: number): Map<string, string> {
  const copy = new Map(env);
  copy.set(key, String(id));
  if (key === 'SLURM_JOB_ID') copy.set('SLURM_JOBID', String(id));
  return copy;
}
