// The decode-only snappy and lz4 of the listener (docs/kafka-listener.md#compression): the
// records sections real clients compressed (test/fixtures/kafka-protocol/), frames of the lz4
// reference encoder (test/fixtures/compression/), and hostile input: cut, damaged, lying
// about lengths and offsets, or decompressing beyond the limit. Every failure is
// E_KAFKA_MALFORMED (answered CORRUPT_MESSAGE), never another exception or a large allocation.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KafkaErrorCode } from '../../src/kafka-protocol/api-keys';
import { CompressionCodec, decompress } from '../../src/kafka-protocol/compression';
import { readRequestHeader } from '../../src/kafka-protocol/header';
import { lz4Decompress } from '../../src/kafka-protocol/lz4';
import { readProduceRequest } from '../../src/kafka-protocol/produce';
import { ByteReader } from '../../src/kafka-protocol/reader';
import { BATCH_HEADER_BYTES, readRecordBatches } from '../../src/kafka-protocol/record-batch';
import { snappyDecompress } from '../../src/kafka-protocol/snappy';
import { xxhash32 } from '../../src/kafka-protocol/xxhash32';
import { crc32c } from '../../src/kafka-protocol/crc32c';
import { answerRequest, type ProducedRecord } from '../../src/sources/kafka-session';
import { fixtureMessages } from '../fixtures/kafka-protocol/messages';
import { partitionAnswer, sessionContext } from '../helpers/kafka-session';

const CAPTURES = join(__dirname, '..', 'fixtures', 'kafka-protocol');
const LZ4_FRAMES = join(__dirname, '..', 'fixtures', 'compression');
const LIMIT = 1024 * 1024;
const MALFORMED = 'E_KAFKA_MALFORMED';

function produceFrame(capture: string): Buffer {
  const name = readdirSync(join(CAPTURES, capture)).find((f) => f.includes('-produce-'));
  return readFileSync(join(CAPTURES, capture, name as string));
}

/** The one batch of a capture's produce request: its compression and its records section as sent. */
function capturedBatch(capture: string): { codec: number; compressed: Buffer; count: number } {
  const reader = new ByteReader(produceFrame(capture));
  const header = readRequestHeader(reader);
  const records = readProduceRequest(reader, header.apiVersion).topics[0]?.partitions[0]?.records as Buffer;
  return { codec: records.readInt16BE(21) & 0x07, compressed: records.subarray(BATCH_HEADER_BYTES), count: records.readInt32BE(BATCH_HEADER_BYTES - 4) };
}

/** The records section the batch holds, decompressed by the listener's path. */
function recordsOf(capture: string): Buffer {
  const { codec, compressed } = capturedBatch(capture);
  return decompress(codec, compressed, LIMIT);
}

/** What a decoder does with `data`: the bytes, or the code it failed with (anything else escapes the test). */
function outcome(decode: (data: Buffer, limit: number) => Buffer, data: Buffer, limit = LIMIT): Buffer | string {
  try {
    return decode(data, limit);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'string') throw err;
    return code;
  }
}

/** Bytes compared as a whole (jest's toEqual walks a large Buffer byte by byte, for seconds). */
function expectBytes(got: Buffer | string, want: Buffer): void {
  if (typeof got === 'string') throw new Error(`decoding failed: ${got}`);
  let differsAt = -1;
  for (let i = 0; i < Math.max(got.length, want.length) && differsAt < 0; i++) if (got[i] !== want[i]) differsAt = i;
  expect({ length: got.length, differsAt }).toEqual({ length: want.length, differsAt: -1 });
}

function jobsText(): Buffer {
  return Buffer.from(Array.from({ length: 2000 }, (_, i) => `{"jobid":${i + 1},"state":"COMPLETED","partition":"debug"}\n`).join(''));
}

/** An LZ4 frame header: magic, FLG, BD, optional content size, and its xxHash32 checksum byte. */
function lz4Header(flg: number, bd: number, contentSize?: bigint): Buffer {
  const descriptor = Buffer.alloc(contentSize === undefined ? 2 : 10);
  descriptor[0] = flg | (contentSize === undefined ? 0 : 0x08);
  descriptor[1] = bd;
  if (contentSize !== undefined) descriptor.writeBigUInt64LE(contentSize, 2);
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(0x184d2204);
  return Buffer.concat([magic, descriptor, Buffer.from([(xxhash32(descriptor) >>> 8) & 0xff])]);
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** A frame of independent 64 KB blocks, no checksums, with the given raw blocks and an end mark. */
function lz4Frame(...blocks: Buffer[]): Buffer {
  return Buffer.concat([lz4Header(0x60, 0x40), ...blocks.flatMap((b) => [u32le(b.length), b]), u32le(0)]);
}

function snappyLength(n: number): Buffer {
  const out: number[] = [];
  for (let v = n; ; v = Math.floor(v / 128)) {
    if (v < 128) {
      out.push(v);
      break;
    }
    out.push((v % 128) | 0x80);
  }
  return Buffer.from(out);
}

describe('xxHash32', () => {
  test.each([
    ['', 0x02cc5d05],
    ['a', 0x550d7456],
    ['abc', 0x32d153ff],
    ['Nobody inspects the spammish repetition', 0xe2293b2f],
  ])('%j', (text, expected) => {
    expect(xxhash32(Buffer.from(text))).toBe(expected);
  });
});

describe('what real clients compressed', () => {
  test.each([
    ['java-snappy', CompressionCodec.snappy],
    ['node-rdkafka-snappy', CompressionCodec.snappy],
    ['java-lz4', CompressionCodec.lz4],
  ])('%s: the records section decodes to the records produced', (capture, codec) => {
    expect(capturedBatch(capture).codec).toBe(codec);
    const batches = readRecordBatches(readProduceRecords(capture), LIMIT);
    expect(batches.flatMap((b) => b.records).map((r) => ({ key: r.key, value: r.value, headers: r.headers }))).toEqual(
      fixtureMessages(capture).map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
    );
  });

  test('the Java client frames snappy (xerial), librdkafka does not: both are read', () => {
    const xerial = Buffer.from([0x82, ...Buffer.from('SNAPPY'), 0]);
    expect(capturedBatch('java-snappy').compressed.subarray(0, 8)).toEqual(xerial);
    expect(capturedBatch('node-rdkafka-snappy').compressed.subarray(0, 8)).not.toEqual(xerial);
  });

  test('xerial blocks follow each other: two copies of the Java block decode to the records twice', () => {
    const { compressed } = capturedBatch('java-snappy');
    const block = compressed.subarray(16);
    expect(block.readInt32BE(0)).toBe(block.length - 4); // the capture holds one block
    const twice = Buffer.concat([compressed.subarray(0, 16), block, block]);
    expect(snappyDecompress(twice, LIMIT)).toEqual(Buffer.concat([recordsOf('java-snappy'), recordsOf('java-snappy')]));
  });
});

function readProduceRecords(capture: string): Buffer {
  const reader = new ByteReader(produceFrame(capture));
  const header = readRequestHeader(reader);
  return readProduceRequest(reader, header.apiVersion).topics[0]?.partitions[0]?.records as Buffer;
}

describe('frames of the lz4 reference encoder', () => {
  test.each(readdirSync(LZ4_FRAMES).filter((f) => f.endsWith('.lz4')))('%s', (name) => {
    expectBytes(lz4Decompress(readFileSync(join(LZ4_FRAMES, name)), LIMIT), jobsText());
  });

  test('frames one after another, skippable frames skipped', () => {
    const frame = readFileSync(join(LZ4_FRAMES, 'jobs-default.lz4'));
    const skippable = Buffer.concat([u32le(0x184d2a53), u32le(5), Buffer.from('skip!')]);
    expectBytes(lz4Decompress(Buffer.concat([skippable, frame, frame]), LIMIT), Buffer.concat([jobsText(), jobsText()]));
  });

  test('an uncompressed block (the high bit of its size) is taken as it is', () => {
    const raw = Buffer.from('stored as it is');
    expect(lz4Decompress(Buffer.concat([lz4Header(0x60, 0x40), u32le(raw.length | 0x80000000), raw, u32le(0)]), LIMIT)).toEqual(raw);
  });

  test('a changed byte under a block or content checksum is refused', () => {
    for (const name of ['jobs-default.lz4', 'jobs-64k-linked-checksums-size.lz4']) {
      const frame = Buffer.from(readFileSync(join(LZ4_FRAMES, name)));
      frame[frame.length - 100] = (frame[frame.length - 100] as number) ^ 0x01; // a literal of the last block
      expect(outcome(lz4Decompress, frame)).toBe(MALFORMED);
    }
  });
});

describe('hostile input', () => {
  const inputs: [string, (data: Buffer, limit: number) => Buffer, Buffer][] = [
    ['snappy (xerial, Java)', snappyDecompress, capturedBatch('java-snappy').compressed],
    ['snappy (raw, librdkafka)', snappyDecompress, capturedBatch('node-rdkafka-snappy').compressed],
    ['lz4 (Java)', lz4Decompress, capturedBatch('java-lz4').compressed],
    ['lz4 (reference encoder)', lz4Decompress, readFileSync(join(LZ4_FRAMES, 'jobs-64k-linked-checksums-size.lz4')).subarray(0, 2000)],
  ];

  test.each(inputs)('%s: every cut is refused', (_name, decode, data) => {
    const whole = outcome(decode, data);
    for (let length = 0; length < data.length; length++) {
      const got = outcome(decode, data.subarray(0, length));
      // a xerial stream cut right after its header is a stream of no blocks
      if (length === 16 && data[0] === 0x82) expect(got).toEqual(Buffer.alloc(0));
      else if (whole !== MALFORMED) expect({ length, got }).toEqual({ length, got: MALFORMED });
    }
  });

  test.each(inputs)('%s: any one byte changed decodes or is refused, within the limit', (_name, decode, data) => {
    const limit = 64 * 1024;
    for (let at = 0; at < Math.min(data.length, 600); at++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const damaged = Buffer.from(data);
        damaged[at] = (damaged[at] as number) ^ flip;
        const got = outcome(decode, damaged, limit);
        if (typeof got === 'string') expect(got).toBe(MALFORMED);
        else expect(got.length).toBeLessThanOrEqual(limit);
      }
    }
  });

  test('snappy: a back-reference before the output, or of offset 0, is refused', () => {
    // 4 bytes: literal "ab", then a 2-byte-offset copy of 2 bytes from 3 back (only 2 written)
    expect(outcome(snappyDecompress, Buffer.from([4, 0x04, 0x61, 0x62, 0x06, 3, 0]))).toBe(MALFORMED);
    expect(outcome(snappyDecompress, Buffer.from([4, 0x04, 0x61, 0x62, 0x06, 0, 0]))).toBe(MALFORMED);
    expect(outcome(snappyDecompress, Buffer.from([4, 0x04, 0x61, 0x62, 0x06, 2, 0]))).toEqual(Buffer.from('abab'));
  });

  test('snappy: a block producing more or fewer bytes than it declares is refused', () => {
    expect(outcome(snappyDecompress, Buffer.from([3, 0x04, 0x61, 0x62, 0x06, 2, 0]))).toBe(MALFORMED);
    expect(outcome(snappyDecompress, Buffer.from([5, 0x04, 0x61, 0x62, 0x06, 2, 0]))).toBe(MALFORMED);
  });

  test('lz4: a back-reference into the block before, in a frame of independent blocks, is refused', () => {
    const first = Buffer.from([0x40, ...Buffer.from('abcd')]); // 4 literals, end of block
    // 1 literal "x", 4 bytes from 4 back (reaching into the block before), then an empty last sequence
    const copy = Buffer.from([0x10, 0x78, 0x04, 0x00, 0x00]);
    expect(outcome(lz4Decompress, lz4Frame(first, copy))).toBe(MALFORMED);
    // in a frame of linked blocks (FLG without B.Indep) the same reference is the bytes before
    const linked = (...blocks: Buffer[]): Buffer => Buffer.concat([lz4Header(0x40, 0x40), ...blocks.flatMap((b) => [u32le(b.length), b]), u32le(0)]);
    expect(outcome(lz4Decompress, linked(first, copy))).toEqual(Buffer.from('abcdxbcdx'));
    // a block must end with literals, never after a match
    expect(outcome(lz4Decompress, linked(first, copy.subarray(0, 4)))).toBe(MALFORMED);
    expect(outcome(lz4Decompress, lz4Frame(Buffer.from([0x1f, 0x61, 0x00, 0x00, 0x00])))).toBe(MALFORMED); // offset 0
  });

  test('decompression bombs end at the limit, before their memory is taken', () => {
    const limit = 1024 * 1024;
    const before = process.memoryUsage().arrayBuffers;
    // snappy: one literal, then copies of 64 bytes from 1 back: 21 times its size, past the limit
    const copies = Buffer.alloc(3 * 20_000, Buffer.from([0xfe, 0x01, 0x00]));
    const snappyBomb = Buffer.concat([snappyLength(1 + 64 * 20_000), Buffer.from([0x00, 0x61]), copies]);
    expect(outcome(snappyDecompress, snappyBomb, limit)).toBe(MALFORMED);
    expectBytes(outcome(snappyDecompress, snappyBomb, 2 * limit), Buffer.alloc(1 + 64 * 20_000, 'a'));
    // snappy: a length it cannot produce (4 GB from 6 bytes), refused before allocating
    expect(outcome(snappyDecompress, Buffer.concat([snappyLength(0xffffffff), Buffer.from([0x00, 0x61])]), 0xffffffff)).toBe(MALFORMED);
    // lz4: one literal then a match of 255 * 40,000 bytes from 1 back
    const lengths = Buffer.alloc(40_000, 0xff);
    const lz4Bomb = lz4Frame(Buffer.concat([Buffer.from([0x1f, 0x61, 0x01, 0x00]), lengths, Buffer.from([0x00, 0x00])]));
    expect(outcome(lz4Decompress, lz4Bomb, limit)).toBe(MALFORMED);
    // lz4: a content size of 2^63 declared
    expect(outcome(lz4Decompress, Buffer.concat([lz4Header(0x60, 0x40, 1n << 63n), u32le(0)]), limit)).toBe(MALFORMED);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * limit);
  });

  test.each([
    ['gzip', 'java-gzip'],
    ['snappy', 'java-snappy'],
    ['lz4', 'java-lz4'],
  ])('%s: a batch decompressing beyond the limit is answered CORRUPT_MESSAGE, nothing committed', async (_codec, capture) => {
    const answer = await produceAnswer(produceFrame(capture), recordsOf(capture).length - 1);
    expect(answer).toEqual({ errorCode: KafkaErrorCode.corruptMessage, committed: 0, unsupported: [] });
  });
});

test('a codec Kafka does not define (5 to 7) is answered UNSUPPORTED_COMPRESSION_TYPE, and the event names it', async () => {
  const frame = Buffer.from(produceFrame('java-none'));
  const records = readProduceRecords('java-none');
  const batchAt = frame.indexOf(records);
  const crcAt = batchAt + 17;
  frame.writeInt16BE(frame.readInt16BE(crcAt + 4) | 0x05, crcAt + 4);
  frame.writeUInt32BE(crc32c(frame.subarray(crcAt + 4, batchAt + records.length)), crcAt);
  expect(await produceAnswer(frame, LIMIT)).toEqual({ errorCode: KafkaErrorCode.unsupportedCompressionType, committed: 0, unsupported: ['unknown codec 5'] });
});

/** The one partition's error code of a Produce request answered by the session, what it committed, and the codecs it reported unsupported. */
async function produceAnswer(frame: Buffer, maxRecordsBytes: number): Promise<{ errorCode: number; committed: number; unsupported: string[] }> {
  const committed: ProducedRecord[] = [];
  const unsupported: string[] = [];
  const context = sessionContext(async (records) => void committed.push(...records), { maxRecordsBytes, events: { unsupportedCompression: (codec) => void unsupported.push(codec) } });
  const { errorCode } = partitionAnswer(await answerRequest(frame, context));
  return { errorCode, committed: committed.length, unsupported };
}
