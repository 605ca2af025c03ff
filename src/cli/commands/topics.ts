// `jobcompd topics create|describe`: the topics this configuration writes (ClusterName and
// <ClusterName>-job-start, or JobCompParams topic= / topic_job_start=), created with the
// partitions, replication factor and configs asked for ([topics], or the options), or
// described as they are (docs/operations.md "jobcompd topics").

import type { LoadOptions, TopicsWanted } from '../../config/daemon-conf';
import { loadVerifiedConfig, writtenTopics, type LoadedConfig } from '../../app/config';
import { topicLine, topicMismatches } from '../../app/topic-check';
import { EXIT_UNAVAILABLE, KafkaAdminCodes, KafkaAdminError } from '../../errors';
import { probeKafka, ProbeError, type ProbeResult } from '../../producer/kafka-probe';
import { createTopics, describeSpec, type TopicSpec } from '../../producer/topic-admin';

const TIMEOUT_MS = 15_000;
const METADATA_POLL_MS = 200;
const CONFIGS_UNREADABLE =
  'topic configs: not shown (node-rdkafka offers no DescribeConfigs); read them with kafka-configs.sh --describe --entity-type topics --entity-name <topic>';

/** What the options change of [topics]; undefined or empty: keep [topics]. */
export interface TopicsOverrides {
  partitions: number | undefined;
  replicationFactor: number | undefined;
  configs: Record<string, string>;
}

export async function runTopicsDescribe(opts: LoadOptions, json: boolean): Promise<number> {
  const cfg = await loadVerifiedConfig(opts);
  const probe = await probeOrFail(cfg, writtenTopics(cfg).names);
  const warnings = probe.topics.flatMap((t) => topicMismatches(t, cfg.daemon.topics));
  if (json) {
    process.stdout.write(`${JSON.stringify({ brokers: probe.brokers, topics: probe.topics, wanted: cfg.daemon.topics, warnings, configsReadable: false })}\n`);
  } else {
    for (const w of warnings) process.stderr.write(`jobcompd: warning: ${w}\n`);
    process.stdout.write(`${[`brokers: ${probe.brokers.join(', ')}`, ...probe.topics.map(topicLine), CONFIGS_UNREADABLE].join('\n')}\n`);
  }
  return 0;
}

export async function runTopicsCreate(opts: LoadOptions, overrides: TopicsOverrides, json: boolean): Promise<number> {
  const cfg = await loadVerifiedConfig(opts);
  const wanted = mergeWanted(cfg.daemon.topics, overrides);
  const names = writtenTopics(cfg).names;
  const before = await probeOrFail(cfg, names);
  const specs: TopicSpec[] = before.topics.filter((t) => !t.exists).map((t) => ({ name: t.name, ...wanted }));
  const raced = await createTopics(cfg.producer, specs, TIMEOUT_MS);
  const created = specs.map((s) => s.name).filter((n) => !raced.includes(n));
  const after = await waitUntilVisible(cfg, names, created);
  const warnings = after.topics.filter((t) => !created.includes(t.name)).flatMap((t) => topicMismatches(t, wanted));
  if (json) {
    process.stdout.write(`${JSON.stringify({ created, existed: names.filter((n) => !created.includes(n)), topics: after.topics, wanted, warnings })}\n`);
  } else {
    for (const w of warnings) process.stderr.write(`jobcompd: warning: ${w}\n`);
    const lines = after.topics.map((t) => (created.includes(t.name) ? `created ${topicLine(t)}` : `left as it was: ${topicLine(t)}`));
    if (specs.length > 0) lines.push(`asked: ${describeSpec({ name: '', ...wanted })}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return 0;
}

function mergeWanted(conf: TopicsWanted, o: TopicsOverrides): TopicsWanted {
  return {
    partitions: o.partitions ?? conf.partitions,
    replicationFactor: o.replicationFactor ?? conf.replicationFactor,
    configs: { ...conf.configs, ...o.configs },
  };
}

async function probeOrFail(cfg: LoadedConfig, names: string[]): Promise<ProbeResult> {
  try {
    return await probeKafka(cfg.producer, names, TIMEOUT_MS);
  } catch (err) {
    if (err instanceof ProbeError) throw new KafkaAdminError(KafkaAdminCodes.unreachable, err.message, EXIT_UNAVAILABLE);
    throw err;
  }
}

/** CreateTopics answers once the controller has the topic; metadata can lag behind it. */
async function waitUntilVisible(cfg: LoadedConfig, names: string[], created: string[]): Promise<ProbeResult> {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const probe = await probeOrFail(cfg, names);
    const missing = probe.topics.filter((t) => created.includes(t.name) && !t.exists);
    if (missing.length === 0 || Date.now() > deadline) return probe;
    await new Promise((resolve) => setTimeout(resolve, METADATA_POLL_MS));
  }
}
