// Everything a command needs to know, read and validated in one place:
// jobcompd.conf (+ slurm.conf), JobCompParams and the JobCompLoc librdkafka file.

import { loadDaemonConfig, type DaemonConfig, type LoadOptions } from './daemon-conf';
import { checkTopicName, parseJobCompParams, type JobCompParams } from './jobcomp-params';
import { readRdkafkaConf } from './rdkafka-conf';
import { buildProducerSettings, type ProducerSettings } from '../producer/rdkafka-config';

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
  if (params.topic === undefined || params.topicJobStart === undefined) {
    // the default topics derive from ClusterName, which must then make a legal topic name
    checkTopicName(daemon.clusterName, { file: daemon.configFile ?? '(command line)', key: 'ClusterName' });
  }
  return { options: opts, daemon, params, producer, warnings: [...warnings, ...producer.warnings] };
}

/** The topic each event goes to (docs/configuration.md "JobCompParams"): JobCompParams, else derived from ClusterName. */
export function topicsOf(params: JobCompParams, clusterName: string): { finish: string; start: string } {
  return { finish: params.topic ?? clusterName, start: params.topicJobStart ?? `${clusterName}-job-start` };
}
