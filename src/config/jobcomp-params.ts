// JobCompParams, parsed the way slurm.conf(5) documents it rather than the way the plugin
// implements it (docs/configuration.md "JobCompParams" and "Differences from jobcomp/kafka"):
//   - the string is split at commas into tokens; each token is trimmed; empty ones ignored
//   - option names are matched case-insensitively, as a whole (no substring matching:
//     "requeue_purge_in_flight" does not also switch on "purge_in_flight")
//   - poll_interval is honoured; a malformed value is an error, an unknown key a warning
//   - a repeated key keeps its first value, as the plugin does, with a warning

import { ConfigCodes, ConfigError, formatLocation, type ConfigLocation } from '../errors';

export interface JobCompParams {
  /** ms; -1 waits forever, 0 does not wait */
  flushTimeoutMs: number;
  /** ms between delivery-report polls (the plugin's value is in seconds) */
  pollIntervalMs: number;
  requeueOnMsgTimeout: boolean;
  /** undefined: ClusterName */
  topic: string | undefined;
  /** undefined: <ClusterName>-job-start */
  topicJobStart: string | undefined;
  enableJobStart: boolean;
  sendScript: boolean;
  sendComment: boolean;
  purgeInFlight: boolean;
  purgeNonBlocking: boolean;
  requeuePurgeInFlight: boolean;
}

export const DEFAULT_PARAMS: Readonly<JobCompParams> = {
  flushTimeoutMs: 500,
  pollIntervalMs: 2000,
  requeueOnMsgTimeout: false,
  topic: undefined,
  topicJobStart: undefined,
  enableJobStart: false,
  sendScript: false,
  sendComment: false,
  purgeInFlight: false,
  purgeNonBlocking: false,
  requeuePurgeInFlight: false,
};

export interface ParamsResult {
  params: JobCompParams;
  warnings: string[];
}

type FlagKey = 'requeueOnMsgTimeout' | 'enableJobStart' | 'sendScript' | 'sendComment' | 'purgeInFlight' | 'purgeNonBlocking' | 'requeuePurgeInFlight';

const FLAGS: Readonly<Record<string, FlagKey>> = {
  requeue_on_msg_timeout: 'requeueOnMsgTimeout',
  enable_job_start: 'enableJobStart',
  send_script: 'sendScript',
  send_comment: 'sendComment',
  purge_in_flight: 'purgeInFlight',
  purge_non_blocking: 'purgeNonBlocking',
  requeue_purge_in_flight: 'requeuePurgeInFlight',
};

const VALUE_KEYS = ['flush_timeout', 'poll_interval', 'topic', 'topic_job_start'] as const;
type ValueKey = (typeof VALUE_KEYS)[number];

const INT32_MAX = 2147483647;
const UINT32_MAX = 4294967295;

export function parseJobCompParams(text: string, where: ConfigLocation): ParamsResult {
  const params: JobCompParams = { ...DEFAULT_PARAMS };
  const warnings: string[] = [];
  const seen = new Set<string>();
  const at = (key: string): ConfigLocation => ({ ...where, key: `JobCompParams ${key}` });

  for (const rawToken of text.split(',')) {
    const token = rawToken.trim();
    if (token === '') continue;
    const eq = token.indexOf('=');
    const name = (eq < 0 ? token : token.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? undefined : token.slice(eq + 1).trim();
    if (seen.has(name)) {
      warnings.push(`${formatLocation(at(name))}: given more than once; the first value is used`);
      continue;
    }
    seen.add(name);
    const flag = FLAGS[name];
    if (flag !== undefined) {
      if (value !== undefined) throw new ConfigError(ConfigCodes.badValue, at(name), `is a flag and takes no value (got "${value}")`);
      params[flag] = true;
    } else if (isValueKey(name)) {
      if (value === undefined) throw new ConfigError(ConfigCodes.badValue, at(name), `needs a value: ${name}=<value>`);
      applyValue(params, name, value, at(name));
    } else {
      warnings.push(`${formatLocation(at(name))}: unknown option, ignored`);
    }
  }
  if (params.topic !== undefined && params.topic === params.topicJobStart) {
    warnings.push(`${formatLocation(where)}: JobCompParams 'topic' and 'topic_job_start' have the same value '${params.topic}'; start and finish records will share a topic`);
  }
  return { params, warnings };
}

function isValueKey(name: string): name is ValueKey {
  return (VALUE_KEYS as readonly string[]).includes(name);
}

function applyValue(params: JobCompParams, name: ValueKey, value: string, loc: ConfigLocation): void {
  switch (name) {
    case 'flush_timeout':
      params.flushTimeoutMs = parseIntInRange(value, -1, INT32_MAX, loc, 'milliseconds');
      return;
    case 'poll_interval':
      params.pollIntervalMs = parsePollInterval(value, loc);
      return;
    case 'topic':
      params.topic = checkTopicName(value, loc);
      return;
    case 'topic_job_start':
      params.topicJobStart = checkTopicName(value, loc);
  }
}

function parseIntInRange(value: string, min: number, max: number, loc: ConfigLocation, unit: string): number {
  if (!/^-?\d+$/.test(value)) throw new ConfigError(ConfigCodes.badValue, loc, `must be an integer number of ${unit} in [${min}, ${max}], got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(ConfigCodes.badValue, loc, `must be in [${min}, ${max}] ${unit}, got ${value}`);
  return n;
}

/** Seconds as documented ([0, 4294967295]); jobcompd also accepts fractions such as 0.25. */
function parsePollInterval(value: string, loc: ConfigLocation): number {
  if (!/^\d+(\.\d+)?$/.test(value)) {
    throw new ConfigError(ConfigCodes.badValue, loc, `must be a number of seconds in [0, ${UINT32_MAX}] (fractions allowed), got "${value}"`);
  }
  const seconds = Number(value);
  if (seconds > UINT32_MAX) throw new ConfigError(ConfigCodes.badValue, loc, `must be at most ${UINT32_MAX} seconds, got ${value}`);
  return Math.round(seconds * 1000);
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/** Kafka's own topic name rules: a name the broker would refuse would quarantine every record. */
export function checkTopicName(value: string, loc: ConfigLocation): string {
  if (!TOPIC_NAME.test(value) || value === '.' || value === '..') {
    throw new ConfigError(
      ConfigCodes.badValue,
      loc,
      `"${value}" is not a valid Kafka topic name (1-249 characters of a-z A-Z 0-9 . _ -, not "." or "..")`,
    );
  }
  return value;
}
