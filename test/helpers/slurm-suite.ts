// A real Slurm 22.05 cluster wired to a real jobcompd and Kafka broker, through one of the
// input paths, and the standard job mix submitted to it.

import { join } from 'node:path';
import { SlurmCluster, type ClusterOptions } from '../../tools/slurm/cluster';
import type { ConsumedMessage } from '../../tools/kafka/consume';
import type { DaemonProcess } from './daemon';
import { installHook } from './hook';

export type EndPath = 'elasticsearch' | 'script';

/** A record as consumers see it. */
export type Rec = Record<string, unknown> & { jobid: number };

export function records(messages: ConsumedMessage[]): Rec[] {
  return messages.map((m) => JSON.parse(m.value?.toString('utf8') ?? 'null') as Rec);
}

/** slurm.conf settings that send end records through `path` and start records through the prolog hook. */
export function clusterFor(d: DaemonProcess, path: EndPath, clusterName: string): ClusterOptions {
  const hookCfg = { socket: d.hookSocket, spool: d.spoolDir };
  const prolog = installHook(d.dir, 'prolog-hook', hookCfg);
  const opts: ClusterOptions = { clusterName, prologSlurmctld: prolog, nodeCpus: 8 };
  if (path === 'elasticsearch') return { ...opts, jobCompType: 'jobcomp/elasticsearch', jobCompLoc: `${d.url}/slurm/_doc` };
  return { ...opts, jobCompType: 'jobcomp/script', jobCompLoc: installHook(d.dir, 'jobcomp-hook', hookCfg) };
}

export interface JobMix {
  ok: number;
  fail: number;
  cancelPending: number;
  cancelRunning: number;
  array: number;
  /** end records expected: one per job, one per array task */
  endCount: number;
  /** start records expected: every job that started */
  startCount: number;
}

/** The standard mix: completes, exits 3, cancelled pending, cancelled running, a 3-task array. */
export async function submitJobMix(slurm: SlurmCluster): Promise<JobMix> {
  const ok = await slurm.sbatch(['-J', 'ok', '-o', '/dev/null', '--wrap', 'sleep 1']);
  const fail = await slurm.sbatch(['-J', 'fail', '-o', '/dev/null', '--wrap', 'exit 3']);
  const cancelPending = await slurm.sbatch(['-J', 'cancel_pending', '-H', '-o', '/dev/null', '--wrap', 'sleep 300']);
  const cancelRunning = await slurm.sbatch(['-J', 'cancel_running', '-o', '/dev/null', '--wrap', 'sleep 300']);
  const array = await slurm.sbatch(['-J', 'arr', '--array=1-3', '-o', join(slurm.dir, 'arr-%A_%a.out'), '--wrap', 'echo task $SLURM_ARRAY_TASK_ID']);
  await slurm.waitForJobState(cancelRunning, ['RUNNING'], 60_000);
  await slurm.scancel([String(cancelRunning), String(cancelPending)]);
  return { ok, fail, cancelPending, cancelRunning, array, endCount: 7, startCount: 6 };
}

export function byJobName(recs: Rec[], name: string): Rec[] {
  return recs.filter((r) => r.job_name === name);
}
