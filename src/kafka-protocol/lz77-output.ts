// The output side shared by the snappy and lz4 decoders (docs/kafka-listener.md#compression):
// literals and back-references appended to one buffer that never grows beyond the batch
// limit, every offset checked against the bytes already written before it is followed.

import { KafkaProtocolCodes, KafkaProtocolError } from '../errors';

/** Below this many bytes a loop is faster than a native copy (most literals and matches are short). */
const SHORT = 64;

export function corrupt(codec: string, what: string): KafkaProtocolError {
  return new KafkaProtocolError(KafkaProtocolCodes.malformed, `${codec}: ${what}`);
}

export class BoundedOutput {
  private buffer: Buffer;
  private written = 0;

  /** `initialCapacity` is only a hint: it is clamped to `limit`, and the buffer doubles as bytes arrive. */
  constructor(
    private readonly codec: string,
    private readonly limit: number,
    initialCapacity: number,
  ) {
    this.buffer = Buffer.allocUnsafe(Math.max(0, Math.min(limit, initialCapacity)));
  }

  get length(): number {
    return this.written;
  }

  /** Appends `input[start, start + count)`; the caller has checked that the input holds them. */
  literal(input: Buffer, start: number, count: number): void {
    this.reserve(count);
    const out = this.buffer;
    if (count < SHORT) {
      for (let i = 0; i < count; i++) out[this.written++] = input[start + i] as number;
      return;
    }
    out.set(input.subarray(start, start + count), this.written);
    this.written += count;
  }

  /**
   * Appends `count` bytes starting `offset` bytes back; `windowStart` is the first output
   * byte a reference may reach (a block's start for independent blocks). Overlapping copies
   * (offset < count) repeat the last `offset` bytes, as both formats define.
   */
  backReference(offset: number, count: number, windowStart: number): void {
    if (offset <= 0 || offset > this.written - windowStart) {
      throw corrupt(this.codec, `back-reference offset ${offset} with ${this.written - windowStart} bytes before it`);
    }
    this.reserve(count);
    const out = this.buffer;
    if (count < SHORT) {
      // byte by byte, which also repeats an overlapping source as the formats define
      for (let from = this.written - offset, end = this.written + count; this.written < end; ) out[this.written++] = out[from++] as number;
      return;
    }
    // each pass copies bytes already final; the source may step back a whole number of periods
    let distance = offset;
    let left = count;
    while (left > 0) {
      const n = Math.min(distance, left);
      out.copyWithin(this.written, this.written - distance, this.written - distance + n);
      this.written += n;
      left -= n;
      distance *= 2;
    }
  }

  /** The bytes written, without copying. */
  result(): Buffer {
    return this.buffer.subarray(0, this.written);
  }

  private reserve(count: number): void {
    const needed = this.written + count;
    if (needed > this.limit) throw corrupt(this.codec, `decompresses to more than ${this.limit} bytes`);
    if (needed <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.min(this.limit, Math.max(needed, this.buffer.length * 2, 1024)));
    this.buffer.copy(grown, 0, 0, this.written);
    this.buffer = grown;
  }
}
