// `jobcompd check-config`: everything the daemon would check at start, without starting.

import type { LoadOptions } from '../config/daemon-conf';
import { loadConfig, topicsOf } from '../config/load';
import { isSecretProperty, REDACTED } from '../config/rdkafka-conf';
import { verifyProducerCreation } from '../producer/rdkafka-config';

export async function runCheckConfig(opts: LoadOptions, json: boolean): Promise<number> {
  const cfg = loadConfig(opts);
  await verifyProducerCreation(cfg.producer);
  const properties = Object.fromEntries(
    [...cfg.producer.properties.values()].map((p) => [p.key, isSecretProperty(p.key) ? REDACTED : p.value]),
  );
  const summary = {
    configFile: cfg.daemon.configFile ?? null,
    clusterName: cfg.daemon.clusterName,
    stateDir: cfg.daemon.stateDir,
    jobCompLoc: cfg.daemon.jobCompLoc,
    topics: topicsOf(cfg.params, cfg.daemon.clusterName),
    params: cfg.params,
    http: cfg.daemon.http,
    librdkafka: properties,
    warnings: cfg.warnings,
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
      `  topics:        finish -> ${summary.topics.finish}, start -> ${summary.topics.start}${cfg.params.enableJobStart ? '' : ' (start records disabled)'}`,
      `  HTTP listener: ${summary.http.listen ? `${summary.http.listen.host}:${summary.http.listen.port}` : 'off'}`,
      `  librdkafka:    ${Object.entries(properties).map(([k, v]) => `${k}=${v}`).join(' ')}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return 0;
}
