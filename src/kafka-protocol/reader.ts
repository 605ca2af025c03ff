// Reads the Kafka protocol's primitive types (docs/kafka-listener.md#the-codec) from one
// request buffer. Every read is bounds-checked: a short or lying buffer throws a
// KafkaProtocolError, never reads past the end or allocates from a length it was told.

import { KafkaProtocolCodes, KafkaProtocolError } from '../errors';

export class ByteReader {
  private offset = 0;

  constructor(private readonly buffer: Buffer) {}

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  private take(n: number, what: string): number {
    if (n < 0 || n > this.remaining) {
      throw new KafkaProtocolError(KafkaProtocolCodes.malformed, `${what}: needs ${n} bytes, ${this.remaining} left`);
    }
    const at = this.offset;
    this.offset += n;
    return at;
  }

  int8(): number {
    return this.buffer.readInt8(this.take(1, 'int8'));
  }

  int16(): number {
    return this.buffer.readInt16BE(this.take(2, 'int16'));
  }

  int32(): number {
    return this.buffer.readInt32BE(this.take(4, 'int32'));
  }

  uint32(): number {
    return this.buffer.readUInt32BE(this.take(4, 'uint32'));
  }

  int64(): bigint {
    return this.buffer.readBigInt64BE(this.take(8, 'int64'));
  }

  bool(): boolean {
    return this.int8() !== 0;
  }

  bytes(n: number, what = 'bytes'): Buffer {
    const at = this.take(n, what);
    return this.buffer.subarray(at, at + n);
  }

  /** The rest of the buffer. */
  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  /** An unsigned LEB128 varint of at most 32 bits. */
  uvarint(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.buffer.readUInt8(this.take(1, 'varint'));
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) {
        if (value > 0xffffffff) break;
        return value;
      }
    }
    throw new KafkaProtocolError(KafkaProtocolCodes.malformed, 'varint longer than 32 bits');
  }

  /** A zigzag varint of at most 32 bits (record fields). */
  varint(): number {
    const raw = this.uvarint();
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }

  /** A zigzag varlong of at most 64 bits (record timestamps). */
  varlong(): bigint {
    let value = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const byte = this.buffer.readUInt8(this.take(1, 'varlong'));
      value |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) {
        if (value > 0xffffffffffffffffn) break;
        return (value >> 1n) ^ -(value & 1n);
      }
    }
    throw new KafkaProtocolError(KafkaProtocolCodes.malformed, 'varlong longer than 64 bits');
  }

  /** INT16-length string; null for length -1. */
  nullableString(): string | null {
    const n = this.int16();
    if (n === -1) return null;
    return this.bytes(n, 'string').toString('utf8');
  }

  string(): string {
    const s = this.nullableString();
    if (s === null) throw new KafkaProtocolError(KafkaProtocolCodes.malformed, 'null where a string is required');
    return s;
  }

  /** Unsigned-varint length + 1 string; null for 0. */
  compactNullableString(): string | null {
    const n = this.uvarint();
    if (n === 0) return null;
    return this.bytes(n - 1, 'compact string').toString('utf8');
  }

  compactString(): string {
    const s = this.compactNullableString();
    if (s === null) throw new KafkaProtocolError(KafkaProtocolCodes.malformed, 'null where a string is required');
    return s;
  }

  /** INT32-length bytes; null for -1. */
  nullableBytes(): Buffer | null {
    const n = this.int32();
    if (n === -1) return null;
    return this.bytes(n);
  }

  compactNullableBytes(): Buffer | null {
    const n = this.uvarint();
    if (n === 0) return null;
    return this.bytes(n - 1, 'compact bytes');
  }

  /**
   * The element count of an array; -1 (null) as null. The count is checked against the
   * bytes left (each element takes at least `minElementBytes`), so a lying count cannot
   * make the caller loop or allocate beyond the request.
   */
  arrayLength(flexible: boolean, minElementBytes = 1): number | null {
    const n = flexible ? this.uvarint() - 1 : this.int32();
    if (n === -1) return null;
    if (n < -1 || n * minElementBytes > this.remaining) {
      throw new KafkaProtocolError(KafkaProtocolCodes.malformed, `array of ${n} elements in ${this.remaining} bytes`);
    }
    return n;
  }

  array<T>(flexible: boolean, minElementBytes: number, element: () => T): T[] {
    const n = this.arrayLength(flexible, minElementBytes) ?? 0;
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(element());
    return out;
  }

  /** Skips a tagged-field section: none of the fields jobcompd reads are tagged. */
  taggedFields(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint(); // tag
      this.bytes(this.uvarint(), 'tagged field');
    }
  }

  /** A string in the encoding of the version: compact when flexible. */
  versionedString(flexible: boolean): string {
    return flexible ? this.compactString() : this.string();
  }

  versionedNullableString(flexible: boolean): string | null {
    return flexible ? this.compactNullableString() : this.nullableString();
  }
}
