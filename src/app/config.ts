// Everything a command needs to know, read and validated in one place:
// jobcompd.conf (+ slurm.conf), JobCompParams and the JobCompLoc librdkafka file, turned
// into the settings of the producer. Here, not in config/, because the last step asks
// librdkafka (producer/).

import { loadDaemonConfig, type DaemonConfig, type LoadOptions } from '../config/daemon-conf';
import { checkTopicName, parseJobCompParams, type JobCompParams } from '../config/jobcomp-params';
import { readRdkafkaConf } from '../config/jobcomploc-file';
import { startRecordsOff } from '../record/record-format';
import { checkUpstreamIsNotListener } from '../config/upstream-loop';
import { buildProducerSettings, verifyProducerCreation, type ProducerSettings } from '../producer/librdkafka-settings';

export interface LoadedConfig {
  /** how it was loaded, to load it again on SIGHUP */
  options: LoadOptions;
  daemon: DaemonConfig;
  params: JobCompParams;
  producer: ProducerSettings;
  warnings: string[];
}

export function loadConfig(opts: LoadOptions): LoadedConfig {
  const daemon = loadDaemonConfig(opts);
  const { params, warnings } = parseJobCompParams(daemon.jobCompParams, daemon.jobCompParamsFrom);
  const producer = buildProducerSettings(readRdkafkaConf(daemon.jobCompLoc));
  checkUpstreamIsNotListener(producer.file, producer.properties, daemon.kafka.listen);
  if (params.topic === undefined || params.topicJobStart === undefined) {
    // the default topics derive from ClusterName, which must then make a legal topic name
    checkTopicName(daemon.clusterName, { file: daemon.configFile ?? '(command line)', key: 'ClusterName' });
  }
  return { options: opts, daemon, params, producer, warnings: [...warnings, ...producer.warnings] };
}

/**
 * loadConfig(), then a librdkafka handle created from the producer settings, so that
 * properties librdkafka refuses only together fail like any other bad configuration
 * (exit 78, file:line: key). On a reload (`current` given) only changed settings are tried.
 */
export async function loadVerifiedConfig(opts: LoadOptions, current?: LoadedConfig): Promise<LoadedConfig> {
  const cfg = loadConfig(opts);
  if (current === undefined || !sameProducerSettings(current.producer, cfg.producer)) await verifyProducerCreation(cfg.producer);
  return cfg;
}

export function sameProducerSettings(a: ProducerSettings, b: ProducerSettings): boolean {
  const flat = (s: ProducerSettings): string => JSON.stringify([...s.properties.values()].map((p) => [p.key, p.value]));
  return flat(a) === flat(b);
}

/** The topic each event goes to (docs/configuration.md "JobCompParams"): JobCompParams, else derived from ClusterName. */
export function topicsOf(params: JobCompParams, clusterName: string): { finish: string; start: string } {
  return { finish: params.topic ?? clusterName, start: params.topicJobStart ?? `${clusterName}-job-start` };
}

/**
 * The topics this configuration publishes to: the finish topic, and the start topic unless
 * start records are off (`startOff` says why: the layout has none, or enable_job_start is not set).
 */
export function writtenTopics(cfg: LoadedConfig): { finish: string; start: string; startOff: string | undefined; names: string[] } {
  const topics = topicsOf(cfg.params, cfg.daemon.clusterName);
  const startOff = startRecordsOff(cfg.daemon.recordFormat.layout, cfg.params.enableJobStart);
  return { ...topics, startOff, names: startOff === undefined ? [topics.finish, topics.start] : [topics.finish] };
}
