// Metadata (key 3), v0-v12. jobcompd is the only broker of its listener: it leads the one
// partition of every topic a client asks about (docs/kafka-listener.md#metadata).

import { createHash } from 'node:crypto';
import { KafkaErrorCode } from './api-keys';
import { type RequestHeader, responseWriter } from './header';
import type { ByteReader } from './reader';

const UUID_BYTES = 16;
/** Kafka's "no authorized operations were asked for". */
const OPERATIONS_OMITTED = -2147483648;

export interface MetadataRequest {
  /** null: all topics */
  readonly topics: readonly string[] | null;
}

export function readMetadataRequest(reader: ByteReader, version: number): MetadataRequest {
  const flexible = version >= 9;
  const count = reader.arrayLength(flexible);
  const topics: string[] = [];
  for (let i = 0; i < (count ?? 0); i++) {
    if (version >= 10) reader.bytes(UUID_BYTES, 'topic id');
    const name = reader.versionedNullableString(flexible);
    if (name !== null) topics.push(name);
    if (flexible) reader.taggedFields();
  }
  if (version >= 4) reader.bool(); // allow auto topic creation: every topic exists here
  if (version >= 8 && version <= 10) reader.bool();
  if (version >= 8) reader.bool();
  if (flexible) reader.taggedFields();
  // v0 says "all topics" with an empty list, later versions with null
  return { topics: count === null || (version === 0 && count === 0) ? null : topics };
}

export interface BrokerAddress {
  readonly nodeId: number;
  readonly host: string;
  readonly port: number;
}

export interface MetadataAnswer {
  readonly broker: BrokerAddress;
  readonly clusterId: string;
  readonly topics: readonly { readonly name: string; readonly errorCode: number }[];
}

/** A topic's id: stable for its name, never the all-zero "unknown". */
export function topicId(name: string): Buffer {
  const id = createHash('sha256').update(name).digest().subarray(0, UUID_BYTES);
  id[0] = (id[0] ?? 0) | 1;
  return id;
}

export function writeMetadataResponse(header: RequestHeader, answer: MetadataAnswer): Buffer {
  const version = header.apiVersion;
  const flexible = version >= 9;
  const { broker } = answer;
  const writer = responseWriter(header);
  if (version >= 3) writer.int32(0); // throttle time
  writer.array([broker], flexible, (b) => {
    writer.int32(b.nodeId).string(b.host, flexible).int32(b.port);
    if (version >= 1) writer.string(null, flexible); // rack
    writer.taggedFields(flexible);
  });
  if (version >= 2) writer.string(answer.clusterId, flexible);
  if (version >= 1) writer.int32(broker.nodeId); // controller
  writer.array(answer.topics, flexible, (topic) => {
    writer.int16(topic.errorCode).string(topic.name, flexible);
    if (version >= 10) writer.raw(topicId(topic.name));
    if (version >= 1) writer.bool(false); // internal
    const partitions = topic.errorCode === KafkaErrorCode.none ? [0] : [];
    writer.array(partitions, flexible, (partition) => {
      writer.int16(KafkaErrorCode.none).int32(partition).int32(broker.nodeId);
      if (version >= 7) writer.int32(0); // leader epoch
      writer.array([broker.nodeId], flexible, (id) => writer.int32(id)); // replicas
      writer.array([broker.nodeId], flexible, (id) => writer.int32(id)); // in sync
      if (version >= 5) writer.arrayLength(0, flexible); // offline
      writer.taggedFields(flexible);
    });
    if (version >= 8) writer.int32(OPERATIONS_OMITTED);
    writer.taggedFields(flexible);
  });
  if (version >= 8 && version <= 10) writer.int32(OPERATIONS_OMITTED);
  writer.taggedFields(flexible);
  return writer.toBuffer();
}

const LEGAL_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

/** Kafka's rule for topic names. */
export function isLegalTopicName(name: string): boolean {
  return LEGAL_TOPIC.test(name) && name !== '.' && name !== '..';
}
