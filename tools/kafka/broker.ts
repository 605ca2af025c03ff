// A real single-node Apache Kafka broker (KRaft, combined broker+controller)
// for tests and demos. The jars come from tools/kafka/fetch.sh; the JVM is a
// child of this process and is killed when this process exits.
import { findProjectRoot, reserveLoopbackPorts } from '../harness-common';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
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
import { BrokerStartError, HARNESS_ADMIN_USER, KafkaHarnessError, TopicAdminError, type AclGrant, type BrokerOptions, type ScramMechanism } from './broker-types';
import { ACL_TOOL_SOURCE, brokerProperties, jvmArgs, newClusterId, renderProperties, SCRAM_LOGIN_MODULE, scramState, type BrokerPorts, type ScramState } from './broker-config';
import { ensureKafkaJars, kafkaVersion } from './jars';
import { BrokerLog, classDataSharing, describeExit, JvmProcess, raceAgainstDeath } from './jvm';

export * from './broker-types';
export type { ClientProperties } from './clients';
export { findProjectRoot };
export { ensureKafkaJars, kafkaVersion };

const READY_TIMEOUT_MS = 90_000;
const FORMAT_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 30_000;
const TOPIC_TIMEOUT_MS = 30_000;
/** The ACL tool compiles itself (Java's source launcher) before it talks to the broker. */
const ACL_TIMEOUT_MS = 90_000;
const ACL_TOOL_HEAP_MB = 128;
const METADATA_PROBE_TIMEOUT_MS = 5_000;
const DEFAULT_HEAP_MB = 512;
const STARTED_LINE = /\bKafka Server started\b/;

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
