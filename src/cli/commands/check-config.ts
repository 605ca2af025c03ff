// `jobcompd check-config`: everything the daemon would check at start, without starting.

import type { LoadOptions } from '../../config/daemon-conf';
import { loadVerifiedConfig, writtenTopics } from '../../app/config';
import { topicLine, topicMismatches } from '../../app/topic-check';
import { REDACTED, shownValue } from '../../config/jobcomploc-file';
import { probeKafka, ProbeError, type ProbeResult } from '../../producer/kafka-probe';
import { EXIT_UNAVAILABLE } from '../../errors';
import type { RecordFormat } from '../../record/record-format';

const CONNECT_TIMEOUT_MS = 15_000;

export async function runCheckConfig(opts: LoadOptions, json: boolean, connect: boolean): Promise<number> {
  const cfg = await loadVerifiedConfig(opts);
  const written = writtenTopics(cfg);
  const { startOff } = written;
  const topics = { finish: written.finish, start: written.start };
  let kafka: ProbeResult | { error: string } | undefined;
  const warnings = [...cfg.warnings];
  if (connect) {
    try {
      kafka = await probeKafka(cfg.producer, written.names, CONNECT_TIMEOUT_MS);
      warnings.push(...kafka.topics.flatMap((t) => topicMismatches(t, cfg.daemon.topics)));
    } catch (err) {
      if (!(err instanceof ProbeError)) throw err;
      kafka = { error: err.message };
    }
  }
  const properties = Object.fromEntries(
    [...cfg.producer.properties.values()].map((p) => [p.key, shownValue(p)]),
  );
  const summary = {
    configFile: cfg.daemon.configFile ?? null,
    clusterName: cfg.daemon.clusterName,
    stateDir: cfg.daemon.stateDir,
    jobCompLoc: cfg.daemon.jobCompLoc,
    topics,
    recordFormat: { release: cfg.daemon.recordFormat.release, layout: cfg.daemon.recordFormat.layout },
    params: cfg.params,
    http: { ...cfg.daemon.http, basicAuth: cfg.daemon.http.basicAuth ? { user: cfg.daemon.http.basicAuth.user, password: REDACTED } : null },
    kafkaListener: { ...cfg.daemon.kafka, listenFrom: undefined, sasl: cfg.daemon.kafka.sasl ? { user: cfg.daemon.kafka.sasl.user, password: REDACTED } : null },
    librdkafka: properties,
    topicsWanted: cfg.daemon.topics,
    warnings,
    kafka: kafka ?? null,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    for (const w of warnings) process.stderr.write(`jobcompd: warning: ${w}\n`);
    const lines = [
      `configuration OK${cfg.daemon.configFile ? ` (${cfg.daemon.configFile})` : ''}`,
      `  ClusterName:   ${summary.clusterName}`,
      `  state dir:     ${summary.stateDir}`,
      `  JobCompLoc:    ${summary.jobCompLoc}`,
      `  record format: ${recordFormatLine(cfg.daemon.recordFormat)}`,
      `  topics:        finish -> ${summary.topics.finish}, start -> ${summary.topics.start}${startOff === undefined ? '' : ` (${startOff})`}`,
      `  HTTP listener: ${summary.http.listen ? `${summary.http.listen.host}:${summary.http.listen.port}` : 'off'}`,
      `  Kafka listener: ${cfg.daemon.kafka.listen ? `${cfg.daemon.kafka.listen.host}:${cfg.daemon.kafka.listen.port} (the broker of jobcomp/kafka; upstream: JobCompLoc)` : 'off'}`,
      `  librdkafka:    ${Object.entries(properties).map(([k, v]) => `${k}=${v}`).join(' ')}`,
    ];
    if (kafka) lines.push(...connectLines(kafka));
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return kafka && 'error' in kafka ? EXIT_UNAVAILABLE : 0;
}

function recordFormatLine(format: RecordFormat): string {
  const given = format.release === format.layout.name ? '' : ` (RecordFormat=${format.release})`;
  return `jobcomp/kafka ${format.layout.name}${given}`;
}

function connectLines(kafka: ProbeResult | { error: string }): string[] {
  if ('error' in kafka) return [`  Kafka:         UNREACHABLE: ${kafka.error}`];
  return [
    `  Kafka:         reachable; brokers ${kafka.brokers.join(', ')}`,
    ...kafka.topics.map((t) =>
      t.exists ? `  ${topicLine(t)}` : `  ${topicLine(t)}: records will be quarantined unless the broker auto-creates topics (jobcompd topics create)`,
    ),
    '  write permission: not testable without writing a record; a denied write quarantines the record (TOPIC_AUTHORIZATION_FAILED)',
  ];
}
