// Kafka requests built with the listener's own codec (src/kafka-protocol/writer.ts), for
// tests that talk to the listener over raw TCP: Produce with RecordBatch v2 (whose parts a
// fuzzer can damage before or after the CRC-32C is computed), InitProducerId, and reading
// the answers back.

import { gzipSync } from 'node:zlib';
import { ApiKey, isFlexible } from '../../src/kafka-protocol/api-keys';
import { crc32c } from '../../src/kafka-protocol/crc32c';
import { frame } from '../../src/kafka-protocol/frame';
import { ByteReader } from '../../src/kafka-protocol/reader';
import { ByteWriter } from '../../src/kafka-protocol/writer';

export interface TestRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: readonly { key: string; value: Buffer | null }[];
}

/** The varint records of a batch, uncompressed. */
export function recordsSection(records: readonly TestRecord[]): Buffer {
  const out = new ByteWriter();
  records.forEach((r, i) => {
    const body = new ByteWriter().int8(0).varint(0).varint(i);
    const bytes = (b: Buffer | null): void => {
      if (b === null) body.varint(-1);
      else body.varint(b.length).raw(b);
    };
    bytes(r.key);
    bytes(r.value);
    const headers = r.headers ?? [];
    body.varint(headers.length);
    for (const h of headers) {
      bytes(Buffer.from(h.key, 'utf8'));
      bytes(h.value);
    }
    const encoded = body.toBuffer();
    out.varint(encoded.length).raw(encoded);
  });
  return out.toBuffer();
}

export interface BatchOptions {
  producerId?: bigint;
  producerEpoch?: number;
  baseSequence?: number;
  gzip?: boolean;
  /** the count field, if not the number of records (a lying count) */
  count?: number;
  /** the records section as sent, instead of the encoded records (damaged on purpose); compressed if gzip */
  section?: Buffer;
  /** attributes bits beyond the codec (transactional 0x10, control 0x20) */
  attributeFlags?: number;
}

/** Where a batch's CRC-32C starts: after baseOffset, batchLength, partitionLeaderEpoch and magic. */
export const CRC_AT = 8 + 4 + 4 + 1;

/** One RecordBatch v2 with a correct CRC-32C and length. */
export function recordBatch(records: readonly TestRecord[], o: BatchOptions = {}): Buffer {
  const raw = o.section ?? recordsSection(records);
  const section = o.gzip ? gzipSync(raw) : raw;
  const now = BigInt(Date.now());
  const afterCrc = new ByteWriter()
    .int16((o.gzip ? 1 : 0) | (o.attributeFlags ?? 0))
    .int32(Math.max(0, records.length - 1))
    .int64(now)
    .int64(now)
    .int64(o.producerId ?? -1n)
    .int16(o.producerEpoch ?? -1)
    .int32(o.baseSequence ?? -1)
    .int32(o.count ?? records.length)
    .raw(section)
    .toBuffer();
  const head = new ByteWriter()
    .int64(0n)
    .int32(4 + 1 + 4 + afterCrc.length) // batchLength: from the leader epoch on
    .int32(-1)
    .int8(2)
    .toBuffer();
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32c(afterCrc), 0);
  return Buffer.concat([head, crc, afterCrc]);
}

function requestHeader(apiKey: number, version: number, correlationId: number, clientId: string | null = 'jobcompd-fuzz'): ByteWriter {
  const w = new ByteWriter().int16(apiKey).int16(version).int32(correlationId).string(clientId, false);
  return w.taggedFields(isFlexible(apiKey, version));
}

export interface ProduceOptions {
  version?: number;
  acks?: number;
  transactionalId?: string | null;
  partition?: number;
}

/** A Produce request frame (size in front): one topic, one partition, `records` as its records field. */
export function produceRequest(correlationId: number, topic: string, records: Buffer | null, o: ProduceOptions = {}): Buffer {
  const version = o.version ?? 7;
  const flexible = isFlexible(ApiKey.produce, version);
  const w = requestHeader(ApiKey.produce, version, correlationId)
    .string(o.transactionalId ?? null, flexible)
    .int16(o.acks ?? -1)
    .int32(30_000)
    .arrayLength(1, flexible)
    .string(topic, flexible)
    .arrayLength(1, flexible)
    .int32(o.partition ?? 0);
  if (records === null) w.arrayLength(-1, flexible);
  else if (flexible) w.uvarint(records.length + 1).raw(records);
  else w.int32(records.length).raw(records);
  return frame(w.taggedFields(flexible).taggedFields(flexible).taggedFields(flexible).toBuffer());
}

/** InitProducerId v0 (no transactional id): the answer names a producer id for idempotent batches. */
export function initProducerIdRequest(correlationId: number): Buffer {
  return frame(requestHeader(ApiKey.initProducerId, 0, correlationId).string(null, false).int32(60_000).toBuffer());
}

/** A request of any API key and version with `body` after the header (an unknown API, or garbage after a valid header). */
export function rawRequest(apiKey: number, version: number, correlationId: number, body: Buffer): Buffer {
  return frame(Buffer.concat([requestHeader(apiKey, version, correlationId).toBuffer(), body]));
}

/** The correlation id and, when the answer is an error of the whole request, its code (UNSUPPORTED_VERSION answers). */
export function correlationIdOf(answer: Buffer): number {
  return answer.readInt32BE(0);
}

/** The error code right after the response header v0: UNSUPPORTED_VERSION answers and ApiVersions. */
export function headerErrorCode(answer: Buffer): number {
  return answer.readInt16BE(4);
}

export interface ProducePartitionAnswer {
  topic: string;
  partition: number;
  errorCode: number;
  baseOffset: bigint;
}

/** Every partition answer of a Produce response of `version`. */
export function readProduceResponse(answer: Buffer, version: number): { correlationId: number; partitions: ProducePartitionAnswer[] } {
  const flexible = isFlexible(ApiKey.produce, version);
  const r = new ByteReader(answer);
  const correlationId = r.int32();
  if (flexible) r.taggedFields();
  const partitions: ProducePartitionAnswer[] = [];
  r.array(flexible, 1, () => {
    const topic = r.versionedString(flexible);
    r.array(flexible, 1, () => {
      const partition = r.int32();
      const errorCode = r.int16();
      const baseOffset = r.int64();
      r.int64(); // log append time
      if (version >= 5) r.int64(); // log start offset
      if (version >= 8) {
        r.array(flexible, 1, () => undefined);
        r.versionedNullableString(flexible);
      }
      if (flexible) r.taggedFields();
      partitions.push({ topic, partition, errorCode, baseOffset });
    });
    if (flexible) r.taggedFields();
  });
  return { correlationId, partitions };
}

/** InitProducerId v0's answer: error code, producer id and epoch. */
export function readInitProducerIdResponse(answer: Buffer): { errorCode: number; producerId: bigint; producerEpoch: number } {
  const r = new ByteReader(answer);
  r.int32(); // correlation id
  r.int32(); // throttle time
  return { errorCode: r.int16(), producerId: r.int64(), producerEpoch: r.int16() };
}
