// `jobcompd check-config`: everything the daemon would check at start, without starting.

import type { LoadOptions } from '../../config/daemon-conf';
import { loadVerifiedConfig, topicsOf } from '../../app/config';
import { REDACTED, shownValue } from '../../config/jobcomploc-file';
import { probeKafka, ProbeError, type ProbeResult } from '../../producer/kafka-probe';
import { EXIT_UNAVAILABLE } from '../../errors';
import { startRecordsOff, type RecordFormat } from '../../record/record-format';

const CONNECT_TIMEOUT_MS = 15_000;

export async function runCheckConfig(opts: LoadOptions, json: boolean, connect: boolean): Promise<number> {
  const cfg = await loadVerifiedConfig(opts);
  const topics = topicsOf(cfg.params, cfg.daemon.clusterName);
  const startOff = startRecordsOff(cfg.daemon.recordFormat.layout, cfg.params.enableJobStart);
  const wanted = startOff === undefined ? [topics.finish, topics.start] : [topics.finish];
  let kafka: ProbeResult | { error: string } | undefined;
  if (connect) {
    try {
      kafka = await probeKafka(cfg.producer, wanted, CONNECT_TIMEOUT_MS);
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
    librdkafka: properties,
    warnings: cfg.warnings,
    kafka: kafka ?? null,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    for (const w of cfg.warnings) process.stderr.write(`jobcompd: warning: ${w}\n`);
    const lines = [
      `configuration OK${cfg.daemon.configFile ? ` (${cfg.daemon.configFile})` : ''}`,
      `  ClusterName:   ${summary.clusterName}`,
      `  state dir:     ${summary.stateDir}`,
      `  JobCompLoc:    ${summary.jobCompLoc}`,
      `  record format: ${recordFormatLine(cfg.daemon.recordFormat)}`,
      `  topics:        finish -> ${summary.topics.finish}, start -> ${summary.topics.start}${startOff === undefined ? '' : ` (${startOff})`}`,
      `  HTTP listener: ${summary.http.listen ? `${summary.http.listen.host}:${summary.http.listen.port}` : 'off'}`,
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
      t.exists
        ? `  topic ${t.name}: exists, ${t.partitions} partition(s)`
        : `  topic ${t.name}: MISSING (or not visible to this principal): records will be quarantined unless the broker auto-creates topics`,
    ),
    '  write permission: not testable without writing a record; a denied write quarantines the record (TOPIC_AUTHORIZATION_FAILED)',
  ];
}
