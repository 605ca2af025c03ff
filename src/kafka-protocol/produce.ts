// Produce (key 0), v3-v11: the request's topics and partitions with their records fields
// still raw (record-batch.ts reads them), and the response with one answer per partition.

import { type RequestHeader, responseWriter } from './header';
import type { ByteReader } from './reader';

export interface PartitionData {
  readonly partition: number;
  /** the records field: zero or more RecordBatch v2, null if the client sent none */
  readonly records: Buffer | null;
}

export interface TopicData {
  readonly topic: string;
  readonly partitions: readonly PartitionData[];
}

export interface ProduceRequest {
  readonly transactionalId: string | null;
  /** 0: no answer; 1: the leader; -1: all in-sync replicas (for jobcompd: committed, as for 1) */
  readonly acks: number;
  readonly timeoutMs: number;
  readonly topics: readonly TopicData[];
}

export function readProduceRequest(reader: ByteReader, version: number): ProduceRequest {
  const flexible = version >= 9;
  const transactionalId = reader.versionedNullableString(flexible);
  const acks = reader.int16();
  const timeoutMs = reader.int32();
  const topics = reader.array(flexible, 2, () => {
    const topic = reader.versionedString(flexible);
    const partitions = reader.array(flexible, 5, () => {
      const partition = reader.int32();
      const records = flexible ? reader.compactNullableBytes() : reader.nullableBytes();
      if (flexible) reader.taggedFields();
      return { partition, records };
    });
    if (flexible) reader.taggedFields();
    return { topic, partitions };
  });
  if (flexible) reader.taggedFields();
  return { transactionalId, acks, timeoutMs, topics };
}

export interface PartitionAnswer {
  readonly partition: number;
  readonly errorCode: number;
  /** the offset given to the first record; -1 on error */
  readonly baseOffset: bigint;
  readonly errorMessage: string | null;
}

export interface TopicAnswer {
  readonly topic: string;
  readonly partitions: readonly PartitionAnswer[];
}

export function writeProduceResponse(header: RequestHeader, topics: readonly TopicAnswer[]): Buffer {
  const version = header.apiVersion;
  const flexible = version >= 9;
  const writer = responseWriter(header);
  writer.array(topics, flexible, (topic) => {
    writer.string(topic.topic, flexible);
    writer.array(topic.partitions, flexible, (p) => {
      writer.int32(p.partition).int16(p.errorCode).int64(p.baseOffset);
      writer.int64(-1n); // log append time: CreateTime topics
      if (version >= 5) writer.int64(0n); // log start offset
      if (version >= 8) {
        writer.arrayLength(0, flexible); // record errors
        writer.string(p.errorMessage, flexible);
      }
      writer.taggedFields(flexible);
    });
    writer.taggedFields(flexible);
  });
  writer.int32(0); // throttle time
  writer.taggedFields(flexible);
  return writer.toBuffer();
}
