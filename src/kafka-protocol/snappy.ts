// Snappy, decode only (docs/kafka-listener.md#compression). Kafka's Java client writes the
// xerial framing of snappy-java (a 16-byte header, then blocks of [INT32 big-endian length]
// [raw snappy]); librdkafka writes one raw snappy block. Both are read. Every length and
// back-reference offset is checked before it is used, and the output never exceeds `limit`.

import { BoundedOutput, corrupt } from './lz77-output';

const CODEC = 'snappy';
/** 0x82 'SNAPPY' 0: a raw block cannot start so (its first element would be a back-reference). */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
/** The magic, then INT32 version and INT32 oldest compatible version. */
const XERIAL_HEADER_BYTES = XERIAL_MAGIC.length + 8;
/**
 * No element produces more than 64 bytes from 3 of input (a copy with a 2-byte offset), so a
 * block declaring more than this many times its size lies: refused before any allocation.
 */
const MAX_EXPANSION = 22;

export function snappyDecompress(data: Buffer, limit: number): Buffer {
  if (data.length >= XERIAL_MAGIC.length && data.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) {
    return decodeXerial(data, limit);
  }
  const output = new BoundedOutput(CODEC, limit, declaredLength(data, 0, data.length, limit).length);
  decodeBlock(data, 0, data.length, output, limit);
  return output.result();
}

function decodeXerial(data: Buffer, limit: number): Buffer {
  if (data.length < XERIAL_HEADER_BYTES) throw corrupt(CODEC, `xerial header cut at ${data.length} bytes`);
  const output = new BoundedOutput(CODEC, limit, data.length * 2);
  let at = XERIAL_HEADER_BYTES;
  while (at < data.length) {
    if (data.length - at < 4) throw corrupt(CODEC, `xerial block length cut at byte ${at}`);
    const size = data.readInt32BE(at);
    at += 4;
    if (size < 0 || size > data.length - at) throw corrupt(CODEC, `xerial block of ${size} bytes with ${data.length - at} left`);
    decodeBlock(data, at, at + size, output, limit);
    at += size;
  }
  return output.result();
}

/** The block's preamble: its uncompressed length (a little-endian base-128 varint of at most 32 bits). */
function declaredLength(data: Buffer, start: number, end: number, limit: number): { length: number; bodyStart: number } {
  let length = 0;
  let at = start;
  for (let shift = 0; ; shift += 7) {
    if (at >= end) throw corrupt(CODEC, 'uncompressed length cut');
    if (shift > 28) throw corrupt(CODEC, 'uncompressed length longer than 32 bits');
    const byte = data[at++] as number;
    length += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) break;
  }
  if (length > limit) throw corrupt(CODEC, `decompresses to more than ${limit} bytes (declares ${length})`);
  if (length > (end - start) * MAX_EXPANSION) throw corrupt(CODEC, `declares ${length} bytes from ${end - start}`);
  return { length, bodyStart: at };
}

/** One raw snappy block, data[start, end), appended to `output`. */
function decodeBlock(data: Buffer, start: number, end: number, output: BoundedOutput, limit: number): void {
  const { length, bodyStart } = declaredLength(data, start, end, limit);
  const blockStart = output.length;
  const blockEnd = blockStart + length;
  let at = bodyStart;
  const need = (n: number, what: string): void => {
    if (end - at < n) throw corrupt(CODEC, `${what} cut at byte ${at - start} of a ${end - start}-byte block`);
  };
  const fits = (n: number): void => {
    if (output.length + n > blockEnd) throw corrupt(CODEC, `block produces more than the ${length} bytes it declares`);
  };
  while (at < end) {
    const tag = data[at++] as number;
    const kind = tag & 0x03;
    if (kind === 0) {
      // a literal: its length - 1 in the tag's upper 6 bits, or in the 1-4 bytes after it
      let count = tag >>> 2;
      if (count >= 60) {
        const bytes = count - 59;
        need(bytes, 'literal length');
        count = data.readUIntLE(at, bytes);
        at += bytes;
      }
      count += 1;
      need(count, 'literal');
      fits(count);
      output.literal(data, at, count);
      at += count;
      continue;
    }
    // a copy: 1, 2 or 4 offset bytes after the tag
    const offsetBytes = kind === 1 ? 1 : kind === 2 ? 2 : 4;
    need(offsetBytes, 'copy offset');
    let count: number;
    let offset: number;
    if (kind === 1) {
      count = 4 + ((tag >>> 2) & 0x07);
      offset = ((tag >>> 5) << 8) | (data[at] as number);
    } else {
      count = 1 + (tag >>> 2);
      offset = data.readUIntLE(at, offsetBytes);
    }
    at += offsetBytes;
    fits(count);
    output.backReference(offset, count, blockStart);
  }
  if (output.length !== blockEnd) throw corrupt(CODEC, `block produces ${output.length - blockStart} of the ${length} bytes it declares`);
}
