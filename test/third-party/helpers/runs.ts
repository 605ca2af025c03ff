// One Slurm release's cluster wired for one path: the real jobcomp/kafka plugin (with
// jobcompd's hook as PrologSlurmctld), jobcomp/elasticsearch -> jobcompd, or jobcomp/script ->
// jobcompd's hook. Each run gets its own jobcompd, topics and cluster directory.

import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consumeAll } from '../../../tools/kafka/consume';
import { SlurmCluster, type ClusterOptions, type SlurmInstallation } from '../../../tools/slurm/cluster';
import { tempDir } from '../../helpers/cli';
import { startDaemon, type DaemonProcess } from '../../helpers/daemon';
import { installHook } from '../../helpers/hook';
import { BodyRelay, environmentRecorder } from './capture';
import { parsePayload, type Payload } from '../../helpers/payload';
import type { Release } from './releases';

export type PathName = 'kafka' | 'elasticsearch' | 'script';

/** JobCompParams flags given to the plugin and to jobcompd alike. */
export const SHARED_FLAGS = 'send_script,send_comment';

export interface PathRun {
  path: PathName;
  dir: string;
  daemon: DaemonProcess;
  slurm: SlurmCluster;
  /** environments saved by the recorders in front of the hook */
  dumps: string;
  relay?: BodyRelay;
  /** the topics this run's end and start records go to (the plugin's for the kafka path) */
  endTopic: string;
  startTopic: string;
  /** jobcompd's start topic (the prolog hook's records) */
  hookStartTopic: string;
}

export interface RunOptions {
  release: Release;
  installation: SlurmInstallation;
  bootstrapServers: string;
  path: PathName;
  /** extra slurm.conf options (the suite's nodes and features) */
  cluster?: ClusterOptions;
  /** the plugin's rdkafka.conf bootstrap servers, when not the broker's (a stopped broker) */
  pluginBootstrap?: string;
  /** jobcompd's [kafka] Listen (its Kafka listener), off when absent */
  kafkaListen?: string;
}

export const CLUSTER_NAME = 'conformance';

/** A fresh directory munged accepts its socket under (every ancestor searchable by all). */
export function clusterBaseDir(prefix: string): string {
  const dir = tempDir(prefix);
  chmodSync(dir, 0o755);
  return dir;
}

export async function startRun(o: RunOptions): Promise<PathRun> {
  const dir = clusterBaseDir(`jobcompd-conf-${o.release.format}-${o.path}-`);
  const tag = `${o.release.format.replace('.', '')}-${o.path}-${Date.now()}`;
  const jobStart = o.release.jobStart ? ',enable_job_start' : '';
  const daemon = await startDaemon({
    bootstrapServers: o.bootstrapServers,
    clusterName: CLUSTER_NAME,
    params: `poll_interval=0.05,topic=jobcompd-${tag},topic_job_start=jobcompd-${tag}-start,${SHARED_FLAGS}${jobStart}`,
    extraConf: `RecordFormat=${o.release.format}`,
    kafkaConf: o.kafkaListen === undefined ? undefined : `Listen=${o.kafkaListen}`,
  });
  const dumps = join(dir, 'dumps');
  const hookCfg = { socket: daemon.hookSocket, spool: daemon.spoolDir, timeoutMs: 5000 };
  const prolog = environmentRecorder(dir, 'prolog', installHook(dir, 'prolog-hook', hookCfg), dumps);
  const opts: ClusterOptions = {
    ...o.cluster,
    dir: join(dir, 'slurm'),
    clusterName: CLUSTER_NAME,
    installation: o.installation,
    prologSlurmctld: prolog,
    jobCompParams: SHARED_FLAGS,
  };
  const run: Omit<PathRun, 'slurm'> = {
    path: o.path,
    dir,
    daemon,
    dumps,
    endTopic: `jobcompd-${tag}`,
    startTopic: `jobcompd-${tag}-start`,
    hookStartTopic: `jobcompd-${tag}-start`,
  };
  if (o.path === 'kafka') {
    const conf = join(dir, 'rdkafka.conf');
    writeFileSync(conf, `bootstrap.servers=${o.pluginBootstrap ?? o.bootstrapServers}\n`);
    run.endTopic = `plugin-${tag}`;
    run.startTopic = `plugin-${tag}-start`;
    Object.assign(opts, {
      jobCompType: 'jobcomp/kafka',
      jobCompLoc: conf,
      jobCompParams: `topic=${run.endTopic},topic_job_start=${run.startTopic},${SHARED_FLAGS}${jobStart}`,
    });
  } else if (o.path === 'elasticsearch') {
    run.relay = await BodyRelay.start(daemon.url);
    Object.assign(opts, { jobCompType: 'jobcomp/elasticsearch', jobCompLoc: `${run.relay.url}/slurm/_doc` });
  } else {
    mkdirSync(dumps, { recursive: true });
    Object.assign(opts, { jobCompType: 'jobcomp/script', jobCompLoc: environmentRecorder(dir, 'jobcomp', installHook(dir, 'jobcomp-hook', hookCfg), dumps) });
  }
  try {
    return { ...run, slurm: await SlurmCluster.start(opts) };
  } catch (err) {
    await run.relay?.close();
    await daemon.stop('SIGTERM');
    throw err;
  }
}

export async function stopRun(run: PathRun | undefined): Promise<void> {
  if (run === undefined) return;
  await run.slurm.stop().catch(() => undefined);
  await run.relay?.close();
  await run.daemon.stop('SIGTERM');
}

export async function consumePayloads(bootstrapServers: string, topic: string, count: number, timeoutMs: number): Promise<Payload[]> {
  const messages = await consumeAll(bootstrapServers, topic, { count, timeoutMs });
  return messages.map((m) => parsePayload(m.value ?? Buffer.alloc(0)));
}
