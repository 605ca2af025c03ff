// Produce requests through the session, in process, from the golden frames of an
// idempotent librdkafka producer: a retried batch is committed once and answered with its
// first offset; a gap in the sequence is refused and commits nothing; a failed commit is
// answered KAFKA_STORAGE_ERROR and its batch may be sent again; the offsets of ever new
// topics are not kept for ever.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KafkaErrorCode } from '../../src/kafka-protocol/api-keys';
import { readRequestHeader } from '../../src/kafka-protocol/header';
import { readProduceRequest } from '../../src/kafka-protocol/produce';
import { ByteReader } from '../../src/kafka-protocol/reader';
import { crc32c } from '../../src/kafka-protocol/crc32c';
import { RECORD_CHARGE_BYTES } from '../../src/kafka-protocol/record-batch';
import { answerRequest, KEPT_TOPIC_OFFSETS, type ProducedRecord } from '../../src/sources/kafka-session';
import { partitionAnswer, sessionContext } from '../helpers/kafka-session';
import { produceRequest, readProduceResponse, recordBatch } from '../helpers/kafka-requests';

const DIR = join(__dirname, '..', 'fixtures', 'kafka-protocol', 'node-rdkafka-none');
const PRODUCE = readFileSync(join(DIR, readdirSync(DIR).find((f) => f.includes('-produce-')) as string));
/** byte offset in the frame of the batch (one, in this capture) */
const BATCH_AT = (() => {
  const reader = new ByteReader(PRODUCE);
  const header = readRequestHeader(reader);
  const records = readProduceRequest(reader, header.apiVersion).topics[0]?.partitions[0]?.records as Buffer;
  return records.byteOffset - PRODUCE.byteOffset;
})();
/** baseOffset, length, leader epoch, magic | crc | attributes ... producer epoch | baseSequence */
const CRC_AT = BATCH_AT + 8 + 4 + 4 + 1;
const BASE_SEQUENCE_AT = CRC_AT + 4 + 2 + 4 + 8 + 8 + 8 + 2;

/** The capture with its batch's sequence moved by `by`, and its CRC-32C made right again. */
function withSequence(by: number): Buffer {
  const frame = Buffer.from(PRODUCE);
  frame.writeInt32BE(frame.readInt32BE(BASE_SEQUENCE_AT) + by, BASE_SEQUENCE_AT);
  const batchEnd = BATCH_AT + 12 + frame.readInt32BE(BATCH_AT + 8);
  frame.writeUInt32BE(crc32c(frame.subarray(CRC_AT + 4, batchEnd)), CRC_AT);
  return frame;
}

test('a batch sent again after its answer was lost: committed once, answered with its first offset', async () => {
  const committed: ProducedRecord[] = [];
  const ctx = sessionContext(async (records) => void committed.push(...records));
  const first = partitionAnswer(await answerRequest(PRODUCE, ctx));
  const count = committed.length;
  const again = partitionAnswer(await answerRequest(PRODUCE, ctx));
  expect(count).toBeGreaterThan(0);
  expect(committed).toHaveLength(count);
  expect(again).toEqual(first);
  expect(first.errorCode).toBe(KafkaErrorCode.none);
});

test('a gap in the sequence: OUT_OF_ORDER_SEQUENCE_NUMBER, nothing committed', async () => {
  const committed: ProducedRecord[] = [];
  const ctx = sessionContext(async (records) => void committed.push(...records));
  await answerRequest(PRODUCE, ctx);
  const count = committed.length;
  expect(partitionAnswer(await answerRequest(withSequence(100), ctx)).errorCode).toBe(KafkaErrorCode.outOfOrderSequenceNumber);
  expect(committed).toHaveLength(count);
  // the next batch in sequence is taken
  const records = committed.length;
  expect(partitionAnswer(await answerRequest(withSequence(records), ctx)).errorCode).toBe(KafkaErrorCode.none);
  expect(committed).toHaveLength(2 * count);
});

test('a commit that fails is answered KAFKA_STORAGE_ERROR; the same batch sent again is committed', async () => {
  let fail = true;
  const committed: ProducedRecord[] = [];
  const ctx = sessionContext(async (records) => {
    if (fail) throw new Error('disk full');
    committed.push(...records);
  });
  expect(partitionAnswer(await answerRequest(PRODUCE, ctx)).errorCode).toBe(KafkaErrorCode.kafkaStorageError);
  fail = false;
  expect(partitionAnswer(await answerRequest(PRODUCE, ctx)).errorCode).toBe(KafkaErrorCode.none);
  expect(committed.length).toBeGreaterThan(0);
});

test('a client that produces to ever new topics: the listener keeps the offsets of at most KEPT_TOPIC_OFFSETS topics', async () => {
  const committed: ProducedRecord[] = [];
  const ctx = sessionContext(async (records) => void committed.push(...records));
  const topics = KEPT_TOPIC_OFFSETS + 50;
  for (let i = 0; i < topics; i++) {
    const answer = await answerRequest(produceRequest(i, `topic-${i}`, recordBatch([{ key: null, value: Buffer.from(`{"jobid":${i}}`) }])).subarray(4), ctx);
    expect(readProduceResponse(answer as Buffer, 7).partitions[0]?.errorCode).toBe(KafkaErrorCode.none);
  }
  expect(committed).toHaveLength(topics);
  expect(ctx.offsets.size).toBe(KEPT_TOPIC_OFFSETS);
  // the most recent topics are the ones kept
  expect(ctx.offsets.has(`topic-${topics - 1}`)).toBe(true);
  expect(ctx.offsets.has('topic-0')).toBe(false);
});

test('batches that each decompress within the limit but together beyond it: CORRUPT_MESSAGE, nothing committed', async () => {
  const committed: ProducedRecord[] = [];
  const ctx = sessionContext(async (records) => void committed.push(...records));
  // 8,192 records of 7 bytes (empty value, no key) per batch: 57 KB each (charged 580 KB), a few hundred bytes gzipped
  const section = Buffer.alloc(8_192 * 7);
  for (let i = 0; i < section.length; i += 7) section.set([0x0c, 0, 0, 0, 0x01, 0, 0], i);
  const batch = recordBatch(Array.from({ length: 8_192 }, () => ({ key: null, value: Buffer.alloc(0) })), { section, gzip: true });
  const batches = Math.ceil(ctx.maxRecordsBytes / section.length) + 1;
  expect(batch.length * batches).toBeLessThan(ctx.maxRecordsBytes / 10);
  const answer = await answerRequest(produceRequest(1, 'bomb', Buffer.concat(Array<Buffer>(batches).fill(batch))).subarray(4), ctx);
  expect(readProduceResponse(answer as Buffer, 7).partitions[0]?.errorCode).toBe(KafkaErrorCode.corruptMessage);
  expect(committed).toHaveLength(0);
  // within the limit, the same batch is taken
  const one = await answerRequest(produceRequest(2, 'bomb', batch).subarray(4), ctx);
  expect(readProduceResponse(one as Buffer, 7).partitions[0]?.errorCode).toBe(KafkaErrorCode.none);
  expect(committed).toHaveLength(8_192);
});

test('a request of more tiny records than MaxRequestBytes can hold (each charged RECORD_CHARGE_BYTES): CORRUPT_MESSAGE, nothing committed', async () => {
  const committed: ProducedRecord[] = [];
  const ctx = sessionContext(async (records) => void committed.push(...records));
  const n = Math.floor(ctx.maxRecordsBytes / (7 + RECORD_CHARGE_BYTES)) + 1;
  const section = Buffer.alloc(n * 7);
  for (let i = 0; i < section.length; i += 7) section.set([0x0c, 0, 0, 0, 0x01, 0, 0], i);
  const batch = recordBatch(Array.from({ length: n }, () => ({ key: null, value: Buffer.alloc(0) })), { section });
  expect(batch.length).toBeLessThan(ctx.maxRecordsBytes / 5);
  const answer = await answerRequest(produceRequest(1, 'tiny', batch).subarray(4), ctx);
  expect(readProduceResponse(answer as Buffer, 7).partitions[0]?.errorCode).toBe(KafkaErrorCode.corruptMessage);
  expect(committed).toHaveLength(0);
});
