// One error taxonomy for the whole daemon. Every error that can reach a user carries a
// stable `code` (documented in docs/errors.md); messages may change, codes may not.

/** sysexits.h EX_CONFIG: the exit code for any configuration error. */
export const EXIT_CONFIG = 78;
/** sysexits.h EX_SOFTWARE: internal error. */
export const EXIT_SOFTWARE = 70;
/** sysexits.h EX_TEMPFAIL: try again later (e.g. the state file is locked by another process). */
export const EXIT_TEMPFAIL = 75;
/** sysexits.h EX_DATAERR: input data was bad (e.g. convert could not map a record). */
export const EXIT_DATAERR = 65;
/** sysexits.h EX_NOINPUT: an input file did not exist or was not readable. */
export const EXIT_NOINPUT = 66;
/** sysexits.h EX_UNAVAILABLE: a service needed is not available (check-config --connect). */
export const EXIT_UNAVAILABLE = 69;
/** sysexits.h EX_CANTCREAT: something could not be created (`topics create`: the broker refused a topic). */
export const EXIT_CANTCREAT = 73;
/**
 * sysexits.h EX_IOERR: the state file failed to sync or to commit (an I/O error). The daemon
 * stops at once rather than answer another batch from pages that may never reach the disk.
 */
export const EXIT_IOERR = 74;
/** sysexits.h EX_NOPERM: permission denied (e.g. the state file, for a user who is not SlurmUser). */
export const EXIT_NOPERM = 77;

export abstract class JobcompdError extends Error {
  abstract readonly code: string;
  /** Process exit code when this error ends a command. */
  abstract readonly exitCode: number;
}

/** Where in a configuration source a problem was found. */
export interface ConfigLocation {
  file: string;
  line?: number;
  key?: string;
}

export function formatLocation(loc: ConfigLocation): string {
  let s = loc.file;
  if (loc.line !== undefined) s += `:${loc.line}`;
  if (loc.key !== undefined) s += `: ${loc.key}`;
  return s;
}

/** Any problem with configuration. The message always names file, line and key when known. */
export class ConfigError extends JobcompdError {
  readonly code: string;
  readonly exitCode = EXIT_CONFIG;
  readonly location: ConfigLocation;
  readonly detail: string;

  constructor(code: string, location: ConfigLocation, detail: string) {
    super(`${formatLocation(location)}: ${detail}`);
    this.name = 'ConfigError';
    this.code = code;
    this.location = location;
    this.detail = detail;
  }
}

export const ConfigCodes = {
  unreadable: 'E_CONFIG_UNREADABLE',
  syntax: 'E_CONFIG_SYNTAX',
  unknownKey: 'E_CONFIG_UNKNOWN_KEY',
  badValue: 'E_CONFIG_BAD_VALUE',
  missing: 'E_CONFIG_MISSING',
  rdkafka: 'E_CONFIG_RDKAFKA',
} as const;

/** An input record that cannot be mapped to a jobcomp/kafka record. */
export class RecordError extends JobcompdError {
  readonly code: string;
  readonly exitCode = EXIT_DATAERR;
  /** The input field at fault, if one is. */
  readonly field: string | undefined;
  /** The job id, when the input showed one, for the log line. */
  jobId: number | undefined;

  constructor(code: string, message: string, field?: string) {
    super(message);
    this.name = 'RecordError';
    this.code = code;
    this.field = field;
  }
}

export const RecordCodes = {
  notJson: 'E_RECORD_NOT_JSON',
  notObject: 'E_RECORD_NOT_OBJECT',
  missingField: 'E_RECORD_MISSING_FIELD',
  badField: 'E_RECORD_BAD_FIELD',
  /** `convert`: a valid input that publishes no record (an EpilogSlurmctld environment, a start record in a layout without them) */
  notPublished: 'E_RECORD_NOT_PUBLISHED',
} as const;

/** Reason codes of quarantined inputs that are neither a RecordError nor a librdkafka error. */
export const QuarantineCodes = {
  /** a hook message or spool file that is not in the hook's wire format */
  hookBadMessage: 'E_HOOK_BAD_MESSAGE',
  /** a record produced to the Kafka listener that node-rdkafka cannot publish unchanged (null value, binary header) */
  kafkaUnpublishable: 'E_KAFKA_UNPUBLISHABLE',
  /** a quarantine row recovered by repair-state without its reason code */
  unknown: 'E_UNKNOWN',
} as const;

/** Codes of log lines about inputs that are not committed here, and where they are kept instead. */
export const SourceCodes = {
  /** a hook message over [hook] MaxMessageBytes: answered "not committed", the hook spools it whole */
  hookTooLarge: 'E_HOOK_TOO_LARGE',
  /** a spool file that cannot be imported (over MaxMessageBytes, not a regular file, unreadable): moved to rejected/ whole */
  spoolRejected: 'E_SPOOL_REJECTED',
} as const;

/** `replay --from-slurm-state`: the file is not a readable jobcomp_kafka_state or elasticsearch_state. */
export class SlurmStateError extends JobcompdError {
  readonly code = 'E_SLURM_STATE';
  readonly exitCode = EXIT_DATAERR;

  constructor(message: string) {
    super(message);
    this.name = 'SlurmStateError';
  }
}

/** An error whose code and exit code are chosen where it is raised, among those documented for its kind. */
abstract class CodedError extends JobcompdError {
  readonly code: string;
  readonly exitCode: number;

  constructor(code: string, message: string, exitCode: number) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
  }
}

/** The state file cannot be used (locked, corrupt, foreign, newer schema, full disk...). */
export class StateError extends CodedError {
  /** The record that could not be committed, when there was one, for the source's log line. */
  record: { jobId: number; event: string } | undefined;

  constructor(code: string, message: string, exitCode: number = EXIT_SOFTWARE) {
    super(code, message, exitCode);
  }
}

/** The job id and event of the record a failed commit was about, for log lines. */
export function failedRecord(err: unknown): { jobId?: number; event?: string } {
  return err instanceof StateError && err.record ? { ...err.record } : {};
}

export const StateCodes = {
  locked: 'E_STATE_LOCKED',
  foreign: 'E_STATE_FOREIGN',
  newerSchema: 'E_STATE_NEWER_SCHEMA',
  corrupt: 'E_STATE_CORRUPT',
  io: 'E_STATE_IO',
  permission: 'E_STATE_PERMISSION',
  full: 'E_STATE_DISK_FULL',
  /** fdatasync failed, or SQLite reported an I/O error in a commit: fatal (EXIT_IOERR) */
  syncFailed: 'E_STATE_SYNC_FAILED',
  /** [jobcompd] MaxQuarantineBytes reached: an input that would be quarantined is not committed */
  quarantineFull: 'E_QUARANTINE_FULL',
  socketPath: 'E_SOCKET_PATH',
  socketInUse: 'E_SOCKET_IN_USE',
} as const;

/** `jobcompd topics` and `jobcompd tail`: the brokers cannot be reached, or refused a request. */
export class KafkaAdminError extends CodedError {}

export const KafkaAdminCodes = {
  /** no broker answered (exit 69) */
  unreachable: 'E_KAFKA_UNREACHABLE',
  /** the broker refused to create a topic, e.g. a replication factor above the broker count (exit 73) */
  topicRefused: 'E_TOPIC_REFUSED',
  /** `tail`: a topic to read does not exist (exit 69) */
  topicMissing: 'E_TOPIC_MISSING',
} as const;

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A Kafka request that the listener cannot read (docs/kafka-listener.md): the connection
 * is closed with a log line carrying the code, the daemon goes on.
 */
export class KafkaProtocolError extends JobcompdError {
  readonly code: string;
  readonly exitCode = EXIT_DATAERR;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'KafkaProtocolError';
    this.code = code;
  }
}

export const KafkaProtocolCodes = {
  /** a request or record batch that does not parse (short, bad length, bad varint) */
  malformed: 'E_KAFKA_MALFORMED',
  /** a frame longer than [kafka] MaxRequestBytes */
  frameTooLarge: 'E_KAFKA_FRAME_TOO_LARGE',
  /** a record batch whose CRC-32C does not match its bytes */
  badCrc: 'E_KAFKA_BAD_CRC',
  /** a request other than ApiVersions and SASL before the client authenticated ([kafka] SaslUser set) */
  unauthenticated: 'E_KAFKA_UNAUTHENTICATED',
  /** a record batch compressed with a codec this Node.js cannot decompress */
  unsupportedCompression: 'E_KAFKA_UNSUPPORTED_COMPRESSION',
  /** a request whose handling failed in an unforeseen way: its connection is closed, the daemon goes on */
  internal: 'E_KAFKA_INTERNAL',
  /** a connection beyond [kafka] MaxConnections, closed as soon as it is accepted */
  tooManyConnections: 'E_KAFKA_TOO_MANY_CONNECTIONS',
} as const;
