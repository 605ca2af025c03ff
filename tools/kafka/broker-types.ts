// The broker harness's options, ACL and SASL types and its errors (tools/kafka/broker.ts).

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

