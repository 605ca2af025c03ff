// Writes the Kafka protocol's primitive types into a growing buffer: responses, and the
// requests the tests build.

export class ByteWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(initial = 256) {
    this.buffer = Buffer.allocUnsafe(initial);
  }

  /**
   * Room for n more bytes; returns where they go. It may replace this.buffer, so callers
   * reserve before they name this.buffer: in `this.buffer.writeX(v, this.reserve(n))` the
   * old buffer is read first and the bytes would land in it.
   */
  private reserve(n: number): number {
    if (this.length + n > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + n));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  int8(v: number): this {
    const at = this.reserve(1);
    this.buffer.writeInt8(v, at);
    return this;
  }

  int16(v: number): this {
    const at = this.reserve(2);
    this.buffer.writeInt16BE(v, at);
    return this;
  }

  int32(v: number): this {
    const at = this.reserve(4);
    this.buffer.writeInt32BE(v, at);
    return this;
  }

  int64(v: bigint): this {
    const at = this.reserve(8);
    this.buffer.writeBigInt64BE(v, at);
    return this;
  }

  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }

  raw(bytes: Buffer): this {
    const at = this.reserve(bytes.length);
    bytes.copy(this.buffer, at);
    return this;
  }

  uvarint(v: number): this {
    let rest = v;
    while (rest >= 0x80) {
      const at = this.reserve(1);
      this.buffer.writeUInt8((rest & 0x7f) | 0x80, at);
      rest = Math.floor(rest / 128);
    }
    const at = this.reserve(1);
    this.buffer.writeUInt8(rest, at);
    return this;
  }

  /** A zigzag varint of at most 32 bits (record fields), as ByteReader.varint reads it. */
  varint(v: number): this {
    return this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  /** A string (null allowed) in the encoding of the version: compact when flexible. */
  string(s: string | null, flexible: boolean): this {
    if (s === null) return flexible ? this.uvarint(0) : this.int16(-1);
    const bytes = Buffer.from(s, 'utf8');
    if (flexible) this.uvarint(bytes.length + 1);
    else this.int16(bytes.length);
    return this.raw(bytes);
  }

  arrayLength(n: number, flexible: boolean): this {
    return flexible ? this.uvarint(n + 1) : this.int32(n);
  }

  array<T>(items: readonly T[], flexible: boolean, element: (item: T) => void): this {
    this.arrayLength(items.length, flexible);
    for (const item of items) element(item);
    return this;
  }

  /** An empty tagged-field section, written only in flexible versions. */
  taggedFields(flexible: boolean): this {
    return flexible ? this.uvarint(0) : this;
  }

  toBuffer(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}
