// One client connection of the Kafka listener, request by request: ApiVersions, Metadata,
// InitProducerId and Produce (docs/kafka-listener.md). A produce request is answered only
// after `commit` has made every new record of it durable; answers leave in request order.

import { createHash, timingSafeEqual } from 'node:crypto';
import { KafkaProtocolCodes, KafkaProtocolError, errorMessage } from '../errors';
import { ApiKey, KafkaErrorCode, isSupported } from '../kafka-protocol/api-keys';
import { readApiVersionsRequest, writeApiVersionsResponse } from '../kafka-protocol/api-versions';
import { codecName } from '../kafka-protocol/compression';
import { type RequestHeader, readHeaderStart, readRequestHeader, responseWriter } from '../kafka-protocol/header';
import { readInitProducerIdRequest, writeInitProducerIdResponse } from '../kafka-protocol/init-producer-id';
import { type BrokerAddress, isLegalTopicName, readMetadataRequest, writeMetadataResponse } from '../kafka-protocol/metadata';
import { type PartitionAnswer, type TopicAnswer, readProduceRequest, writeProduceResponse } from '../kafka-protocol/produce';
import type { ProducerState } from '../kafka-protocol/producer-state';
import { ByteReader } from '../kafka-protocol/reader';
import { PLAIN, parsePlain, readSaslAuthenticateRequest, readSaslHandshakeRequest, writeSaslAuthenticateResponse, writeSaslHandshakeResponse } from '../kafka-protocol/sasl';
import { type KafkaRecord, readRecordBatches } from '../kafka-protocol/record-batch';

/** One record as produced, with where it was produced to. */
export interface ProducedRecord extends KafkaRecord {
  readonly topic: string;
}

export interface KafkaSessionEvents {
  /** a batch refused for its codec: the client's compression.type must change */
  unsupportedCompression(codec: string, clientId: string | null): void;
  /** a batch refused for another reason (bad CRC, malformed, out of order) */
  refusedBatch(topic: string, code: string, reason: string, clientId: string | null): void;
  unsupportedRequest(apiKey: number, apiVersion: number, clientId: string | null): void;
  authenticationFailed(user: string | null, clientId: string | null): void;
  /** any error answered (per partition or topic, or for the whole request), acks=0 included: counted by the metrics */
  refused(errorCode: number): void;
}

export interface KafkaSessionContext {
  readonly broker: BrokerAddress;
  readonly clusterId: string;
  /** the most bytes the records of one request may take, decompressed (all its batches together) */
  readonly maxRecordsBytes: number;
  readonly producers: ProducerState;
  /** the next offset of each topic's one partition */
  readonly offsets: Map<string, bigint>;
  /** SASL/PLAIN credentials every connection must present first; undefined: none asked */
  readonly credentials?: { readonly user: string; readonly password: string };
  /** makes the records durable; rejects if they are not */
  commit(records: readonly ProducedRecord[]): Promise<void>;
  readonly events: KafkaSessionEvents;
}

const NO_OFFSET = -1n;
/**
 * Topics whose next offset is kept, the least recently produced to dropped first: a client
 * that names ever new topics cannot grow memory without bound. A dropped topic counts from
 * 0 again, which is harmless: nothing reads offsets back (docs/kafka-listener.md#idempotent-producers).
 */
export const KEPT_TOPIC_OFFSETS = 10_000;

function keepOffset(offsets: Map<string, bigint>, topic: string, offset: bigint): void {
  offsets.delete(topic);
  offsets.set(topic, offset);
  if (offsets.size > KEPT_TOPIC_OFFSETS) {
    const oldest = offsets.keys().next();
    if (oldest.done !== true) offsets.delete(oldest.value);
  }
}

/** What one connection has said so far. */
export interface ConnectionState {
  /** a SaslHandshake for PLAIN was answered */
  handshake: boolean;
  authenticated: boolean;
}

export function newConnectionState(): ConnectionState {
  return { handshake: false, authenticated: false };
}

function sameSecret(a: string, b: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function partitionError(partition: number, errorCode: number, errorMessage: string | null): PartitionAnswer {
  return { partition, errorCode, baseOffset: NO_OFFSET, errorMessage };
}

function kafkaCodeFor(err: KafkaProtocolError): number {
  return err.code === KafkaProtocolCodes.unsupportedCompression ? KafkaErrorCode.unsupportedCompressionType : KafkaErrorCode.corruptMessage;
}

/**
 * The answer to one request frame: a Buffer to send (unframed), or undefined for none
 * (acks=0). Throws KafkaProtocolError for a request that does not parse: the caller closes
 * the connection.
 */
export async function answerRequest(frame: Buffer, context: KafkaSessionContext, connection: ConnectionState = newConnectionState()): Promise<Buffer | undefined> {
  const start = readHeaderStart(frame);
  if (start.apiKey === ApiKey.apiVersions) {
    // answered in any version: a version above ours gets the v0 fallback with our list
    if (isSupported(start.apiKey, start.apiVersion)) {
      const reader = new ByteReader(frame);
      readRequestHeader(reader);
      readApiVersionsRequest(reader, start.apiVersion);
    } else {
      context.events.refused(KafkaErrorCode.unsupportedVersion); // the Java client's first ApiVersions (v4) too
    }
    return writeApiVersionsResponse(start);
  }
  if (!isSupported(start.apiKey, start.apiVersion)) {
    const reader = new ByteReader(frame);
    reader.bytes(8);
    context.events.unsupportedRequest(start.apiKey, start.apiVersion, reader.nullableString());
    context.events.refused(KafkaErrorCode.unsupportedVersion);
    return responseWriter({ ...start, apiKey: ApiKey.apiVersions }).int16(KafkaErrorCode.unsupportedVersion).toBuffer();
  }
  const reader = new ByteReader(frame);
  const header = readRequestHeader(reader);
  if (header.apiKey === ApiKey.saslHandshake) return answerSaslHandshake(reader, header, context, connection);
  if (header.apiKey === ApiKey.saslAuthenticate) return answerSaslAuthenticate(reader, header, context, connection);
  if (context.credentials !== undefined && !connection.authenticated) {
    throw new KafkaProtocolError(KafkaProtocolCodes.unauthenticated, `API ${header.apiKey} before SASL authentication`);
  }
  switch (header.apiKey) {
    case ApiKey.metadata:
      return answerMetadata(reader, header, context);
    case ApiKey.initProducerId:
      return answerInitProducerId(reader, header, context);
    default:
      return answerProduce(reader, header, context);
  }
}

function answerSaslHandshake(reader: ByteReader, header: RequestHeader, context: KafkaSessionContext, connection: ConnectionState): Buffer {
  const mechanism = readSaslHandshakeRequest(reader);
  const offered = context.credentials === undefined ? [] : [PLAIN];
  connection.handshake = offered.includes(mechanism);
  if (!connection.handshake) context.events.refused(KafkaErrorCode.unsupportedSaslMechanism);
  return writeSaslHandshakeResponse(header, connection.handshake ? KafkaErrorCode.none : KafkaErrorCode.unsupportedSaslMechanism, offered);
}

function answerSaslAuthenticate(reader: ByteReader, header: RequestHeader, context: KafkaSessionContext, connection: ConnectionState): Buffer {
  const message = readSaslAuthenticateRequest(reader, header.apiVersion);
  if (!connection.handshake || context.credentials === undefined) {
    context.events.refused(KafkaErrorCode.illegalSaslState);
    return writeSaslAuthenticateResponse(header, KafkaErrorCode.illegalSaslState, 'SaslHandshake for PLAIN first');
  }
  const given = parsePlain(message);
  const expected = context.credentials;
  // both compared, whatever the first says: the time taken tells nothing
  const userOk = sameSecret(given?.user ?? '', expected.user);
  const passwordOk = sameSecret(given?.password ?? '', expected.password);
  connection.authenticated = given !== undefined && userOk && passwordOk;
  if (!connection.authenticated) {
    context.events.authenticationFailed(given?.user ?? null, header.clientId);
    context.events.refused(KafkaErrorCode.saslAuthenticationFailed);
  }
  return connection.authenticated
    ? writeSaslAuthenticateResponse(header, KafkaErrorCode.none, null)
    : writeSaslAuthenticateResponse(header, KafkaErrorCode.saslAuthenticationFailed, 'Authentication failed: invalid username or password');
}

function answerMetadata(reader: ByteReader, header: RequestHeader, context: KafkaSessionContext): Buffer {
  const request = readMetadataRequest(reader, header.apiVersion);
  const names = request.topics ?? [...context.offsets.keys()];
  const topics = names.map((name) => ({
    name,
    errorCode: isLegalTopicName(name) ? KafkaErrorCode.none : KafkaErrorCode.invalidTopic,
  }));
  for (const t of topics) if (t.errorCode !== KafkaErrorCode.none) context.events.refused(t.errorCode);
  return writeMetadataResponse(header, { broker: context.broker, clusterId: context.clusterId, topics });
}

function answerInitProducerId(reader: ByteReader, header: RequestHeader, context: KafkaSessionContext): Buffer {
  const request = readInitProducerIdRequest(reader, header.apiVersion);
  if (request.transactionalId !== null) {
    context.events.refused(KafkaErrorCode.transactionalIdAuthorizationFailed);
    return writeInitProducerIdResponse(header, { errorCode: KafkaErrorCode.transactionalIdAuthorizationFailed, producerId: -1n, producerEpoch: -1 });
  }
  return writeInitProducerIdResponse(header, { errorCode: KafkaErrorCode.none, producerId: context.producers.newProducerId(), producerEpoch: 0 });
}

interface PendingPartition {
  readonly topic: string;
  readonly answer: PartitionAnswer;
  /** the new records of this partition, in order; empty for a duplicate or an error */
  readonly records: ProducedRecord[];
  /** batches counted as seen before the commit, to forget if it fails */
  readonly producerIds: bigint[];
}

async function answerProduce(reader: ByteReader, header: RequestHeader, context: KafkaSessionContext): Promise<Buffer | undefined> {
  const request = readProduceRequest(reader, header.apiVersion);
  const validAcks = request.acks === 0 || request.acks === 1 || request.acks === -1;
  const pending: PendingPartition[] = [];
  // shared by the request's partitions: what a request may make the listener hold is bounded by MaxRequestBytes
  const budget = { recordsBytes: context.maxRecordsBytes };
  for (const topicData of request.topics) {
    for (const data of topicData.partitions) {
      pending.push(takePartition(topicData.topic, data.partition, data.records, header, request.transactionalId, validAcks, budget, context));
    }
  }
  const records = pending.flatMap((p) => p.records);
  let failure: string | undefined;
  if (records.length > 0) {
    try {
      await context.commit(records);
    } catch (err) {
      failure = errorMessage(err);
      for (const p of pending) for (const id of p.producerIds) context.producers.forget(p.topic, p.answer.partition, id);
    }
  }
  const answers = pending.map((p) => ({
    topic: p.topic,
    answer: failure !== undefined && p.records.length > 0 ? partitionError(p.answer.partition, KafkaErrorCode.kafkaStorageError, failure) : p.answer,
  }));
  for (const { answer } of answers) if (answer.errorCode !== KafkaErrorCode.none) context.events.refused(answer.errorCode);
  if (request.acks === 0) return undefined;
  const byTopic = new Map<string, PartitionAnswer[]>();
  for (const p of answers) {
    const { answer } = p;
    const list = byTopic.get(p.topic) ?? [];
    list.push(answer);
    byTopic.set(p.topic, list);
  }
  const topics: TopicAnswer[] = [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
  return writeProduceResponse(header, topics);
}

function takePartition(
  topic: string,
  partition: number,
  data: Buffer | null,
  header: RequestHeader,
  transactionalId: string | null,
  validAcks: boolean,
  budget: { recordsBytes: number },
  context: KafkaSessionContext,
): PendingPartition {
  const refuse = (errorCode: number, reason: string): PendingPartition => ({
    topic,
    answer: partitionError(partition, errorCode, reason),
    records: [],
    producerIds: [],
  });
  if (!validAcks) return refuse(KafkaErrorCode.invalidRequiredAcks, 'acks must be 0, 1 or -1');
  if (transactionalId !== null) return refuse(KafkaErrorCode.transactionalIdAuthorizationFailed, 'transactions are not supported');
  if (!isLegalTopicName(topic)) return refuse(KafkaErrorCode.invalidTopic, 'illegal topic name');
  if (partition !== 0) return refuse(KafkaErrorCode.unknownTopicOrPartition, 'every topic has one partition, 0');
  let batches;
  try {
    batches = readRecordBatches(data ?? Buffer.alloc(0), budget.recordsBytes);
  } catch (err) {
    if (!(err instanceof KafkaProtocolError)) throw err;
    if (err.code === KafkaProtocolCodes.unsupportedCompression) {
      const codec = data !== null && data.length > 22 ? codecName(data.readInt16BE(21) & 0x07) : 'unknown';
      context.events.unsupportedCompression(codec, header.clientId);
    } else {
      context.events.refusedBatch(topic, err.code, err.message, header.clientId);
    }
    return refuse(kafkaCodeFor(err), err.message);
  }
  for (const batch of batches) budget.recordsBytes -= batch.chargedBytes;
  const next = context.offsets.get(topic) ?? 0n;
  let offset = next;
  let firstOffset: bigint | undefined;
  const records: ProducedRecord[] = [];
  const producerIds: bigint[] = [];
  // a refusal after earlier batches of the partition were counted as seen: they are not
  // committed either, so their sequence numbers must be forgotten, or their resend would be
  // answered as a duplicate of nothing
  const refuseAll = (errorCode: number, reason: string): PendingPartition => {
    for (const id of producerIds) context.producers.forget(topic, partition, id);
    return refuse(errorCode, reason);
  };
  for (const batch of batches) {
    if (batch.isControl || batch.isTransactional) return refuseAll(KafkaErrorCode.transactionalIdAuthorizationFailed, 'transactions are not supported');
    const check = context.producers.accept(topic, partition, batch, offset);
    if (check.kind === 'fenced') return refuseAll(KafkaErrorCode.invalidProducerEpoch, 'an older producer epoch');
    if (check.kind === 'out-of-order') {
      context.events.refusedBatch(topic, 'OUT_OF_ORDER_SEQUENCE_NUMBER', `sequence ${batch.baseSequence}, expected ${check.expected}`, header.clientId);
      return refuseAll(KafkaErrorCode.outOfOrderSequenceNumber, `expected sequence ${check.expected}`);
    }
    if (check.kind === 'duplicate') {
      firstOffset ??= check.baseOffset;
      continue;
    }
    if (batch.producerId >= 0n) producerIds.push(batch.producerId);
    firstOffset ??= offset;
    for (const record of batch.records) records.push({ ...record, topic });
    offset += BigInt(batch.lastOffsetDelta + 1);
  }
  keepOffset(context.offsets, topic, offset);
  return { topic, answer: { partition, errorCode: KafkaErrorCode.none, baseOffset: firstOffset ?? next, errorMessage: null }, records, producerIds };
}
