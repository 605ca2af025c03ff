// The broker's configuration: ports and listeners, SCRAM users, the authorizer, server.properties and JVM arguments.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { HARNESS_ADMIN_USER, KafkaHarnessError, type BrokerOptions, type SaslOptions, type ScramMechanism } from './broker-types';

const NODE_ID = 1;

export interface BrokerPorts {
  client: number;
  controller: number;
  /** With SASL only: the PLAINTEXT inter-broker listener. */
  interBroker?: number;
}

/** SASL settings as formatted into a data dir; kept in <dataDir>/scram-users.json. */
export interface ScramState {
  mechanism: ScramMechanism;
  /** includes HARNESS_ADMIN_USER */
  users: Record<string, string>;
}

const SCRAM_STATE_FILE = 'scram-users.json';
export const SCRAM_LOGIN_MODULE = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
/** The name of the SASL client listener (its security protocol too). */
const SASL_LISTENER = 'SASL_PLAINTEXT';

/**
 * 22 characters of base64url, the format Kafka expects. Like Kafka's own
 * Uuid.randomUuid(), reject ids starting with '-': the storage tool's argument
 * parser would take such an id for an option.
 */
export function newClusterId(): string {
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
export async function scramState(dataDir: string, sasl: SaslOptions): Promise<ScramState> {
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

export function brokerProperties(ports: BrokerPorts, logDir: string, opts: BrokerOptions): Record<string, string> {
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
export const ACL_TOOL_SOURCE = `
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

export function renderProperties(props: Record<string, string>): string {
  const escape = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  const lines = Object.entries(props).map(([k, v]) => `${escape(k)}=${escape(v)}`);
  return `# Written by tools/kafka/broker.ts; rewritten on every start.\n${lines.join('\n')}\n`;
}

export function jvmArgs(heapMb: number, root: string, dataDir: string): string[] {
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

