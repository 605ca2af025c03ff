// The APIs the listener answers, the versions of each (what librdkafka 2.x and the Java
// client of tools/kafka negotiate; docs/kafka-listener.md#versions), and from which
// version each uses the flexible encoding (compact strings, tagged fields).

export const ApiKey = {
  produce: 0,
  fetch: 1,
  metadata: 3,
  saslHandshake: 17,
  apiVersions: 18,
  initProducerId: 22,
  saslAuthenticate: 36,
} as const;

export type ApiKeyNumber = (typeof ApiKey)[keyof typeof ApiKey];


export interface ApiRange {
  readonly apiKey: ApiKeyNumber;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** First version in the flexible encoding. */
  readonly flexibleFrom: number;
}

export const SUPPORTED_APIS: readonly ApiRange[] = [
  // Produce v3 is the first with RecordBatch v2 (magic 2), the only format accepted.
  { apiKey: ApiKey.produce, minVersion: 3, maxVersion: 11, flexibleFrom: 9 },
  { apiKey: ApiKey.metadata, minVersion: 0, maxVersion: 12, flexibleFrom: 9 },
  { apiKey: ApiKey.apiVersions, minVersion: 0, maxVersion: 3, flexibleFrom: 3 },
  { apiKey: ApiKey.initProducerId, minVersion: 0, maxVersion: 4, flexibleFrom: 2 },
  { apiKey: ApiKey.saslHandshake, minVersion: 1, maxVersion: 1, flexibleFrom: Infinity },
  { apiKey: ApiKey.saslAuthenticate, minVersion: 0, maxVersion: 2, flexibleFrom: 2 },
];

/**
 * What ApiVersions lists: the APIs answered, and Fetch v4, which is never answered (a
 * request gets UNSUPPORTED_VERSION) but which librdkafka requires, beside Produce v3, before
 * it writes RecordBatch v2 (its MsgVer2 feature); without it, it falls back to magic 0.
 */
export const ADVERTISED_APIS: readonly Omit<ApiRange, 'flexibleFrom'>[] = [...SUPPORTED_APIS, { apiKey: ApiKey.fetch, minVersion: 4, maxVersion: 4 }];

export function supportedRange(apiKey: number): ApiRange | undefined {
  return SUPPORTED_APIS.find((api) => api.apiKey === apiKey);
}

export function isSupported(apiKey: number, version: number): boolean {
  const range = supportedRange(apiKey);
  return range !== undefined && version >= range.minVersion && version <= range.maxVersion;
}

export function isFlexible(apiKey: number, version: number): boolean {
  const range = supportedRange(apiKey);
  return range !== undefined && version >= range.flexibleFrom;
}

/** The protocol's error codes the listener answers with (Kafka's Errors.java numbering). */
export const KafkaErrorCode = {
  none: 0,
  corruptMessage: 2,
  unknownTopicOrPartition: 3,
  invalidTopic: 17,
  invalidRequiredAcks: 21,
  unsupportedVersion: 35,
  unsupportedForMessageFormat: 43,
  outOfOrderSequenceNumber: 45,
  invalidProducerEpoch: 47,
  transactionalIdAuthorizationFailed: 53,
  kafkaStorageError: 56,
  unsupportedSaslMechanism: 33,
  illegalSaslState: 34,
  saslAuthenticationFailed: 58,
  unsupportedCompressionType: 76,
} as const;

/** Kafka's own names of those codes (Errors.java), the `reason` of jobcompd_kafka_listener_refusals_total. */
const ERROR_NAMES: Readonly<Record<number, string>> = {
  [KafkaErrorCode.corruptMessage]: 'CORRUPT_MESSAGE',
  [KafkaErrorCode.unknownTopicOrPartition]: 'UNKNOWN_TOPIC_OR_PARTITION',
  [KafkaErrorCode.invalidTopic]: 'INVALID_TOPIC_EXCEPTION',
  [KafkaErrorCode.invalidRequiredAcks]: 'INVALID_REQUIRED_ACKS',
  [KafkaErrorCode.unsupportedVersion]: 'UNSUPPORTED_VERSION',
  [KafkaErrorCode.unsupportedForMessageFormat]: 'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  [KafkaErrorCode.outOfOrderSequenceNumber]: 'OUT_OF_ORDER_SEQUENCE_NUMBER',
  [KafkaErrorCode.invalidProducerEpoch]: 'INVALID_PRODUCER_EPOCH',
  [KafkaErrorCode.transactionalIdAuthorizationFailed]: 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  [KafkaErrorCode.kafkaStorageError]: 'KAFKA_STORAGE_ERROR',
  [KafkaErrorCode.unsupportedSaslMechanism]: 'UNSUPPORTED_SASL_MECHANISM',
  [KafkaErrorCode.illegalSaslState]: 'ILLEGAL_SASL_STATE',
  [KafkaErrorCode.saslAuthenticationFailed]: 'SASL_AUTHENTICATION_FAILED',
  [KafkaErrorCode.unsupportedCompressionType]: 'UNSUPPORTED_COMPRESSION_TYPE',
};

export function kafkaErrorName(code: number): string {
  return ERROR_NAMES[code] ?? `KAFKA_ERROR_${code}`;
}
