// A real single-node Apache Kafka broker (KRaft, combined broker+controller)
// for tests and demos. The jars come from tools/kafka/fetch.sh; the JVM is a
// child of this process and is killed when this process exits.
import { type ChildProcess, spawn } from 'node:child_process';
import { dieWithParent, findProjectRoot, onRealProcessExit, reserveLoopbackPorts } from '../harness-common';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { type LibrdKafkaError } from 'node-rdkafka';
import {
  type ClientProperties,
  delay,
  describeKafkaError,
  findTopic,
  topicHasLeaders,
  waitForMetadata,
  withAdminClient,
  withMetadataClient,
} from './clients';

export interface BrokerOptions {
  /** auto.create.topics.enable; default true. */
  autoCreateTopics?: boolean;
  /** Default: a fresh directory under os.tmpdir(), removed by destroy(). */
  dataDir?: string;
  /** Extra or overriding server.properties entries. */
  serverProperties?: Record<string, string>;
  /** JVM heap ceiling (-Xmx) in MiB; default 512. */
  heapMb?: number;
  /** Receives every line the broker JVM and the storage formatter print. */
  log?: (line: string) => void;
  /**
   * Make the client listener SASL_PLAINTEXT with SCRAM. The controller and the
   * inter-broker listener stay PLAINTEXT on ports of their own. The harness adds a user
   * of its own (HARNESS_ADMIN_USER) for createTopic, deleteTopic and readiness.
   */
  sasl?: SaslOptions;
  /**
   * Needs `sasl`. Run KRaft's StandardAuthorizer with allow.everyone.if.no.acl.found=false:
   * a SCRAM user may then do only what ACLs allow (grantAcl). Super users: the harness
   * admin, and User:ANONYMOUS, the principal of the PLAINTEXT controller and inter-broker
   * listeners (the broker talking to itself; anyone who connects there is a super user too,
   * which is why the harness never hands out those ports).
   */
  authorizer?: boolean;
}

/** An ACL operation, as Kafka's AclOperation names it. */
export type AclOperationName =
  | 'ALL'
  | 'READ'
  | 'WRITE'
  | 'CREATE'
  | 'DELETE'
  | 'ALTER'
  | 'DESCRIBE'
  | 'CLUSTER_ACTION'
  | 'DESCRIBE_CONFIGS'
  | 'ALTER_CONFIGS'
  | 'IDEMPOTENT_WRITE';

export interface AclGrant {
  /** A SCRAM user of the broker: the ACL's principal is User:<user>, from any host. */
  user: string;
  /** A literal resource name; the cluster's is 'kafka-cluster'. */
  resource: { type: 'TOPIC' | 'GROUP' | 'CLUSTER' | 'TRANSACTIONAL_ID'; name: string };
  operations: AclOperationName[];
}

export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

export interface SaslOptions {
  mechanism: ScramMechanism;
  /**
   * User name -> password. The users are created when the data dir is formatted (the
   * first start in it); a reused data dir must be started with the same users. Neither
   * names nor passwords may contain ',' (the storage tool splits its --add-scram value there).
   */
  users: Record<string, string>;
}

/** The SCRAM user the harness's own clients authenticate as (its password is random). */
export const HARNESS_ADMIN_USER = 'jobcompd-harness-admin';

export class KafkaHarnessError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The broker jars could not be found or fetched. */
export class KafkaJarsError extends KafkaHarnessError {}

/** The broker (or the storage formatter) died or did not become ready in time. */
export class BrokerStartError extends KafkaHarnessError {
  constructor(
    message: string,
    readonly logTail: string,
  ) {
    super(`${message}\n--- last broker log lines ---\n${logTail}`);
  }
}

/** A topic could not be created, deleted, or did not reach the expected state; or an ACL could not be granted. */
export class TopicAdminError extends KafkaHarnessError {}

const READY_TIMEOUT_MS = 90_000;
const FORMAT_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 30_000;
const TOPIC_TIMEOUT_MS = 30_000;
/** The ACL tool compiles itself (Java's source launcher) before it talks to the broker. */
const ACL_TIMEOUT_MS = 90_000;
const ACL_TOOL_HEAP_MB = 128;
const METADATA_PROBE_TIMEOUT_MS = 5_000;
const DEFAULT_HEAP_MB = 512;
const NODE_ID = 1;
const LOG_TAIL_LINES = 60;
const STARTED_LINE = /\bKafka Server started\b/;

// ---------------------------------------------------------------------------
// Locating the project, the Kafka version and the jars

export { findProjectRoot };
export type { ClientProperties } from './clients';

/** The version pinned in tools/kafka/pom.xml, the single place that names it. */
export function kafkaVersion(root: string = findProjectRoot()): string {
  const pom = path.join(root, 'tools', 'kafka', 'pom.xml');
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(fs.readFileSync(pom, 'utf8'));
  if (match?.[1] === undefined) throw new KafkaJarsError(`no <kafka.version> in ${pom}`);
  return match[1].trim();
}

let jarsDirPromise: Promise<string> | undefined;

/** Runs fetch.sh (instant when the jars are already there) once per process. */
export function ensureKafkaJars(root: string = findProjectRoot()): Promise<string> {
  jarsDirPromise ??= runFetchScript(root).catch((err: unknown) => {
    jarsDirPromise = undefined;
    throw err;
  });
  return jarsDirPromise;
}

function runFetchScript(root: string): Promise<string> {
  const script = path.join(root, 'tools', 'kafka', 'fetch.sh');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (err) => reject(new KafkaJarsError(`cannot run ${script}: ${err.message}`, { cause: err })));
    child.on('close', (code) => {
      const libs = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && libs !== '' && fs.existsSync(libs)) resolve(libs);
      else reject(new KafkaJarsError(`${script} failed (exit ${String(code)}):\n${stderr.trim()}`));
    });
  });
}

// ---------------------------------------------------------------------------
// Making sure no broker JVM outlives this process

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLiveChildrenNow(): void {
  for (const child of liveChildren) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  liveChildren.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  onRealProcessExit(killLiveChildrenNow);
}


function javaBinary(): string {
  const home = process.env['JAVA_HOME'];
  return home !== undefined && home !== '' ? path.join(home, 'bin', 'java') : 'java';
}

// ---------------------------------------------------------------------------
// Broker log: every output line goes to <dataDir>/broker.log, the optional
// callback, line watchers, and a small in-memory tail for error messages.

class BrokerLog {
  private readonly recent: string[] = [];
  private readonly watchers = new Set<(line: string) => void>();

  constructor(
    readonly file: string,
    private readonly callback: ((line: string) => void) | undefined,
  ) {}

  write(line: string): void {
    fs.appendFileSync(this.file, `${line}\n`);
    this.recent.push(line);
    if (this.recent.length > LOG_TAIL_LINES) this.recent.shift();
    this.callback?.(line);
    for (const watch of this.watchers) watch(line);
  }

  note(message: string): void {
    this.write(`[jobcompd harness ${new Date().toISOString()}] ${message}`);
  }

  follow(stream: NodeJS.ReadableStream): void {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => this.write(line));
  }

  /** Resolves at the first line matching `pattern`; stays pending otherwise. */
  waitForLine(pattern: RegExp): { promise: Promise<void>; cancel: () => void } {
    let watcher: ((line: string) => void) | undefined;
    const promise = new Promise<void>((resolve) => {
      watcher = (line) => {
        if (!pattern.test(line)) return;
        cancel();
        resolve();
      };
      this.watchers.add(watcher);
    });
    const cancel = (): void => {
      if (watcher !== undefined) this.watchers.delete(watcher);
    };
    return { promise, cancel };
  }

  tail(): string {
    return this.recent.join('\n');
  }
}

// ---------------------------------------------------------------------------
// Child processes

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

function describeExit(status: ExitStatus): string {
  return status.signal !== null ? `was killed by ${status.signal}` : `exited with code ${String(status.code)}`;
}

class JvmProcess {
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | undefined;

  private constructor(
    private readonly child: ChildProcess,
    mainClass: string,
    log: BrokerLog,
  ) {
    liveChildren.add(child);
    if (child.stdout) log.follow(child.stdout);
    if (child.stderr) log.follow(child.stderr);
    // 'close' (not 'exit') so that the last log lines have been read.
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        log.note(`cannot start java: ${err.message}`);
        this.settle({ code: null, signal: null }, resolve);
      });
      child.on('close', (code, signal) => {
        log.note(`${mainClass} ${describeExit({ code, signal })}`);
        this.settle({ code, signal }, resolve);
      });
    });
  }

  /** `secrets`: strings of `args` that the log note shows as *** (SCRAM passwords). */
  static spawn(mainClass: string, args: string[], jvmArgs: string[], libs: string, log: BrokerLog, secrets: string[] = []): JvmProcess {
    installExitHook();
    const java = [javaBinary(), ...jvmArgs, '-cp', path.join(libs, '*'), mainClass, ...args];
    const [command, ...rest] = dieWithParent(java);
    log.note(`exec ${secrets.reduce((line, secret) => line.split(secret).join('***'), java.join(' '))}`);
    const child = spawn(command as string, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    return new JvmProcess(child, mainClass, log);
  }

  get pid(): number | undefined {
    return this.running ? this.child.pid : undefined;
  }

  get running(): boolean {
    return this.status === undefined;
  }

  /**
   * A running broker must not keep Node alive by itself: a test that forgets
   * destroy() should still let jest exit (the exit hook then kills the JVM).
   */
  detachFromEventLoop(): void {
    this.child.unref();
    for (const stream of [this.child.stdout, this.child.stderr]) {
      if (stream instanceof net.Socket) stream.unref();
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGTERM (or SIGKILL), escalating to SIGKILL after `graceMs`. */
  async terminate(sig: NodeJS.Signals, graceMs: number): Promise<ExitStatus> {
    if (this.status !== undefined) return this.status;
    this.signal(sig);
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private settle(status: ExitStatus, resolve: (s: ExitStatus) => void): void {
    if (this.status !== undefined) return;
    this.status = status;
    liveChildren.delete(this.child);
    resolve(status);
  }
}

/** Resolves with `work`, or rejects if the process exits first or time runs out. */
async function raceAgainstDeath<T>(
  work: Promise<T>,
  jvm: JvmProcess,
  timeoutMs: number,
  fail: (reason: string) => Error,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(fail(`not ready after ${timeoutMs} ms`)), timeoutMs);
  });
  const death = jvm.exited.then((status): never => {
    throw fail(`the JVM ${describeExit(status)}`);
  });
  // Whichever loses the race must not surface later as an unhandled rejection.
  death.catch(() => undefined);
  work.catch(() => undefined);
  try {
    return await Promise.race([work, timeout, death]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------
// Configuration

interface BrokerPorts {
  client: number;
  controller: number;
  /** With SASL only: the PLAINTEXT inter-broker listener. */
  interBroker?: number;
}

/** SASL settings as formatted into a data dir; kept in <dataDir>/scram-users.json. */
interface ScramState {
  mechanism: ScramMechanism;
  /** includes HARNESS_ADMIN_USER */
  users: Record<string, string>;
}

const SCRAM_STATE_FILE = 'scram-users.json';
const SCRAM_LOGIN_MODULE = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
/** The name of the SASL client listener (its security protocol too). */
const SASL_LISTENER = 'SASL_PLAINTEXT';

/**
 * 22 characters of base64url, the format Kafka expects. Like Kafka's own
 * Uuid.randomUuid(), reject ids starting with '-': the storage tool's argument
 * parser would take such an id for an option.
 */
function newClusterId(): string {
  for (;;) {
    const id = Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Listeners: one PLAINTEXT listener for everyone, or SASL for clients and PLAINTEXT for the broker itself. */
function listenerProperties(ports: BrokerPorts, mechanism: ScramMechanism | undefined): Record<string, string> {
  const controller = `CONTROLLER://127.0.0.1:${ports.controller}`;
  if (mechanism === undefined || ports.interBroker === undefined) {
    return {
      listeners: `PLAINTEXT://127.0.0.1:${ports.client},${controller}`,
      'advertised.listeners': `PLAINTEXT://127.0.0.1:${ports.client}`,
      'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'controller.listener.names': 'CONTROLLER',
      'inter.broker.listener.name': 'PLAINTEXT',
    };
  }
  const client = `${SASL_LISTENER}://127.0.0.1:${ports.client}`;
  const interBroker = `PLAINTEXT://127.0.0.1:${ports.interBroker}`;
  const prefix = `listener.name.${SASL_LISTENER.toLowerCase()}`;
  return {
    listeners: `${client},${interBroker},${controller}`,
    // The inter-broker listener must be advertised too; a client that bootstraps from
    // the SASL listener only ever sees that listener's endpoints in metadata.
    'advertised.listeners': `${client},${interBroker}`,
    'listener.security.protocol.map': `${SASL_LISTENER}:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    // The broker-wide default is GSSAPI, which would need Kerberos.
    'sasl.enabled.mechanisms': mechanism,
    [`${prefix}.sasl.enabled.mechanisms`]: mechanism,
    // The server side needs a JAAS login context per listener and mechanism, even though
    // SCRAM's server side takes nothing from it: the credentials are in the metadata log.
    [`${prefix}.${mechanism.toLowerCase()}.sasl.jaas.config`]: SCRAM_LOGIN_MODULE,
  };
}

/**
 * The SCRAM users of a data dir: those asked for plus the harness admin (random password)
 * when the dir is new; for a dir formatted before, what it was formatted with, which must
 * include every user asked for now (users cannot be added after formatting).
 */
async function scramState(dataDir: string, sasl: SaslOptions): Promise<ScramState> {
  if (sasl.mechanism !== 'SCRAM-SHA-256' && sasl.mechanism !== 'SCRAM-SHA-512') {
    throw new KafkaHarnessError(`unsupported SASL mechanism ${String(sasl.mechanism)}: SCRAM-SHA-256 or SCRAM-SHA-512`);
  }
  for (const [name, password] of Object.entries(sasl.users)) {
    if (name === HARNESS_ADMIN_USER) throw new KafkaHarnessError(`the SCRAM user name ${name} is the harness's own`);
    if (name === '' || password === '' || name.includes(',') || password.includes(',')) {
      throw new KafkaHarnessError(`SCRAM user ${JSON.stringify(name)}: names and passwords must be non-empty, without ','`);
    }
  }
  const file = path.join(dataDir, SCRAM_STATE_FILE);
  const formatted = fs.existsSync(path.join(dataDir, 'kafka-logs', 'meta.properties'));
  if (!formatted) {
    const state: ScramState = {
      mechanism: sasl.mechanism,
      users: { ...sasl.users, [HARNESS_ADMIN_USER]: randomUUID().replace(/-/g, '') },
    };
    await fsp.writeFile(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    return state;
  }
  let stored: ScramState;
  try {
    stored = JSON.parse(await fsp.readFile(file, 'utf8')) as ScramState;
  } catch (err) {
    throw new KafkaHarnessError(`${dataDir} was formatted without SASL users (no readable ${SCRAM_STATE_FILE}); use a new data dir`, { cause: err });
  }
  const missing = Object.entries(sasl.users).filter(([name, password]) => stored.users[name] !== password).map(([name]) => name);
  if (stored.mechanism !== sasl.mechanism || missing.length > 0) {
    throw new KafkaHarnessError(
      `${dataDir} was formatted with other SCRAM users or mechanism (${stored.mechanism}; differing: ${missing.join(', ') || '-'}); use a new data dir`,
    );
  }
  return stored;
}

function brokerProperties(ports: BrokerPorts, logDir: string, opts: BrokerOptions): Record<string, string> {
  const oneNode = '1';
  return {
    'process.roles': 'broker,controller',
    'node.id': String(NODE_ID),
    // A static voter set: nothing about the controller's address is stored in
    // the metadata log, so a data dir can be reopened on other ports.
    'controller.quorum.voters': `${NODE_ID}@127.0.0.1:${ports.controller}`,
    ...listenerProperties(ports, opts.sasl?.mechanism),
    'log.dirs': logDir,
    'auto.create.topics.enable': String(opts.autoCreateTopics ?? true),
    'num.partitions': '1',
    'default.replication.factor': oneNode,
    'min.insync.replicas': oneNode,
    // Internal topics default to replication 3 and 50 partitions; one node
    // cannot host the former and the latter costs seconds on first use.
    'offsets.topic.replication.factor': oneNode,
    'offsets.topic.num.partitions': '1',
    'transaction.state.log.replication.factor': oneNode,
    'transaction.state.log.min.isr': oneNode,
    'transaction.state.log.num.partitions': '1',
    'share.coordinator.state.topic.replication.factor': oneNode,
    'share.coordinator.state.topic.min.isr': oneNode,
    'share.coordinator.state.topic.num.partitions': '1',
    'group.initial.rebalance.delay.ms': '0',
    // After a SIGKILL the restarted controller still holds the dead broker's
    // registration and refuses the new one until this session expires
    // (default 9 s, heartbeats every 2 s).
    'broker.session.timeout.ms': '3000',
    'broker.heartbeat.interval.ms': '500',
    // Fewer threads and a small log-cleaner buffer (default 128 MiB of heap)
    // suit a 2-core test machine.
    'num.network.threads': '2',
    'num.io.threads': '2',
    'background.threads': '2',
    'num.recovery.threads.per.data.dir': '1',
    'log.cleaner.dedupe.buffer.size': String(8 * 1024 * 1024),
    ...(opts.authorizer === true ? authorizerProperties() : {}),
    ...opts.serverProperties,
  };
}

/** See BrokerOptions.authorizer. */
function authorizerProperties(): Record<string, string> {
  return {
    'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    // The controller authorizes the broker's registration and heartbeats (CLUSTER_ACTION),
    // which arrive on the PLAINTEXT controller listener as User:ANONYMOUS.
    'super.users': `User:${HARNESS_ADMIN_USER};User:ANONYMOUS`,
    'allow.everyone.if.no.acl.found': 'false',
  };
}

/**
 * Grants ACLs through Kafka's own Admin API (kafka-clients; the broker's classpath has no
 * kafka-tools, so no AclCommand), then waits until the broker's DescribeAcls lists them:
 * the broker applies ACLs from the metadata log after the controller has committed them.
 * Run by Java's source launcher; args: admin.properties, principal, resource type, resource
 * name, operation...
 */
const ACL_TOOL_SOURCE = `
import java.io.FileInputStream;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class GrantAcls {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    try (FileInputStream in = new FileInputStream(args[0])) {
      props.load(in);
    }
    String principal = args[1];
    ResourcePattern resource = new ResourcePattern(ResourceType.valueOf(args[2]), args[3], PatternType.LITERAL);
    List<AclBinding> bindings = new ArrayList<>();
    for (int i = 4; i < args.length; i++) {
      AclOperation op = AclOperation.valueOf(args[i]);
      bindings.add(new AclBinding(resource, new AccessControlEntry(principal, "*", op, AclPermissionType.ALLOW)));
    }
    try (Admin admin = Admin.create(props)) {
      admin.createAcls(bindings).all().get();
      AclBindingFilter filter = new AclBindingFilter(resource.toFilter(), AccessControlEntryFilter.ANY);
      for (;;) {
        Collection<AclBinding> present = admin.describeAcls(filter).values().get();
        if (present.containsAll(bindings)) break;
        Thread.sleep(100);
      }
    }
    System.out.println("GrantAcls: granted " + bindings);
  }
}
`;

function renderProperties(props: Record<string, string>): string {
  const escape = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  const lines = Object.entries(props).map(([k, v]) => `${escape(k)}=${escape(v)}`);
  return `# Written by tools/kafka/broker.ts; rewritten on every start.\n${lines.join('\n')}\n`;
}

function jvmArgs(heapMb: number, root: string, dataDir: string): string[] {
  return [
    `-Xms${Math.min(heapMb, 128)}m`,
    `-Xmx${heapMb}m`,
    // Serial GC and C1-only JIT: fewer threads and a faster start on 2 cores.
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-XX:+ExitOnOutOfMemoryError',
    '-XX:-UsePerfData',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${path.join(root, 'tools', 'kafka', 'log4j2.properties')}`,
    `-Dkafka.logs.dir=${dataDir}`,
  ];
}

// ---------------------------------------------------------------------------
// Class-data sharing: the first broker JVM that shuts down cleanly dumps the
// classes it loaded into an archive next to the jars; later JVMs map it and
// start about a second faster. A stale archive (other JDK, other jars) is
// only a warning to the JVM; we then delete it so that it gets rebuilt.

const CDS_REJECTED = /Unable to use shared archive/;
let cdsDumpInProgress = false;

interface ClassDataSharing {
  args: string[];
  /** Call once the JVM has exited. */
  finish: (status: ExitStatus) => void;
}

function classDataSharing(libs: string, log: BrokerLog, mayDump: boolean): ClassDataSharing {
  const archive = path.join(path.dirname(libs), 'broker-classes.jsa');
  if (fs.existsSync(archive)) {
    const rejected = log.waitForLine(CDS_REJECTED);
    void rejected.promise.then(() => fs.rm(archive, { force: true }, () => undefined));
    return { args: [`-XX:SharedArchiveFile=${archive}`], finish: rejected.cancel };
  }
  if (!mayDump || cdsDumpInProgress) return { args: [], finish: () => undefined };
  cdsDumpInProgress = true;
  const pending = `${archive}.${process.pid}.tmp`;
  const finish = (status: ExitStatus): void => {
    cdsDumpInProgress = false;
    // The JVM writes the archive as it exits; a JVM killed by a signal may have
    // left half a file. The rename makes a complete archive appear atomically.
    try {
      if (status.signal === null && fs.statSync(pending).size > 0) fs.renameSync(pending, archive);
    } catch {
      // No archive this time; a later broker will try again.
    } finally {
      fs.rmSync(pending, { force: true });
    }
  };
  return { args: [`-XX:ArchiveClassesAtExit=${pending}`], finish };
}

// ---------------------------------------------------------------------------
// The broker

export class KafkaBroker {
  readonly bootstrapServers: string;
  /**
   * What a client needs besides credentials: `bootstrap.servers`, and with SASL
   * `security.protocol=sasl_plaintext` and `sasl.mechanism`. librdkafka property names,
   * ready for an rdkafka.conf.
   */
  readonly clientProperties: ClientProperties;
  /** clientProperties plus the harness admin's credentials: for consumeAll, countMessages... */
  readonly adminClientProperties: ClientProperties;
  /** The SCRAM mechanism of the client listener; undefined without SASL. */
  readonly saslMechanism: ScramMechanism | undefined;
  private jvm: JvmProcess | undefined;
  private destroyed = false;

  private constructor(
    readonly dataDir: string,
    private readonly ownsDataDir: boolean,
    private readonly ports: BrokerPorts,
    private readonly root: string,
    private readonly libs: string,
    private readonly heapMb: number,
    private readonly log: BrokerLog,
    private readonly scram: ScramState | undefined,
  ) {
    this.bootstrapServers = `127.0.0.1:${ports.client}`;
    this.saslMechanism = scram?.mechanism;
    const client: Record<string, string> = { 'bootstrap.servers': this.bootstrapServers };
    if (scram !== undefined) {
      client['security.protocol'] = 'sasl_plaintext';
      client['sasl.mechanism'] = scram.mechanism;
    }
    this.clientProperties = Object.freeze(client);
    this.adminClientProperties = Object.freeze(scram === undefined ? client : this.clientPropertiesFor(HARNESS_ADMIN_USER));
  }

  static async start(opts: BrokerOptions = {}): Promise<KafkaBroker> {
    const root = findProjectRoot();
    const libs = await ensureKafkaJars(root);
    const ownsDataDir = opts.dataDir === undefined;
    const dataDir = path.resolve(opts.dataDir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'jobcompd-kafka-'))));
    await fsp.mkdir(dataDir, { recursive: true });
    let scram: ScramState | undefined;
    try {
      if (opts.authorizer === true && opts.sasl === undefined) {
        throw new KafkaHarnessError('authorizer needs sasl: without it every client is User:ANONYMOUS, a super user');
      }
      scram = opts.sasl === undefined ? undefined : await scramState(dataDir, opts.sasl);
    } catch (err) {
      if (ownsDataDir) await fsp.rm(dataDir, { recursive: true, force: true });
      throw err;
    }
    const [client, controller, interBroker] = await reserveLoopbackPorts(scram === undefined ? 2 : 3);
    if (client === undefined || controller === undefined || (scram !== undefined && interBroker === undefined)) {
      throw new KafkaHarnessError('could not reserve the ports');
    }
    const ports: BrokerPorts = scram === undefined ? { client, controller } : { client, controller, interBroker };
    const log = new BrokerLog(path.join(dataDir, 'broker.log'), opts.log);
    const broker = new KafkaBroker(dataDir, ownsDataDir, ports, root, libs, opts.heapMb ?? DEFAULT_HEAP_MB, log, scram);
    await fsp.writeFile(broker.propertiesFile, renderProperties(brokerProperties(ports, broker.logDir, opts)));
    try {
      await broker.formatStorageIfNeeded();
      await broker.launch();
    } catch (err) {
      await broker.destroy();
      throw err;
    }
    return broker;
  }

  /** The SCRAM users (name -> password), the harness admin included; empty without SASL. */
  get saslUsers(): Readonly<Record<string, string>> {
    return { ...this.scram?.users };
  }

  /**
   * clientProperties plus `sasl.username` and `sasl.password` of one of the users given
   * to start() (or HARNESS_ADMIN_USER). Throws for an unknown user or a broker without SASL.
   */
  clientPropertiesFor(user: string): Record<string, string> {
    const password = this.scram?.users[user];
    if (this.scram === undefined) throw new KafkaHarnessError('this broker was started without sasl');
    if (password === undefined) throw new KafkaHarnessError(`no SCRAM user ${user} on this broker`);
    return { ...this.clientProperties, 'sasl.username': user, 'sasl.password': password };
  }

  get pid(): number | undefined {
    return this.jvm?.pid;
  }

  /** SIGTERM (controlled shutdown), SIGKILL after 30 s. Keeps data and ports. */
  async stop(): Promise<void> {
    await this.jvm?.terminate('SIGTERM', STOP_GRACE_MS);
  }

  /** SIGKILL: an unclean crash. Keeps data and ports. */
  async kill(): Promise<void> {
    await this.jvm?.terminate('SIGKILL', STOP_GRACE_MS);
  }

  /** Starts the JVM again (stopping it first if needed) on the same ports and data. */
  async restart(): Promise<void> {
    if (this.destroyed) throw new KafkaHarnessError('restart() after destroy()');
    await this.stop();
    await this.launch();
  }

  /** Stops the broker and removes the data dir if start() created it. Idempotent. */
  async destroy(): Promise<void> {
    this.destroyed = true;
    await this.stop();
    if (this.ownsDataDir) await fsp.rm(this.dataDir, { recursive: true, force: true });
  }

  /** Creates a topic (replication 1) and waits until all its partitions have a leader. */
  /** `config`: topic-level settings, e.g. { 'min.insync.replicas': '2' }. */
  async createTopic(name: string, partitions = 1, config: Record<string, string> = {}): Promise<void> {
    await withAdminClient(this.bootstrapServers, (admin) => {
      return new Promise<void>((resolve, reject) => {
        const topic = { topic: name, num_partitions: partitions, replication_factor: 1, config };
        admin.createTopic(topic, TOPIC_TIMEOUT_MS, (err: LibrdKafkaError | undefined) => {
          if (err) reject(new TopicAdminError(`cannot create topic ${name}: ${describeKafkaError(err)}`));
          else resolve();
        });
      });
    }, this.adminClientProperties);
    await this.waitForMetadataOrThrow(`topic ${name} has ${partitions} partition(s) with leaders`, (md) =>
      topicHasLeaders(findTopic(md, name), partitions),
    );
  }

  /** Deletes a topic and resolves once the broker no longer reports it. */
  async deleteTopic(name: string): Promise<void> {
    await withAdminClient(this.bootstrapServers, (admin) => {
      return new Promise<void>((resolve, reject) => {
        admin.deleteTopic(name, TOPIC_TIMEOUT_MS, (err: LibrdKafkaError | undefined) => {
          if (err) reject(new TopicAdminError(`cannot delete topic ${name}: ${describeKafkaError(err)}`));
          else resolve();
        });
      });
    }, this.adminClientProperties);
    await this.waitForTopicAbsent(name);
  }

  async waitForTopicAbsent(name: string, timeoutMs = TOPIC_TIMEOUT_MS): Promise<void> {
    await this.waitForMetadataOrThrow(`topic ${name} is gone`, (md) => findTopic(md, name) === undefined, timeoutMs);
  }

  /**
   * Allows `user` the operations on one resource (a broker started with `authorizer`),
   * with the real Admin API, as the harness admin. Resolves once the broker enforces them.
   */
  async grantAcl(grant: AclGrant): Promise<void> {
    if (this.scram === undefined) throw new KafkaHarnessError('grantAcl on a broker started without sasl');
    if (this.scram.users[grant.user] === undefined) throw new KafkaHarnessError(`no SCRAM user ${grant.user} on this broker`);
    if (grant.operations.length === 0) throw new KafkaHarnessError('grantAcl without operations');
    const admin = this.scram.users[HARNESS_ADMIN_USER] as string;
    const propsFile = path.join(this.dataDir, 'acl-admin.properties');
    const source = path.join(this.dataDir, 'GrantAcls.java');
    const props = {
      'bootstrap.servers': this.bootstrapServers,
      'security.protocol': 'SASL_PLAINTEXT',
      'sasl.mechanism': this.scram.mechanism,
      'sasl.jaas.config': `${SCRAM_LOGIN_MODULE.replace(/;$/, '')} username="${HARNESS_ADMIN_USER}" password="${admin}";`,
      'default.api.timeout.ms': String(ACL_TIMEOUT_MS),
    };
    await fsp.writeFile(propsFile, renderProperties(props), { mode: 0o600 });
    await fsp.writeFile(source, ACL_TOOL_SOURCE);
    const args = [propsFile, `User:${grant.user}`, grant.resource.type, grant.resource.name, ...grant.operations];
    const what = `granting ${grant.operations.join(',')} on ${grant.resource.type} ${grant.resource.name} to User:${grant.user}`;
    this.log.note(what);
    const tool = JvmProcess.spawn(source, args, jvmArgs(ACL_TOOL_HEAP_MB, this.root, this.dataDir), this.libs, this.log);
    const timer = setTimeout(() => tool.signal('SIGKILL'), ACL_TIMEOUT_MS);
    const status = await tool.exited.finally(() => clearTimeout(timer));
    if (status.code !== 0) {
      throw new TopicAdminError(`${what}: the ACL tool ${describeExit(status)}\n--- last broker log lines ---\n${this.log.tail()}`);
    }
  }

  private get propertiesFile(): string {
    return path.join(this.dataDir, 'server.properties');
  }

  private get logDir(): string {
    return path.join(this.dataDir, 'kafka-logs');
  }

  private async waitForMetadataOrThrow(
    what: string,
    done: Parameters<typeof waitForMetadata>[3],
    timeoutMs = TOPIC_TIMEOUT_MS,
  ): Promise<void> {
    try {
      await waitForMetadata(this.bootstrapServers, timeoutMs, what, done, this.adminClientProperties);
    } catch (err) {
      throw new TopicAdminError(`${this.bootstrapServers}: ${describeKafkaError(err)}`, { cause: err });
    }
  }

  private async formatStorageIfNeeded(): Promise<void> {
    if (fs.existsSync(path.join(this.logDir, 'meta.properties'))) return;
    const clusterId = newClusterId();
    this.log.note(`formatting ${this.logDir} (cluster id ${clusterId})`);
    const args = ['format', '--cluster-id', clusterId, '--config', this.propertiesFile];
    // SCRAM credentials go into the bootstrap metadata: the broker knows its users from
    // its first start, before any client could create them.
    const secrets: string[] = [];
    for (const [name, password] of Object.entries(this.scram?.users ?? {})) {
      args.push('--add-scram', `${this.scram?.mechanism}=[name="${name}",password="${password}"]`);
      secrets.push(password);
    }
    const formatter = this.spawnJvm('kafka.tools.StorageTool', args, false, secrets);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      formatter.signal('SIGKILL');
    }, FORMAT_TIMEOUT_MS);
    const status = await formatter.exited.finally(() => clearTimeout(timer));
    if (status.code === 0) return;
    const reason = timedOut ? `it did not finish within ${FORMAT_TIMEOUT_MS} ms` : `the storage tool ${describeExit(status)}`;
    throw new BrokerStartError(`formatting Kafka storage in ${this.logDir} failed: ${reason}`, this.log.tail());
  }

  /** Only broker JVMs may dump the class-data archive: they load the most classes. */
  private spawnJvm(mainClass: string, args: string[], mayDumpClasses: boolean, secrets: string[] = []): JvmProcess {
    const cds = classDataSharing(this.libs, this.log, mayDumpClasses);
    const flags = [...jvmArgs(this.heapMb, this.root, this.dataDir), ...cds.args];
    const jvm = JvmProcess.spawn(mainClass, args, flags, this.libs, this.log, secrets);
    void jvm.exited.then(cds.finish);
    return jvm;
  }

  private async launch(): Promise<void> {
    const startedAt = Date.now();
    this.log.note(`starting broker on ${this.bootstrapServers} (controller 127.0.0.1:${this.ports.controller})`);
    const started = this.log.waitForLine(STARTED_LINE);
    const jvm = this.spawnJvm('kafka.Kafka', [this.propertiesFile], true);
    this.jvm = jvm;
    const fail = (reason: string): Error =>
      new BrokerStartError(`Kafka broker on ${this.bootstrapServers} failed to start: ${reason}`, this.log.tail());
    try {
      await raceAgainstDeath(this.becomeReady(jvm, started.promise), jvm, READY_TIMEOUT_MS, fail);
    } catch (err) {
      started.cancel();
      await jvm.terminate('SIGKILL', STOP_GRACE_MS);
      throw err;
    }
    jvm.detachFromEventLoop();
    this.log.note(`broker ready (pid ${String(jvm.pid)}) after ${Date.now() - startedAt} ms`);
  }

  /** The "started" log line, then a metadata response that lists this broker. */
  private async becomeReady(jvm: JvmProcess, startedLine: Promise<void>): Promise<void> {
    await startedLine;
    let lastError: unknown;
    // Bounded by raceAgainstDeath's timeout, which also kills the JVM and so ends this loop.
    while (jvm.running) {
      try {
        await withMetadataClient(this.bootstrapServers, METADATA_PROBE_TIMEOUT_MS, async (_client, metadata) => {
          if (!metadata.brokers.some((b) => b.port === this.ports.client)) {
            throw new KafkaHarnessError('the metadata response does not list the broker yet');
          }
        }, this.adminClientProperties);
        return;
      } catch (err) {
        lastError = err;
        await delay(200);
      }
    }
    throw new KafkaHarnessError(`metadata request failed: ${describeKafkaError(lastError)}`);
  }
}

// ---------------------------------------------------------------------------
// By hand: `node dist/tools/kafka/broker.js [--no-auto-create] [--sasl USER=PASSWORD]...
// [--sasl-mechanism SCRAM-SHA-512] [--authorizer]` runs a broker until Ctrl-C, then removes
// its data dir. With --sasl it prints the client properties of each user (an rdkafka.conf).

function parseArgs(argv: string[]): BrokerOptions {
  const users: Record<string, string> = {};
  let mechanism: ScramMechanism = 'SCRAM-SHA-256';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--no-auto-create' || arg === '--authorizer') continue;
    const value = argv[i + 1];
    if ((arg === '--sasl' || arg === '--sasl-mechanism') && value === undefined) throw new KafkaHarnessError(`${arg} needs a value`);
    if (arg === '--sasl') {
      const eq = (value as string).indexOf('=');
      if (eq <= 0) throw new KafkaHarnessError(`--sasl ${String(value)}: expected USER=PASSWORD`);
      users[(value as string).slice(0, eq)] = (value as string).slice(eq + 1);
      i++;
    } else if (arg === '--sasl-mechanism') {
      if (value !== 'SCRAM-SHA-256' && value !== 'SCRAM-SHA-512') throw new KafkaHarnessError(`--sasl-mechanism ${String(value)}: SCRAM-SHA-256 or SCRAM-SHA-512`);
      mechanism = value;
      i++;
    } else {
      throw new KafkaHarnessError(`unknown argument ${arg}`);
    }
  }
  const opts: BrokerOptions = { autoCreateTopics: !argv.includes('--no-auto-create') };
  if (Object.keys(users).length > 0) opts.sasl = { mechanism, users };
  if (argv.includes('--authorizer')) opts.authorizer = true;
  return opts;
}

async function main(argv: string[]): Promise<void> {
  const broker = await KafkaBroker.start(parseArgs(argv));
  process.stdout.write(
    `Kafka ${kafkaVersion()} ready at ${broker.bootstrapServers} (pid ${String(broker.pid)}, ` +
      `log ${path.join(broker.dataDir, 'broker.log')}). Ctrl-C stops it.\n`,
  );
  for (const user of Object.keys(broker.saslUsers)) {
    const props = Object.entries(broker.clientPropertiesFor(user)).map(([k, v]) => `  ${k}=${v}`);
    process.stdout.write(`client properties of ${user}:\n${props.join('\n')}\n`);
  }
  // The broker does not keep Node alive by itself (see detachFromEventLoop).
  const keepAlive = setInterval(() => undefined, 1 << 30);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(keepAlive);
  await broker.destroy();
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
