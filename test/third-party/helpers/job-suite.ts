// The varied job suite of issue 12, submitted the same way to every cluster: so that the
// records of one job from two runs can be matched by name and compared byte for byte.

import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SlurmCluster } from '../../../tools/slurm/cluster';

/** Quotes, backslash, slash, tab and non-ASCII, in a job name and a working directory. */
export const ODD_NAME = 'odd "quoted" back\\slash/slash\ttab ünïcødé';
const ODD_DIR = 'wd "q" back\\slash\ttab ünïcødé';
export const EXCLUDED_NODE = 'ghost';
export const FEATURES = 'fa,fb';
const RESERVATION = 'resv';

/** Cluster options the suite needs: a node to exclude, features, room for the running jobs. */
export const SUITE_CLUSTER = { nodeCpus: 16, futureNodes: [EXCLUDED_NODE], nodeFeatures: FEATURES };

export interface SubmittedSuite {
  /** job id -> job name, for every job (array tasks and het components get theirs from the records) */
  names: Map<number, string>;
  /** end records expected: one per job, array task and het component */
  endCount: number;
  /** start records expected: every job that ran */
  startCount: number;
}

/**
 * A shared directory (the same in every run, so work_dir and std_* compare equal) with an odd
 * name; the jobs' output goes there.
 */
export function prepareWorkDir(base: string): string {
  const dir = join(base, ODD_DIR);
  mkdirSync(dir, { recursive: true });
  chmodSync(base, 0o755);
  return dir;
}

/**
 * Submits the suite and settles what needs the client (cancels, admin comment, release); the
 * jobs then end by themselves: the TIMEOUT one 60-90 s after it starts.
 */
export async function submitSuite(slurm: SlurmCluster, workDir: string): Promise<SubmittedSuite> {
  const names = new Map<number, string>();
  const common = ['-D', workDir, '-t', '5', '-o', '/dev/null'];
  const submit = async (name: string, args: string[]): Promise<number> => {
    const id = await slurm.sbatch(['-J', name, ...common, ...args]);
    names.set(id, name);
    return id;
  };
  await slurm.scontrol(['create', 'reservation', `ReservationName=${RESERVATION}`, 'Users=root', 'StartTime=now', 'Duration=60', 'Nodes=localhost', 'CoreCnt=1']);

  const ok = await submit('ok', ['--wrap', 'sleep 1']);
  await submit('fail', ['--wrap', 'exit 3']);
  const pending = await submit('cancel_pending', ['-H', '--wrap', 'sleep 300']);
  const running = await submit('cancel_running', ['--wrap', 'sleep 300']);
  await submit('timeout', ['-t', '1', '--wrap', 'sleep 300']);
  await submit('arr', ['--array=1-3', '-o', join(workDir, 'arr-%A_%a.out'), '--wrap', 'echo task $SLURM_ARRAY_TASK_ID']);
  await submit('dep', ['-d', `afterok:${ok}`, '--wrap', 'true']);
  await submit('excluded', ['-x', EXCLUDED_NODE, '--wrap', 'true']);
  await submit('features', ['-C', 'fa', '--wrap', 'true']);
  await submit('reservation', ['--reservation', RESERVATION, '--wrap', 'true']);
  await submit('wckey', ['--wckey', 'wk1', '--wrap', 'true']);
  await submit(ODD_NAME, ['-e', join(workDir, 'err "%j".txt'), '--comment', 'a "comment" \\ / ü', '--wrap', 'true']);
  const admin = await submit('admin_comment', ['-H', '--comment', 'user comment', '--wrap', 'true']);
  const hetScript = join(workDir, 'het.sh');
  // The three clusters of a release submit from the same work dir at once: written under another
  // name and renamed, so that another cluster's sbatch never reads it truncated ("Batch script is empty!").
  const hetTemp = `${hetScript}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  writeFileSync(hetTemp, '#!/bin/sh\n#SBATCH -n 1\n#SBATCH hetjob\n#SBATCH -n 1\ntrue\n');
  renameSync(hetTemp, hetScript);
  // A het job cannot run on one node (its second component never schedules): cancelled pending.
  const het = await submit('het', ['-H', hetScript]);

  await slurm.scontrol(['update', `JobId=${admin}`, 'AdminComment=admin "said" \\ / ü']);
  await slurm.scontrol(['release', String(admin)]);
  await slurm.waitForJobState(running, ['RUNNING'], 60_000);
  await slurm.scancel([String(running), String(pending), String(het)]);
  // end: 12 jobs + 3 array tasks + 2 het components; start: all but the three cancelled pending
  return { names, endCount: 17, startCount: 14 };
}
