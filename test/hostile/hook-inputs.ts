// Environments for the hook's two input surfaces (the Unix socket and the spool directory):
// the captured jobcomp/script, PrologSlurmctld and EpilogSlurmctld environments of a real
// Slurm 22.05, and hostile variations of them. Framing ("JCH1" | length) is added by the
// callers, which also break it in their own ways.

import { Rng } from '../helpers/random';
import { capturedEnvs, envBlock } from './fuzz-kit';

type Entries = [string, string][];

const JOBCOMP = capturedEnvs('jobcomp').map((m) => [...m] as Entries);
const PROLOG = capturedEnvs('prolog_ctld').map((m) => [...m] as Entries);
const EPILOG = capturedEnvs('epilog_ctld').map((m) => [...m] as Entries);

function copy(entries: Entries): Entries {
  return entries.map(([k, v]) => [k, v]);
}

function set(entries: Entries, key: string, value: string): void {
  const at = entries.findIndex(([k]) => k === key);
  if (at >= 0) (entries[at] as [string, string])[1] = value;
  else entries.push([key, value]);
}

function drop(entries: Entries, key: string): void {
  for (let at = entries.findIndex(([k]) => k === key); at >= 0; at = entries.findIndex(([k]) => k === key)) entries.splice(at, 1);
}

/** A valid jobcomp/script environment of this job id. */
export function jobcompEnv(rng: Rng, jobId: number): Entries {
  const e = copy(rng.pick(JOBCOMP));
  set(e, 'JOBID', String(jobId));
  return e;
}

/** A valid PrologSlurmctld environment, as the hook sends it (with JOBCOMPD_HOOK_TIME). */
export function prologEnv(rng: Rng, jobId: number): Entries {
  const e = copy(rng.pick(PROLOG));
  set(e, 'SLURM_JOB_ID', String(jobId));
  set(e, 'SLURM_JOBID', String(jobId));
  set(e, 'JOBCOMPD_HOOK_TIME', `${1795319410 + rng.int(1000)}.${String(rng.int(1e9)).padStart(9, '0')}`);
  return e;
}

export const KNOWN_ID_BASE = 9_000_000;

export function randomJobId(rng: Rng): number {
  return rng.between(1, KNOWN_ID_BASE - 1);
}

/** A value with any byte but NUL (the entry separator). */
function binaryValue(rng: Rng, n: number): string {
  return rng.bytes(n, 1, 255).toString('latin1');
}

const JOBCOMP_STRINGS = ['JOBNAME', 'WORK_DIR', 'STDOUT', 'STDERR', 'STDIN', 'ACCOUNT', 'PARTITION', 'NODES', 'USERNAME', 'GROUPNAME', 'CLUSTER', 'QOS', 'RESERVATION', 'DEPENDENCY', 'CONSTRAINTS', 'JOBSTATE'];
const JOBCOMP_UINTS = ['JOBID', 'UID', 'GID', 'PROCS', 'NODECNT', 'START', 'END', 'SUBMIT', 'ELIGIBLE', 'ARRAYJOBID', 'ARRAYTASKID', 'PACKJOBID', 'PACKJOBOFFSET', 'HETJOBID', 'HETJOBOFFSET'];
const JOBCOMP_REQUIRED = ['JOBID', 'UID', 'GID', 'PROCS', 'NODECNT', 'EXITCODE', 'DERIVED_EC', 'JOBSTATE'];
const BAD_UINTS = ['abc', '-1', '1.5', ' 1', '1 ', '0x10', '1e3', '9999999999999999', '99999999999999999999', '+1', '١', 'NaN', 'Infinity', '1_000', '\u00ff', '\t'];
const BAD_EXIT = ['x', '1', ':', '1:', ':1', '1:2:3', '', '-1:0', '0:0 ', ' 0:0', '0;0', 'a:b', '99999999999999999999:0'];
const ODD_LIMITS = ['UNLIMITED', 'Partition_Limit', '1-00:00:00', '00:00', '0:00:00', '99:59:59', '1-', '-1:00:00', '365-00:00:00', '', 'NOT_SET', '1:2:3'];
const ODD_TIMES = ['0', '4294967294', '4294967295', '1', '253402300799', '253402300800', '999999999999999', ''];
const PROLOG_CPUS = ['4(x2),2', '1', '', '0', '1(x0)', 'x', '4(x)', '(x2)', '1,,2', '4(x2', '999999(x999999)', '1,2,3,4,5,6,7,8'];

export interface EnvCase {
  kind: string;
  env: Buffer;
  knownJobId?: number;
}

/** Fixed positions (not multiples of 50, which are the known records). */
export const HEAVY_ENV_CASES: Record<number, string> = {
  1111: 'many-vars',
  3333: 'many-vars',
  5555: 'many-vars',
  2222: 'near-max-job-name',
  7777: 'near-max-job-name',
  4321: 'prolog-hook-time-huge',
  8642: 'prolog-hook-time-huge',
  6789: 'limit-400-digits',
  9876: 'prolog-cpus-400-digits',
};

/** The content of case `index`: an environment block (unframed). */
export function generateEnv(rng: Rng, index: number): EnvCase {
  if (index % 50 === 0) {
    const jobId = KNOWN_ID_BASE + index / 50;
    return { kind: 'known-jobcomp', env: envBlock(jobcompEnv(rng, jobId)), knownJobId: jobId };
  }
  const heavy = HEAVY_ENV_CASES[index];
  if (heavy !== undefined) {
    const e = heavy.startsWith('prolog') ? prologEnv(rng, randomJobId(rng)) : jobcompEnv(rng, randomJobId(rng));
    if (heavy === 'many-vars') for (let i = rng.between(20_000, 60_000); i > 0; i--) e.push([`V${i}`, String(i)]);
    if (heavy === 'near-max-job-name') set(e, 'JOBNAME', 'n'.repeat(1_030_000));
    if (heavy === 'prolog-hook-time-huge') set(e, 'JOBCOMPD_HOOK_TIME', '9'.repeat(rng.between(17, 40)));
    if (heavy === 'limit-400-digits') set(e, 'LIMIT', `${'9'.repeat(400)}:00:00`);
    if (heavy === 'prolog-cpus-400-digits') set(e, 'SLURM_JOB_CPUS_PER_NODE', `${'9'.repeat(400)}(x2)`);
    return { kind: heavy, env: envBlock(e) };
  }

  const kind = rng.weighted<string>([
    [14, 'jobcomp-odd'],
    [8, 'prolog'],
    [4, 'epilog'],
    [6, 'no-context'],
    [2, 'empty'],
    [12, 'wrong-type'],
    [8, 'missing'],
    [8, 'binary-values'],
    [6, 'binary-noise'],
    [6, 'odd-entries'],
    [10, 'mutated'],
  ]);
  const jobId = randomJobId(rng);
  switch (kind) {
    case 'jobcomp-odd': {
      const e = jobcompEnv(rng, jobId);
      for (let n = rng.between(1, 4); n > 0; n--) {
        const what = rng.int(8);
        if (what === 0) set(e, 'LIMIT', rng.pick(ODD_LIMITS));
        else if (what === 1) set(e, rng.pick(['START', 'END', 'SUBMIT', 'ELIGIBLE']), rng.pick(ODD_TIMES));
        else if (what === 2) set(e, 'ARRAYTASKID', rng.pick(['4294967294', '0', '7', '']));
        else if (what === 3) set(e, rng.pick(JOBCOMP_STRINGS), rng.pick(['', 'nobody', 'unknown', 'x'.repeat(rng.between(1000, 40_000)), 'jöb 名前 🚀', '/a/b/%j.out']));
        else if (what === 4) set(e, rng.pick(['UID', 'GID']), rng.pick(['65534', '0', '4294967294', '999999999999999']));
        else if (what === 5) e.push([`UNKNOWN_${rng.int(100)}`, binaryValue(rng, rng.between(0, 50))]);
        else if (what === 6) set(e, rng.pick(['PACKJOBID', 'HETJOBID', 'HETJOBOFFSET']), String(rng.int(100)));
        else drop(e, rng.pick(['START', 'END', 'SUBMIT', 'LIMIT', 'WORK_DIR', 'PARTITION', 'NODES', 'ARRAYTASKID']));
      }
      return { kind, env: envBlock(e) };
    }
    case 'prolog': {
      const e = prologEnv(rng, jobId);
      if (rng.chance(0.4)) set(e, 'SLURM_JOB_CPUS_PER_NODE', rng.pick(PROLOG_CPUS));
      if (rng.chance(0.2)) set(e, 'JOBCOMPD_HOOK_TIME', rng.pick(['', 'abc', '0', '1.5', '1795319410', '-1', '1e9']));
      if (rng.chance(0.2)) drop(e, 'JOBCOMPD_HOOK_TIME');
      if (rng.chance(0.2)) set(e, rng.pick(['SLURM_ARRAY_TASK_ID', 'SLURM_ARRAY_JOB_ID', 'SLURM_HET_JOB_ID', 'SLURM_JOB_NUM_NODES']), rng.pick(['1', 'abc', '', '999999999999999']));
      if (rng.chance(0.2)) set(e, 'SLURM_JOB_ACCOUNT', rng.pick(['(null)', '', 'acct', binaryValue(rng, 10)]));
      return { kind, env: envBlock(e) };
    }
    case 'epilog': {
      const e = copy(rng.pick(EPILOG));
      if (rng.chance(0.3)) set(e, 'SLURM_JOB_ID', rng.pick(['abc', '', String(jobId), '-1']));
      return { kind, env: envBlock(e) };
    }
    case 'no-context': {
      const e: Entries = [];
      for (let n = rng.between(0, 30); n > 0; n--) e.push([rng.pick(['PATH', 'HOME', 'SLURM_JOB_ID', 'JOB_ID', 'jobid', 'SLURM_SCRIPT_CONTEXT_X', `V${rng.int(99)}`]), binaryValue(rng, rng.between(0, 20))]);
      if (rng.chance(0.3)) e.push(['SLURM_SCRIPT_CONTEXT', rng.pick(['', 'prolog', 'PROLOG_SLURMCTLD', 'epilog_slurmd', 'prolog_slurmctld '])]);
      return { kind, env: envBlock(e) };
    }
    case 'empty':
      return { kind, env: Buffer.from(rng.pick(['', '\0', '\0\0\0', '=', '=\0', 'A', '==\0']), 'latin1') };
    case 'wrong-type': {
      const e = jobcompEnv(rng, jobId);
      for (let n = rng.between(1, 2); n > 0; n--) {
        if (rng.chance(0.3)) set(e, rng.pick(['EXITCODE', 'DERIVED_EC']), rng.pick(BAD_EXIT));
        else set(e, rng.pick(JOBCOMP_UINTS), rng.pick(BAD_UINTS));
      }
      return { kind, env: envBlock(e) };
    }
    case 'missing': {
      const e = jobcompEnv(rng, jobId);
      for (let n = rng.between(1, 3); n > 0; n--) drop(e, rng.pick(JOBCOMP_REQUIRED));
      return { kind, env: envBlock(e) };
    }
    case 'binary-values': {
      const e = jobcompEnv(rng, jobId);
      for (let n = rng.between(1, 5); n > 0; n--) set(e, rng.pick(JOBCOMP_STRINGS.filter((k) => k !== 'JOBSTATE' || rng.chance(0.5))), binaryValue(rng, rng.between(1, 200)));
      return { kind, env: envBlock(e) };
    }
    case 'binary-noise':
      return { kind, env: rng.bytes(rng.between(0, 4000)) };
    case 'odd-entries': {
      const e = jobcompEnv(rng, jobId);
      const text = envBlock(e).toString('latin1');
      const extras = ['NOEQUALS\0', '=startswithequals\0', 'JOBID=\0', `JOBID=${jobId}\0`, 'A==B=C\0', '\0\0\0', `JOBID=${randomJobId(rng)}\0`, 'JOBNAME=a\nb\r\0'];
      let out = text;
      for (let n = rng.between(1, 4); n > 0; n--) {
        const at = rng.chance(0.5) ? 0 : out.length;
        out = `${out.slice(0, at)}${rng.pick(extras)}${out.slice(at)}`;
      }
      if (rng.chance(0.3)) out = out.replace(/\0$/, ''); // last entry without its NUL
      return { kind, env: Buffer.from(out, 'latin1') };
    }
    default: {
      const bytes = [...envBlock(rng.chance(0.7) ? jobcompEnv(rng, jobId) : prologEnv(rng, jobId))];
      for (let n = rng.between(1, 4); n > 0; n--) {
        const at = rng.int(bytes.length);
        const op = rng.int(4);
        const b = rng.chance(0.5) ? rng.pick([0, 0x3d, 0x3a, 0x30, 0x39, 0x2d, 0x20]) : rng.int(256);
        if (op === 0) bytes[at] = b;
        else if (op === 1) bytes.splice(at, 0, b);
        else if (op === 2) bytes.splice(at, 1);
        else bytes.splice(at, 0, ...bytes.slice(at, at + rng.between(1, 40)));
      }
      return { kind: 'mutated', env: Buffer.from(bytes) };
    }
  }
}
