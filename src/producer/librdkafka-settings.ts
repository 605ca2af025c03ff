// Turns the JobCompLoc file into the configuration of jobcompd's one librdkafka producer,
// validating it through librdkafka itself, property by property, so an error can name
// the file, the line and the key (the plugin only logs key and value).

import { CODES, Producer, type ProducerGlobalConfig, type ProducerTopicConfig } from 'node-rdkafka';
import { ConfigCodes, ConfigError, formatLocation, type ConfigLocation } from '../errors';
import { effectiveProperties, isSecretProperty, redactSecrets, REDACTED, type RdkafkaConf, type RdkafkaProperty } from '../config/jobcomploc-file';
import { MIN_REFILL } from './dispatcher';

/**
 * Keys node-rdkafka would swallow instead of handing them to librdkafka, or that would
 * break jobcompd's delivery accounting. The plugin would fail on the first kind too
 * (librdkafka refuses callback properties set as strings).
 */
const RESERVED: Readonly<Record<string, string>> = {
  dr_cb: 'delivery reports are managed by jobcompd',
  dr_msg_cb: 'delivery reports are managed by jobcompd',
  event_cb: 'librdkafka events are managed by jobcompd',
  topic: 'not a librdkafka property; set topics with JobCompParams topic= and topic_job_start=',
  partition: 'not a librdkafka property',
  'delivery.report.only.error':
    'jobcompd deletes a record only when Kafka confirms it, so it needs a delivery report for every message',
};

export interface ProducerSettings {
  file: string;
  /** librdkafka properties, in application order, as strings */
  properties: Map<string, RdkafkaProperty>;
  /** the keys librdkafka also accepts as topic properties (acks, message.timeout.ms, ...) */
  topicKeys: Set<string>;
  /** warnings about legal but risky settings */
  warnings: string[];
}

export function buildProducerSettings(conf: RdkafkaConf): ProducerSettings {
  const properties = effectiveProperties(conf);
  const warnings: string[] = [];
  for (const entry of conf.entries) checkProperty(conf.file, entry);
  const topicKeys = new Set([...properties.values()].filter(isTopicProperty).map((p) => p.key));
  if (!properties.has('bootstrap.servers') && !properties.has('metadata.broker.list')) {
    throw new ConfigError(ConfigCodes.missing, { file: conf.file, key: 'bootstrap.servers' }, 'is not set: name at least one broker, e.g. bootstrap.servers=kafka1:9092');
  }
  for (const p of properties.values()) {
    if (p.cutAtHash) {
      // Not an error: the plugin reads the file the same way. But a password with a '#'
      // would fail to authenticate with nothing saying why.
      warnings.push(`${formatLocation(where(conf.file, p))}: the value is cut at '#' (a comment starts there, as in jobcomp/kafka); a '#' cannot be part of a value in this file`);
    }
  }
  const acks = properties.get('acks') ?? properties.get('request.required.acks');
  if (acks !== undefined && acks.value === '0') {
    warnings.push(
      `${formatLocation(where(conf.file, acks))}: acks=0 makes librdkafka report a record delivered as soon as it is sent; a broker failure can then lose it`,
    );
  }
  return { file: conf.file, properties, topicKeys, warnings };
}

function where(file: string, p: RdkafkaProperty): ConfigLocation {
  return { file, line: p.line, key: p.key };
}

/** One rd_kafka_conf_set, exactly as the plugin would call it. */
function checkProperty(file: string, p: RdkafkaProperty): void {
  const reserved = RESERVED[p.key];
  if (reserved !== undefined) throw new ConfigError(ConfigCodes.rdkafka, where(file, p), reserved);
  try {
    // Constructing a client only builds its librdkafka conf object: no thread, no socket.
    new Producer({ [p.key]: p.value } as ProducerGlobalConfig);
  } catch (err) {
    const shownValue = isSecretProperty(p.key) ? REDACTED : p.value;
    const message = redactSecrets((err as Error).message, [p]);
    throw new ConfigError(ConfigCodes.rdkafka, where(file, p), `librdkafka refused the value "${shownValue}": ${message}`);
  }
}

function isTopicProperty(p: RdkafkaProperty): boolean {
  try {
    new Producer({}, { [p.key]: p.value } as ProducerTopicConfig);
    return true;
  } catch {
    return false;
  }
}

/**
 * jobcompd's own defaults, each applied only when rdkafka.conf does not set it
 * (docs/configuration.md, "JobCompLoc: the librdkafka properties file"):
 * - statistics every 10 s: status and metrics show the brokers' state from them;
 * - batches of the dispatcher's page (MIN_REFILL rows) instead of librdkafka's 10,000: with
 *   at most MaxInFlight records undelivered, a backlog's window never filled a batch of
 *   10,000, so each of its round trips waited out the whole linger.ms (5 ms); a full page
 *   now goes at once, and records coming at Slurm's pace are batched by linger.ms as before
 *   (docs/benchmark-rounds.md, "the batch size").
 */
const JOBCOMPD_LIBRDKAFKA_DEFAULTS: Readonly<Record<string, string>> = {
  'statistics.interval.ms': '10000',
  'batch.num.messages': String(MIN_REFILL),
};

/**
 * The two objects node-rdkafka's Producer constructor takes. The plugin sets every
 * property on the global conf and librdkafka routes topic properties to the default
 * topic conf; node-rdkafka, however, replaces that default topic conf with its second
 * argument, so topic properties must be repeated there or they would be ignored.
 */
export function producerConfigs(settings: ProducerSettings): { global: ProducerGlobalConfig; topic: ProducerTopicConfig } {
  // the file's own values, set after, replace the defaults
  const global: Record<string, string | boolean> = { ...JOBCOMPD_LIBRDKAFKA_DEFAULTS };
  const topic: Record<string, string> = {};
  for (const [key, p] of settings.properties) {
    global[key] = p.value;
    if (settings.topicKeys.has(key)) topic[key] = p.value;
  }
  global.dr_cb = true;
  return { global: global as ProducerGlobalConfig, topic: topic as ProducerTopicConfig };
}

/**
 * The JobCompLoc properties for another kind of client (admin, consumer): the connection
 * and security ones; the topic properties (acks, message.timeout.ms...) are the producer's.
 */
export function clientProperties(settings: ProducerSettings): Record<string, string> {
  return Object.fromEntries([...settings.properties].filter(([key]) => !settings.topicKeys.has(key)).map(([key, p]) => [key, p.value]));
}

/**
 * An error from rd_kafka_new (properties that are fine alone but not together, unreadable
 * certificates, unknown SASL mechanisms...), located at the property it names if any.
 */
export function creationError(settings: ProducerSettings, librdkafkaMessage: string): ConfigError {
  const message = redactSecrets(librdkafkaMessage, settings.properties.values());
  const prop = propertyNamedIn(message, settings) ?? propertyWhoseValueIsIn(message, settings);
  const loc: ConfigLocation = prop ? where(settings.file, prop) : { file: settings.file };
  return new ConfigError(ConfigCodes.rdkafka, loc, `librdkafka cannot create a producer with these properties: ${message}`);
}

/** A property librdkafka's message names: "`max.in.flight` must be..." or "ssl.ca.location failed: ...". */
function propertyNamedIn(message: string, settings: ProducerSettings): RdkafkaProperty | undefined {
  const names = [...message.matchAll(/[`"]([a-z][a-z0-9._]*)[`"]|^([a-z][a-z0-9._]*) failed/g)].map((m) => m[1] ?? m[2] ?? '');
  return names.map((k) => settings.properties.get(k)).find((p) => p !== undefined);
}

/** A property whose value the message quotes ("Unsupported SASL mechanism: BOGUS"); never a secret. */
function propertyWhoseValueIsIn(message: string, settings: ProducerSettings): RdkafkaProperty | undefined {
  const words = new Set(message.split(/[\s:,"'`]+/));
  return [...settings.properties.values()].find((p) => !isSecretProperty(p.key) && p.value.length > 0 && words.has(p.value));
}

/**
 * Create (and destroy) a librdkafka handle from these settings, so that errors rd_kafka_new
 * reports surface now. Does not wait for brokers.
 */
export function verifyProducerCreation(settings: ProducerSettings): Promise<void> {
  const { global, topic } = producerConfigs(settings);
  const producer = new Producer(global, topic);
  return new Promise((resolve, reject) => {
    producer.connect({ timeout: 1 }, (err) => {
      const finish = (): void => (err && err.code === CODES.ERRORS.ERR__STATE ? reject(creationError(settings, err.message)) : resolve());
      if (producer.isConnected()) producer.disconnect(0, finish);
      else finish();
    });
  });
}
