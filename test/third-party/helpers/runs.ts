// One Slurm release's cluster wired for one path: the real jobcomp/kafka plugin (with
// jobcompd's hook as PrologSlurmctld) producing to the broker or to jobcompd's Kafka listener,
// jobcomp/elasticsearch -> jobcompd, or jobcomp/script -> jobcompd's hook. Each run gets its
// own jobcompd, topics and cluster directory.

import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consumeAll } from '../../../tools/kafka/consume';
import { SlurmCluster, type ClusterOptions, type SlurmInstallation } from '../../../tools/slurm/cluster';
import { tempDir } from '../../helpers/cli';
import { startDaemon, type DaemonProcess } from '../../helpers/daemon';
import { installHook } from '../../helpers/hook';
import { reserveLoopbackPorts } from '../../../tools/harness-common';
import { BodyRelay, environmentRecorder, ProduceRelay } from './capture';
import { parsePayload, type Payload } from '../../helpers/payload';
import type { Release } from './releases';

/** `listener`: jobcomp/kafka producing to jobcompd's Kafka listener, through a ProduceRelay. */
export type PathName = 'kafka' | 'listener' | 'elasticsearch' | 'script';

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
  /** the listener path: every record the plugin produced, read off the wire in front of the listener */
  produceRelay?: ProduceRelay;
  /** the topics this run's end and start records go to (the plugin's for the kafka and listener paths) */
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
  // The relay needs the listener's port before jobcompd starts: the plugin's file names the relay.
  const [listenPort] = o.path === 'listener' ? await reserveLoopbackPorts(1) : [];
  const produceRelay = listenPort === undefined ? undefined : await ProduceRelay.start('127.0.0.1', listenPort);
  const daemon = await startDaemon({
    bootstrapServers: o.bootstrapServers,
    clusterName: CLUSTER_NAME,
    params: `poll_interval=0.05,topic=jobcompd-${tag},topic_job_start=jobcompd-${tag}-start,${SHARED_FLAGS}${jobStart}`,
    extraConf: `RecordFormat=${o.release.format}`,
    kafkaConf: listenPort === undefined ? undefined : `Listen=127.0.0.1:${listenPort}`,
  }).catch(async (err: unknown) => {
    await produceRelay?.close();
    throw err;
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
    produceRelay,
    endTopic: `jobcompd-${tag}`,
    startTopic: `jobcompd-${tag}-start`,
    hookStartTopic: `jobcompd-${tag}-start`,
  };
  if (o.path === 'kafka' || o.path === 'listener') {
    const conf = join(dir, 'rdkafka.conf');
    writeFileSync(conf, `bootstrap.servers=${produceRelay === undefined ? o.bootstrapServers : `127.0.0.1:${produceRelay.port}`}\n`);
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
    await produceRelay?.close();
    await daemon.stop('SIGTERM');
    throw err;
  }
}

export async function stopRun(run: PathRun | undefined): Promise<void> {
  if (run === undefined) return;
  await run.slurm.stop().catch(() => undefined);
  await run.relay?.close();
  await run.produceRelay?.close();
  await run.daemon.stop('SIGTERM');
}

export async function consumePayloads(bootstrapServers: string, topic: string, count: number, timeoutMs: number): Promise<Payload[]> {
  const messages = await consumeAll(bootstrapServers, topic, { count, timeoutMs });
  return messages.map((m) => parsePayload(m.value ?? Buffer.alloc(0)));
}
