// Cuts Kafka request frames (INT32 size, then that many bytes) out of a connection's
// chunks. The size is checked before any byte of the frame is kept, so a client cannot
// make the daemon buffer more than MaxRequestBytes for one request.

import { KafkaProtocolCodes, KafkaProtocolError } from '../errors';

const SIZE_BYTES = 4;

export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private expected: number | undefined;

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes held for an unfinished frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** The next chunk; returns every frame it completes. Throws E_KAFKA_FRAME_TOO_LARGE or E_KAFKA_MALFORMED. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.expected === undefined) {
        if (this.buffered < SIZE_BYTES) break;
        const size = this.peek(SIZE_BYTES).readInt32BE(0);
        if (size < 0) throw new KafkaProtocolError(KafkaProtocolCodes.malformed, `negative frame size ${size}`);
        if (size > this.maxFrameBytes) {
          throw new KafkaProtocolError(KafkaProtocolCodes.frameTooLarge, `frame of ${size} bytes, limit ${this.maxFrameBytes}`);
        }
        this.consume(SIZE_BYTES);
        this.expected = size;
      }
      if (this.buffered < this.expected) break;
      frames.push(this.consume(this.expected));
      this.expected = undefined;
    }
    return frames;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined.subarray(0, n);
  }

  private consume(n: number): Buffer {
    const joined = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const taken = joined.subarray(0, n);
    const left = joined.subarray(n);
    this.chunks = left.length > 0 ? [left] : [];
    this.buffered = left.length;
    return taken;
  }
}

/** A response body (header included) with its INT32 size in front. */
export function frame(body: Buffer): Buffer {
  const size = Buffer.allocUnsafe(SIZE_BYTES);
  size.writeInt32BE(body.length, 0);
  return Buffer.concat([size, body]);
}
