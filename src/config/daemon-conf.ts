// jobcompd.conf: the daemon's own settings, plus the three slurm.conf parameters it shares
// with jobcomp/kafka (ClusterName, JobCompLoc, JobCompParams), which can also be taken
// from an existing slurm.conf (SlurmConf= or --slurm-conf): ClusterName and JobCompParams
// always, JobCompLoc only while JobCompType=jobcomp/kafka. A key in jobcompd.conf wins over
// the same parameter in slurm.conf. Every key is documented in docs/configuration.md.

import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigCodes, ConfigError, type ConfigLocation } from '../errors';
import { MAIN_SECTION, readIniFile, type IniEntry } from './ini-file';
import { readSlurmConf } from './slurm-conf';
import { groupId, primaryGroupId, userId } from './accounts';
import { DEFAULT_RECORD_FORMAT, parseRecordFormat, type RecordFormat } from '../record/record-format';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * The topics jobcompd writes, as the operator wants them ([topics], docs/operations.md
 * "jobcompd topics"): what `jobcompd topics create` creates by default and what
 * `check-config --connect` compares existing topics with. Unset: the broker's defaults.
 */
export interface TopicsWanted {
  partitions: number | undefined;
  replicationFactor: number | undefined;
  /** topic configs (retention.ms, min.insync.replicas, ...) for `topics create` */
  configs: Record<string, string>;
}

export interface DaemonConfig {
  /** The jobcompd.conf that was read, if any. */
  configFile: string | undefined;
  clusterName: string;
  stateDir: string;
  jobCompLoc: string;
  jobCompLocFrom: ConfigLocation;
  jobCompParams: string;
  jobCompParamsFrom: ConfigLocation;
  /** the Slurm release whose jobcomp/kafka record layout is produced */
  recordFormat: RecordFormat;
  logLevel: LogLevel;
  /** status, metrics and health endpoint */
  adminListen: ListenAddress | undefined;
  /** explicitly allow a non-loopback [admin] Listen (it has no authentication) */
  adminAllowUnauthenticated: boolean;
  http: {
    listen: ListenAddress | undefined;
    maxBodyBytes: number;
    requestTimeoutMs: number;
    /** longest wait for the commit before answering 503 (a stalled disk must not stall Slurm's sender) */
    commitTimeoutMs: number;
    maxConnections: number;
    /** request bodies held in memory at once, across connections: bounds MaxConnections x MaxBodyBytes */
    maxBufferedBytes: number;
    /** HTTP basic auth every POST must carry (Slurm: JobCompLoc=http://user:password@host/...) */
    basicAuth: { user: string; password: string } | undefined;
    /** explicitly allow a non-loopback Listen without basic auth */
    allowUnauthenticated: boolean;
  };
  /** the Kafka listener, broker of Slurm's jobcomp/kafka (docs/kafka-listener.md) */
  kafka: {
    /** undefined: off (the default) */
    listen: ListenAddress | undefined;
    listenFrom: ConfigLocation;
    maxConnections: number;
    /** the largest request frame; also the most one record batch may decompress to */
    maxRequestBytes: number;
    /** SASL/PLAIN credentials every client must present; required off loopback */
    sasl: { user: string; password: string } | undefined;
  };
  producer: {
    maxInFlight: number;
    retryBackoffMinMs: number;
    retryBackoffMaxMs: number;
  };
  /** identical records within this window are published once; 0 disables */
  dedupWindowMs: number;
  /** inputs that would take the quarantine table past this are not committed (answered "retry") */
  maxQuarantineBytes: number;
  topics: TopicsWanted;
  hook: {
    /** Unix socket the native hook connects to; undefined: off */
    socket: string | undefined;
    socketMode: number;
    /** group the socket is given (chown); undefined: the daemon's own */
    socketGroup: number | undefined;
    /** uids allowed to talk to the socket (SO_PEERCRED); undefined: root and the daemon's own user */
    allowedUids: number[] | undefined;
    /** spool directory the hook writes to when the daemon does not answer; undefined: off */
    spool: string | undefined;
    spoolScanIntervalMs: number;
    timeoutMs: number;
    maxMessageBytes: number;
    maxConnections: number;
    /** size of the hook journal in the state directory; 0: none */
    journalBytes: number;
  };
}

export interface LoadOptions {
  configFile?: string | undefined;
  slurmConf?: string | undefined;
}

type Setter = (cfg: DaemonConfig, value: string, loc: ConfigLocation, baseDir: string) => void;

const SCHEMA: Record<string, Record<string, Setter>> = {
  [MAIN_SECTION]: {
    clustername: (c, v, loc) => (c.clusterName = nonEmpty(v, loc)),
    statedir: (c, v, loc, base) => (c.stateDir = resolvePath(nonEmpty(v, loc), base)),
    jobcomploc: (c, v, loc, base) => {
      c.jobCompLoc = resolvePath(nonEmpty(v, loc), base);
      c.jobCompLocFrom = loc;
    },
    jobcompparams: (c, v, loc) => {
      c.jobCompParams = v;
      c.jobCompParamsFrom = loc;
    },
    slurmconf: () => undefined, // read before the other keys, see loadDaemonConfig
    recordformat: (c, v, loc) => (c.recordFormat = parseRecordFormat(v, loc)),
    loglevel: (c, v, loc) => (c.logLevel = oneOf(v.toLowerCase(), LOG_LEVELS, loc)),
    dedupwindow: (c, v, loc) => (c.dedupWindowMs = seconds(v, loc)),
    maxquarantinebytes: (c, v, loc) => (c.maxQuarantineBytes = positiveInt(v, loc)),
  },
  hook: {
    socket: (c, v, loc, base) => (c.hook.socket = offOrPath(v, loc, base)),
    socketmode: (c, v, loc) => (c.hook.socketMode = fileMode(v, loc)),
    socketgroup: (c, v, loc) => (c.hook.socketGroup = resolveId(groupId, 'group', nonEmpty(v, loc), loc)),
    allowedusers: (c, v, loc) => (c.hook.allowedUids = v.split(/[\s,]+/).filter(Boolean).map((u) => resolveId(userId, 'user', u, loc))),
    spool: (c, v, loc, base) => (c.hook.spool = offOrPath(v, loc, base)),
    spoolscaninterval: (c, v, loc) => (c.hook.spoolScanIntervalMs = Math.max(10, seconds(v, loc))),
    timeout: (c, v, loc) => (c.hook.timeoutMs = seconds(v, loc)),
    maxmessagebytes: (c, v, loc) => (c.hook.maxMessageBytes = positiveInt(v, loc)),
    maxconnections: (c, v, loc) => (c.hook.maxConnections = positiveInt(v, loc)),
    journalbytes: (c, v, loc) => (c.hook.journalBytes = journalBytes(v, loc)),
  },
  admin: {
    listen: (c, v, loc) => (c.adminListen = parseListen(v, loc)),
    allowunauthenticated: (c, v, loc) => (c.adminAllowUnauthenticated = yesNo(v, loc)),
  },
  http: {
    listen: (c, v, loc) => (c.http.listen = parseListen(v, loc)),
    maxbodybytes: (c, v, loc) => (c.http.maxBodyBytes = positiveInt(v, loc)),
    requesttimeout: (c, v, loc) => (c.http.requestTimeoutMs = seconds(v, loc)),
    committimeout: (c, v, loc) => (c.http.commitTimeoutMs = seconds(v, loc)),
    maxconnections: (c, v, loc) => (c.http.maxConnections = positiveInt(v, loc)),
    maxbufferedbytes: (c, v, loc) => (c.http.maxBufferedBytes = positiveInt(v, loc)),
    basicauthuser: (c, v, loc) => (c.http.basicAuth = { user: nonEmpty(v, loc), password: c.http.basicAuth?.password ?? '' }),
    basicauthpassword: (c, v, loc) => (c.http.basicAuth = { user: c.http.basicAuth?.user ?? '', password: nonEmpty(v, loc) }),
    allowunauthenticated: (c, v, loc) => (c.http.allowUnauthenticated = yesNo(v, loc)),
  },
  kafka: {
    listen: (c, v, loc) => {
      c.kafka.listen = parseListen(v, loc);
      c.kafka.listenFrom = loc;
    },
    maxconnections: (c, v, loc) => (c.kafka.maxConnections = positiveInt(v, loc)),
    maxrequestbytes: (c, v, loc) => (c.kafka.maxRequestBytes = positiveInt(v, loc)),
    sasluser: (c, v, loc) => (c.kafka.sasl = { user: nonEmpty(v, loc), password: c.kafka.sasl?.password ?? '' }),
    saslpassword: (c, v, loc) => (c.kafka.sasl = { user: c.kafka.sasl?.user ?? '', password: nonEmpty(v, loc) }),
  },
  topics: {
    partitions: (c, v, loc) => (c.topics.partitions = positiveInt(v, loc)),
    replicationfactor: (c, v, loc) => (c.topics.replicationFactor = positiveInt(v, loc)),
    config: (c, v, loc) => (c.topics.configs = parseTopicConfigs(v, loc)),
  },
  producer: {
    maxinflight: (c, v, loc) => (c.producer.maxInFlight = positiveInt(v, loc)),
    retrybackoffmin: (c, v, loc) => (c.producer.retryBackoffMinMs = seconds(v, loc)),
    retrybackoffmax: (c, v, loc) => (c.producer.retryBackoffMaxMs = seconds(v, loc)),
  },
};

export function defaultDaemonConfig(): DaemonConfig {
  const nowhere: ConfigLocation = { file: '(default)' };
  return {
    configFile: undefined,
    clusterName: '',
    stateDir: resolve('state'),
    jobCompLoc: '',
    jobCompLocFrom: nowhere,
    jobCompParams: '',
    jobCompParamsFrom: nowhere,
    recordFormat: DEFAULT_RECORD_FORMAT,
    logLevel: 'info',
    adminListen: { host: '127.0.0.1', port: 9201 },
    adminAllowUnauthenticated: false,
    http: {
      listen: { host: '127.0.0.1', port: 9200 },
      maxBodyBytes: 16 * 1024 * 1024,
      requestTimeoutMs: 30_000,
      commitTimeoutMs: 10_000,
      maxConnections: 256,
      maxBufferedBytes: 256 * 1024 * 1024,
      basicAuth: undefined,
      allowUnauthenticated: false,
    },
    kafka: { listen: undefined, listenFrom: nowhere, maxConnections: 64, maxRequestBytes: 16 * 1024 * 1024, sasl: undefined },
    producer: { maxInFlight: 1000, retryBackoffMinMs: 500, retryBackoffMaxMs: 60_000 },
    dedupWindowMs: 86_400_000,
    maxQuarantineBytes: 1024 * 1024 * 1024,
    topics: { partitions: undefined, replicationFactor: undefined, configs: {} },
    // the native hook's compiled-in defaults
    hook: {
      socket: '/run/jobcompd/hook.sock',
      socketMode: 0o660,
      socketGroup: undefined,
      allowedUids: undefined,
      spool: '/var/spool/jobcompd',
      spoolScanIntervalMs: 5000,
      timeoutMs: 10_000,
      maxMessageBytes: 1024 * 1024,
      maxConnections: 256,
      journalBytes: 4 * 1024 * 1024,
    },
  };
}

export function loadDaemonConfig(opts: LoadOptions): DaemonConfig {
  const cfg = defaultDaemonConfig();
  const entries = opts.configFile === undefined ? [] : readIniFile(opts.configFile);
  const baseDir = opts.configFile === undefined ? process.cwd() : dirname(resolve(opts.configFile));
  cfg.configFile = opts.configFile === undefined ? undefined : resolve(opts.configFile);

  const slurmConfEntry = entries.find((e) => e.section === MAIN_SECTION && e.key.toLowerCase() === 'slurmconf');
  const slurmConf = opts.slurmConf ?? (slurmConfEntry ? resolvePath(slurmConfEntry.value, baseDir) : undefined);
  if (slurmConf !== undefined) applySlurmConf(cfg, slurmConf);
  const jobCompLocOfSlurmConf = slurmConf !== undefined && cfg.jobCompLoc !== '' ? cfg.jobCompLocFrom : undefined;

  for (const e of entries) applyEntry(cfg, e, baseDir);
  if (cfg.kafka.listen !== undefined && cfg.jobCompLocFrom === jobCompLocOfSlurmConf) {
    // with the listener on, slurm.conf's JobCompLoc is the plugin's file, which points at
    // jobcompd itself: the upstream file must be named in jobcompd.conf
    cfg.jobCompLoc = '';
  }
  checkRequired(cfg);
  return cfg;
}

function applySlurmConf(cfg: DaemonConfig, file: string): void {
  const values = readSlurmConf(file);
  if (values.clustername) cfg.clusterName = values.clustername.value;
  if (values.jobcompparams) {
    // The same line can serve slurmctld's plugin (elasticsearch reads send_script) and jobcompd.
    const v = values.jobcompparams;
    cfg.jobCompParams = v.value;
    cfg.jobCompParamsFrom = { file: v.file, line: v.line, key: 'JobCompParams' };
  }
  // slurmctld runs the hook as SlurmUser: by default the socket belongs to its group and
  // only it (and root) may send; [hook] SocketGroup / AllowedUsers still win.
  if (values.slurmuser) {
    const v = values.slurmuser;
    const loc = { file: v.file, line: v.line, key: 'SlurmUser' };
    const uid = resolveId(userId, 'user', v.value, loc);
    cfg.hook.allowedUids = [...new Set([0, uid])];
    cfg.hook.socketGroup = resolveId(primaryGroupId, 'user', v.value, loc);
  }
  // JobCompLoc names the rdkafka.conf only for jobcomp/kafka (a URL for elasticsearch...).
  if (values.jobcomploc && values.jobcomptype?.value.toLowerCase() === 'jobcomp/kafka') {
    const v = values.jobcomploc;
    cfg.jobCompLocFrom = { file: v.file, line: v.line, key: 'JobCompLoc' };
    cfg.jobCompLoc = resolvePath(v.value, dirname(v.file));
  }
}

function applyEntry(cfg: DaemonConfig, e: IniEntry, baseDir: string): void {
  const section = SCHEMA[e.section];
  if (section === undefined) {
    const known = Object.keys(SCHEMA).map((s) => `[${s}]`).join(', ');
    throw new ConfigError(ConfigCodes.unknownKey, e.location, `unknown section [${e.section}] (known: ${known})`);
  }
  const setter = section[e.key.toLowerCase()];
  if (setter === undefined) {
    throw new ConfigError(ConfigCodes.unknownKey, e.location, `unknown key in [${e.section}]`);
  }
  setter(cfg, e.value.trim(), e.location, baseDir);
}

function checkRequired(cfg: DaemonConfig): void {
  const where: ConfigLocation = { file: cfg.configFile ?? '(command line)' };
  if (cfg.clusterName === '') {
    throw new ConfigError(ConfigCodes.missing, { ...where, key: 'ClusterName' }, 'is not set: set it in jobcompd.conf or point SlurmConf at slurm.conf');
  }
  if (cfg.jobCompLoc === '' && cfg.kafka.listen !== undefined) {
    throw new ConfigError(
      ConfigCodes.missing,
      { ...where, key: 'JobCompLoc' },
      'is not set in jobcompd.conf: with [kafka] Listen on, slurm.conf\'s JobCompLoc is the plugin\'s file (pointing at jobcompd); name the upstream cluster\'s librdkafka file here',
    );
  }
  if (cfg.jobCompLoc === '') {
    throw new ConfigError(ConfigCodes.missing, { ...where, key: 'JobCompLoc' }, 'is not set: it must name the librdkafka properties file (as for jobcomp/kafka)');
  }
  const auth = cfg.http.basicAuth;
  if (auth && (auth.user === '' || auth.password === '')) {
    throw new ConfigError(ConfigCodes.missing, { ...where, key: '[http] BasicAuthUser/BasicAuthPassword' }, 'set both, or neither');
  }
  if (cfg.http.maxBufferedBytes < cfg.http.maxBodyBytes) {
    throw new ConfigError(ConfigCodes.badValue, { ...where, key: '[http] MaxBufferedBytes' }, `${cfg.http.maxBufferedBytes} is less than MaxBodyBytes=${cfg.http.maxBodyBytes}: a body of that size could never be accepted`);
  }
  checkKafkaListen(cfg, where);
  const listen = cfg.http.listen;
  if (listen && !isLoopback(listen.host) && !auth && !cfg.http.allowUnauthenticated) {
    throw new ConfigError(
      ConfigCodes.badValue,
      { ...where, key: '[http] Listen' },
      `${listen.host} is not a loopback address: set BasicAuthUser and BasicAuthPassword (Slurm sends them from JobCompLoc=http://user:password@host:port/...), or AllowUnauthenticated=yes to accept records from anyone who can reach it`,
    );
  }
  const admin = cfg.adminListen;
  if (admin && !isLoopback(admin.host) && !cfg.adminAllowUnauthenticated) {
    throw new ConfigError(
      ConfigCodes.badValue,
      { ...where, key: '[admin] Listen' },
      `${admin.host} is not a loopback address and the admin endpoint has no authentication (status, metrics): put a proxy with authentication in front of a loopback Listen, or set [admin] AllowUnauthenticated=yes`,
    );
  }
}

function checkKafkaListen(cfg: DaemonConfig, where: ConfigLocation): void {
  const { listen, sasl } = cfg.kafka;
  if (sasl && (sasl.user === '' || sasl.password === '')) {
    throw new ConfigError(ConfigCodes.missing, { ...where, key: '[kafka] SaslUser/SaslPassword' }, 'set both, or neither');
  }
  if (listen && !isLoopback(listen.host) && !sasl) {
    throw new ConfigError(
      ConfigCodes.badValue,
      cfg.kafka.listenFrom,
      `${listen.host} is not a loopback address: set SaslUser and SaslPassword (the producers then need security.protocol=SASL_PLAINTEXT, sasl.mechanisms=PLAIN and those credentials), or listen on loopback beside slurmctld`,
    );
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function yesNo(v: string, loc: ConfigLocation): boolean {
  if (/^(yes|true|on|1)$/i.test(v)) return true;
  if (/^(no|false|off|0)$/i.test(v)) return false;
  throw new ConfigError(ConfigCodes.badValue, loc, `must be yes or no, got "${v}"`);
}

function resolvePath(p: string, baseDir: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

function nonEmpty(v: string, loc: ConfigLocation): string {
  if (v === '') throw new ConfigError(ConfigCodes.badValue, loc, 'must not be empty');
  return v;
}

function oneOf<T extends string>(v: string, allowed: readonly T[], loc: ConfigLocation): T {
  if (!(allowed as readonly string[]).includes(v)) {
    throw new ConfigError(ConfigCodes.badValue, loc, `must be one of ${allowed.join(', ')}, got "${v}"`);
  }
  return v as T;
}

function positiveInt(v: string, loc: ConfigLocation): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) {
    throw new ConfigError(ConfigCodes.badValue, loc, `must be a positive integer, got "${v}"`);
  }
  return Number(v);
}

/** 0 (no journal), or a size from 64 KiB to 1 GiB: the journal is read whole at start. */
function journalBytes(v: string, loc: ConfigLocation): number {
  const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
  if (n !== 0 && !(n >= 64 * 1024 && n <= 1024 * 1024 * 1024)) {
    throw new ConfigError(ConfigCodes.badValue, loc, `must be 0 (no journal) or a number of bytes from 65536 to 1073741824, got "${v}"`);
  }
  return n;
}

/** A duration in (possibly fractional) seconds, returned in milliseconds. */
function seconds(v: string, loc: ConfigLocation): number {
  if (!/^\d+(\.\d+)?$/.test(v)) throw new ConfigError(ConfigCodes.badValue, loc, `must be a number of seconds, got "${v}"`);
  return Math.round(Number(v) * 1000);
}

function resolveId(resolve: (name: string) => number | undefined, what: string, name: string, loc: ConfigLocation): number {
  const id = resolve(name);
  if (id === undefined) throw new ConfigError(ConfigCodes.badValue, loc, `no such ${what}: "${name}"`);
  return id;
}

function offOrPath(v: string, loc: ConfigLocation, baseDir: string): string | undefined {
  return /^(off|none|no)$/i.test(v) ? undefined : resolvePath(nonEmpty(v, loc), baseDir);
}

/** An octal file mode such as 0660. */
function fileMode(v: string, loc: ConfigLocation): number {
  if (!/^0?[0-7]{3}$/.test(v)) throw new ConfigError(ConfigCodes.badValue, loc, `must be an octal file mode such as 0660, got "${v}"`);
  return parseInt(v, 8);
}

/** "host:port", "[v6]:port", or "off" to disable the listener. */
export function parseListen(v: string, loc: ConfigLocation): ListenAddress | undefined {
  if (/^(off|none|no)$/i.test(v)) return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new ConfigError(ConfigCodes.badValue, loc, `must be host:port (e.g. 127.0.0.1:9200) or "off", got "${v}"`);
  return { host: m[1] ?? m[2] ?? '', port };
}

const TOPIC_CONFIG_KEY = /^[a-z][a-z0-9._-]*$/;

/**
 * "retention.ms=604800000, min.insync.replicas=2": Kafka topic configs, comma-separated
 * (jobcompd.conf [topics] Config and `jobcompd topics create --config`). The broker
 * judges the names and values; this only checks the shape.
 */
export function parseTopicConfigs(v: string, loc: ConfigLocation): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq).trim();
    const value = eq < 0 ? '' : item.slice(eq + 1).trim();
    if (!TOPIC_CONFIG_KEY.test(key) || value === '') {
      throw new ConfigError(ConfigCodes.badValue, loc, `expected topic configs as name=value, comma-separated (e.g. retention.ms=604800000), got "${item}"`);
    }
    out[key] = value;
  }
  return out;
}
