// The JobCompLoc file: librdkafka properties, one key=value per line, read with exactly
// the rules of Slurm's jobcomp/kafka plugin (docs/configuration.md "JobCompLoc") so that a site's existing file
// means the same thing here:
//   - a line without '=' is skipped (blank lines, comments without '=')
//   - the line splits at the first '='; later '=' stay in the value
//   - a key containing '#' skips the whole line; in a value everything from '#' is cut
//   - key and value are trimmed (C isspace); quotes are not interpreted
//   - every pair is applied in file order, so the last duplicate wins

import { readFileSync } from 'node:fs';
import { ConfigCodes, ConfigError } from '../errors';

export interface RdkafkaProperty {
  key: string;
  value: string;
  /** 1-based line number in `file` */
  line: number;
  /** the plugin's rule cut the value at a '#' (a '#' can never be part of a value) */
  cutAtHash?: true;
}

export interface RdkafkaConf {
  file: string;
  /** Every pair in file order, duplicates included. */
  entries: RdkafkaProperty[];
}

// C isspace(): space, \t, \n, \v, \f, \r
const C_SPACE = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;

function cTrim(s: string): string {
  return s.replace(C_SPACE, '');
}

export function parseRdkafkaConf(text: string, file: string): RdkafkaConf {
  const entries: RdkafkaProperty[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const eq = raw.indexOf('=');
    if (eq < 0) return;
    const rawKey = raw.slice(0, eq);
    if (rawKey.includes('#')) return;
    let rawValue = raw.slice(eq + 1);
    const hash = rawValue.indexOf('#');
    if (hash >= 0) rawValue = rawValue.slice(0, hash);
    const entry: RdkafkaProperty = { key: cTrim(rawKey), value: cTrim(rawValue), line: i + 1 };
    // "value # comment" reads as a comment; "pass#word" reads as a value that lost its end.
    if (hash > 0 && !/[ \t]/.test(rawValue.slice(-1))) entry.cutAtHash = true;
    entries.push(entry);
  });
  return { file, entries };
}

export function readRdkafkaConf(file: string): RdkafkaConf {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(ConfigCodes.unreadable, { file }, `cannot read the librdkafka properties file (JobCompLoc): ${reason}`);
  }
  return parseRdkafkaConf(text, file);
}

/**
 * The effective properties, last duplicate winning. A repeated key moves to the position
 * of its last occurrence, so applying the object in order gives the same result as the
 * plugin's sequential rd_kafka_conf_set calls (this matters for aliases such as
 * message.timeout.ms / delivery.timeout.ms).
 */
export function effectiveProperties(conf: RdkafkaConf): Map<string, RdkafkaProperty> {
  const out = new Map<string, RdkafkaProperty>();
  for (const entry of conf.entries) {
    out.delete(entry.key);
    out.set(entry.key, entry);
  }
  return out;
}

/**
 * Keys whose values are secrets, by a broad pattern: librdkafka adds properties with every
 * release (OIDC client secrets, assertion keys and passphrases, token URLs that may carry
 * credentials), and a name that merely looks like a secret costs only a hidden value.
 */
const SECRET_KEY = /(passw|passphrase|secret|credential|token|private[._-]?key|\.pem$|^ssl_key$|sasl\.oauthbearer\.config|jaas)/i;

/** Properties whose values must never be shown in logs, status or error messages. */
export function isSecretProperty(key: string): boolean {
  return SECRET_KEY.test(key);
}

/**
 * The only properties whose values check-config prints: addresses, protocols, tuning and
 * file locations. Any other value (sasl.kerberos.kinit.cmd, sasl.oauthbearer.extensions, a
 * property of a newer librdkafka...) may hold a secret under an innocent name.
 */
const SHOWN_KEYS = new Set([
  'bootstrap.servers',
  'metadata.broker.list',
  'client.id',
  'client.rack',
  'security.protocol',
  'sasl.mechanism',
  'sasl.mechanisms',
  'sasl.username',
  'sasl.oauthbearer.method',
  'sasl.kerberos.service.name',
  'sasl.kerberos.principal',
  'ssl.ca.location',
  'ssl.certificate.location',
  'ssl.key.location',
  'ssl.crl.location',
  'ssl.endpoint.identification.algorithm',
  'enable.ssl.certificate.verification',
  'acks',
  'request.required.acks',
  'compression.codec',
  'compression.type',
  'compression.level',
  'message.timeout.ms',
  'delivery.timeout.ms',
  'request.timeout.ms',
  'socket.timeout.ms',
  'socket.keepalive.enable',
  'linger.ms',
  'queue.buffering.max.ms',
  'queue.buffering.max.messages',
  'queue.buffering.max.kbytes',
  'batch.num.messages',
  'batch.size',
  'message.max.bytes',
  'message.send.max.retries',
  'retries',
  'retry.backoff.ms',
  'retry.backoff.max.ms',
  'reconnect.backoff.ms',
  'reconnect.backoff.max.ms',
  'max.in.flight',
  'max.in.flight.requests.per.connection',
  'enable.idempotence',
  'partitioner',
  'api.version.request',
  'broker.version.fallback',
  'topic.metadata.refresh.interval.ms',
  'statistics.interval.ms',
  'debug',
  'log_level',
]);

/** A property's value as check-config may print it. */
export function shownValue(p: RdkafkaProperty): string {
  return SHOWN_KEYS.has(p.key) && !isSecretProperty(p.key) ? p.value : REDACTED;
}

export const REDACTED = '[REDACTED]';

/** Replace every secret value of `conf` found in `text` (e.g. a librdkafka error string). */
export function redactSecrets(text: string, props: Iterable<RdkafkaProperty>): string {
  let out = text;
  for (const p of props) {
    if (isSecretProperty(p.key) && p.value !== '') out = out.split(p.value).join(REDACTED);
  }
  return out;
}
