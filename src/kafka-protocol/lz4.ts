// The LZ4 frame format, decode only (docs/kafka-listener.md#compression): Kafka's lz4 codec
// (RecordBatch v2) is one LZ4 frame, as the Java client and librdkafka write it. Frames
// follow each other (skippable frames are skipped); every length and back-reference offset
// is checked before it is used, the output never exceeds `limit`, and the xxHash32
// checksums the frame's flags announce (header, blocks, content) are verified.

import { BoundedOutput, corrupt } from './lz77-output';
import { xxhash32 } from './xxhash32';

const CODEC = 'lz4';
const FRAME_MAGIC = 0x184d2204;
/** 0x184D2A50 to 0x184D2A5F: frames a decoder skips */
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
/** BD's block maximum size, by its bits 6-4 (4 to 7) */
const BLOCK_MAX_BYTES: Record<number, number> = { 4: 64 * 1024, 5: 256 * 1024, 6: 1024 * 1024, 7: 4 * 1024 * 1024 };
const UNCOMPRESSED_BLOCK = 0x80000000;
/** The shortest match: a match's length is stored less this */
const MIN_MATCH = 4;

interface FrameDescriptor {
  readonly independentBlocks: boolean;
  readonly blockChecksums: boolean;
  readonly contentChecksum: boolean;
  readonly contentSize: number | null;
  readonly blockMaxBytes: number;
}

export function lz4Decompress(data: Buffer, limit: number): Buffer {
  if (data.length === 0) throw corrupt(CODEC, 'no frame');
  const output = new BoundedOutput(CODEC, limit, data.length * 4);
  let at = 0;
  while (at < data.length) {
    if (data.length - at < 8) throw corrupt(CODEC, `frame header cut at byte ${at}`);
    const magic = data.readUInt32LE(at);
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      const size = data.readUInt32LE(at + 4);
      if (size > data.length - at - 8) throw corrupt(CODEC, `skippable frame of ${size} bytes with ${data.length - at - 8} left`);
      at += 8 + size;
      continue;
    }
    if (magic !== FRAME_MAGIC) throw corrupt(CODEC, `frame magic ${magic.toString(16)} at byte ${at}`);
    at = decodeFrame(data, at + 4, output, limit);
  }
  return output.result();
}

/** One frame from just after its magic; returns where the next one starts. */
function decodeFrame(data: Buffer, start: number, output: BoundedOutput, limit: number): number {
  const { descriptor, end: blocksStart } = readDescriptor(data, start, limit);
  const frameStart = output.length;
  let at = blocksStart;
  for (;;) {
    if (data.length - at < 4) throw corrupt(CODEC, `block size cut at byte ${at}`);
    const word = data.readUInt32LE(at);
    at += 4;
    if (word === 0) break; // the end mark
    const size = (word & ~UNCOMPRESSED_BLOCK) >>> 0;
    if (size > descriptor.blockMaxBytes) throw corrupt(CODEC, `block of ${size} bytes above the frame's ${descriptor.blockMaxBytes}`);
    const checksumBytes = descriptor.blockChecksums ? 4 : 0;
    if (size + checksumBytes > data.length - at) throw corrupt(CODEC, `block of ${size} bytes with ${data.length - at} left`);
    if (descriptor.blockChecksums) expectChecksum('block', data.subarray(at, at + size), data.readUInt32LE(at + size));
    const blockStart = output.length;
    if ((word & UNCOMPRESSED_BLOCK) !== 0) output.literal(data, at, size);
    else decodeBlock(data, at, at + size, output, descriptor.independentBlocks ? blockStart : frameStart);
    if (output.length - blockStart > descriptor.blockMaxBytes) throw corrupt(CODEC, `block decompresses above the frame's ${descriptor.blockMaxBytes} bytes`);
    at += size + checksumBytes;
  }
  const produced = output.length - frameStart;
  if (descriptor.contentSize !== null && produced !== descriptor.contentSize) {
    throw corrupt(CODEC, `frame produces ${produced} of the ${descriptor.contentSize} bytes it declares`);
  }
  if (descriptor.contentChecksum) {
    if (data.length - at < 4) throw corrupt(CODEC, 'content checksum cut');
    expectChecksum('content', output.result().subarray(frameStart), data.readUInt32LE(at));
    at += 4;
  }
  return at;
}

/** FLG, BD, the optional content size and dictionary id, and the header checksum. */
function readDescriptor(data: Buffer, start: number, limit: number): { descriptor: FrameDescriptor; end: number } {
  const flg = data[start] as number;
  const bd = data[start + 1] as number;
  if (flg >>> 6 !== 1) throw corrupt(CODEC, `frame version ${flg >>> 6}, only 1 exists`);
  if ((flg & 0x02) !== 0 || (bd & 0x8f) !== 0) throw corrupt(CODEC, 'reserved frame descriptor bits set');
  if ((flg & 0x01) !== 0) throw corrupt(CODEC, 'the frame needs a dictionary, which Kafka never uses');
  const blockMaxBytes = BLOCK_MAX_BYTES[(bd >>> 4) & 0x07];
  if (blockMaxBytes === undefined) throw corrupt(CODEC, `block maximum size id ${(bd >>> 4) & 0x07}`);
  const hasContentSize = (flg & 0x08) !== 0;
  const end = start + 2 + (hasContentSize ? 8 : 0);
  if (data.length - end < 1) throw corrupt(CODEC, 'frame descriptor cut');
  let contentSize: number | null = null;
  if (hasContentSize) {
    const declared = data.readBigUInt64LE(start + 2);
    if (declared > BigInt(limit)) throw corrupt(CODEC, `decompresses to more than ${limit} bytes (declares ${declared})`);
    contentSize = Number(declared);
  }
  const headerChecksum = (xxhash32(data.subarray(start, end)) >>> 8) & 0xff;
  if (headerChecksum !== data[end]) throw corrupt(CODEC, `frame header checksum ${String(data[end])}, computed ${headerChecksum}`);
  return {
    descriptor: {
      independentBlocks: (flg & 0x20) !== 0,
      blockChecksums: (flg & 0x10) !== 0,
      contentChecksum: (flg & 0x04) !== 0,
      contentSize,
      blockMaxBytes,
    },
    end: end + 1,
  };
}

function expectChecksum(what: string, bytes: Buffer, stored: number): void {
  const computed = xxhash32(bytes);
  if (computed !== stored) throw corrupt(CODEC, `${what} checksum ${stored.toString(16)}, computed ${computed.toString(16)}`);
}

/** An LZ4 length: 15 in its 4 bits means more bytes follow, each added, until one below 255. */
function extendedLength(data: Buffer, at: number, end: number, base: number): { value: number; at: number } {
  let value = base;
  if (base !== 15) return { value, at };
  for (;;) {
    if (at >= end) throw corrupt(CODEC, 'length cut');
    const byte = data[at++] as number;
    value += byte;
    if (byte !== 255) return { value, at };
  }
}

/** One compressed block, data[start, end): sequences of literals then a match; the last has no match. */
function decodeBlock(data: Buffer, start: number, end: number, output: BoundedOutput, windowStart: number): void {
  let at = start;
  for (;;) {
    if (at >= end) throw corrupt(CODEC, 'block cut before its token');
    const token = data[at++] as number;
    const literals = extendedLength(data, at, end, token >>> 4);
    at = literals.at;
    if (literals.value > end - at) throw corrupt(CODEC, `${literals.value} literals with ${end - at} bytes left`);
    output.literal(data, at, literals.value);
    at += literals.value;
    if (at === end) return;
    if (end - at < 2) throw corrupt(CODEC, 'match offset cut');
    const offset = data.readUInt16LE(at);
    at += 2;
    const match = extendedLength(data, at, end, token & 0x0f);
    at = match.at;
    output.backReference(offset, match.value + MIN_MATCH, windowStart);
  }
}
