// RecordBatch v2 (magic 2), the only record format accepted (docs/kafka-listener.md#record-batches):
// the header, the CRC-32C over everything after the CRC field, and the varint records,
// decompressed when the attributes say so. Keys, values and header values are kept as the
// bytes received, which the upstream producer publishes unchanged.

import { KafkaProtocolCodes, KafkaProtocolError } from '../errors';
import { decompress } from './compression';
import { crc32c } from './crc32c';
import { ByteReader } from './reader';

/** baseOffset .. magic: the part before the CRC. */
const BEFORE_CRC = 8 + 4 + 4 + 1;
/** BEFORE_CRC + crc .. record count. */
export const BATCH_HEADER_BYTES = BEFORE_CRC + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4;
/** baseOffset and batchLength, which batchLength does not count. */
const LOG_OVERHEAD = 12;
/** The smallest record: length, attributes, timestamp, offset, key, value, header count. */
const MIN_RECORD_BYTES = 7;
/**
 * What holding one record costs beyond its bytes, charged against the request's limit: a
 * JavaScript object of a few hundred bytes each, so a request of a million 7-byte records
 * would fit in MaxRequestBytes as bytes but not in memory. 64 keeps a request's records
 * within a few times MaxRequestBytes and costs a job record (1-3 KB) a few per cent.
 */
export const RECORD_CHARGE_BYTES = 64;

const COMPRESSION_MASK = 0x07;
const TRANSACTIONAL_FLAG = 0x10;
const CONTROL_FLAG = 0x20;

export interface RecordHeader {
  readonly key: string;
  readonly value: Buffer | null;
}

export interface KafkaRecord {
  readonly offsetDelta: number;
  /** baseTimestamp + the record's delta, ms since the epoch */
  readonly timestamp: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: readonly RecordHeader[];
}

export interface RecordBatch {
  readonly compression: number;
  readonly isTransactional: boolean;
  readonly isControl: boolean;
  readonly lastOffsetDelta: number;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly records: readonly KafkaRecord[];
  /** the bytes of its records decompressed, plus RECORD_CHARGE_BYTES for each */
  readonly chargedBytes: number;
}

/** The magic byte of the batch starting at the reader's position, without moving it. */
function magicAt(data: Buffer, at: number): number | undefined {
  return data.length >= at + BEFORE_CRC ? data.readInt8(at + BEFORE_CRC - 1) : undefined;
}

/**
 * Every batch of a partition's records field. `maxRecordsBytes` bounds the records of all
 * its batches together, decompressed and charged RECORD_CHARGE_BYTES each: many small
 * batches that each inflate within a per-batch limit would otherwise multiply it. Throws
 * KafkaProtocolError (malformed, bad CRC, unsupported compression).
 */
export function readRecordBatches(data: Buffer, maxRecordsBytes: number): RecordBatch[] {
  const batches: RecordBatch[] = [];
  let left = maxRecordsBytes;
  let at = 0;
  while (at < data.length) {
    if (data.length - at < LOG_OVERHEAD) throw malformed(`${data.length - at} bytes after the last batch`);
    const batchLength = data.readInt32BE(at + 8);
    const end = at + LOG_OVERHEAD + batchLength;
    if (batchLength < BATCH_HEADER_BYTES - LOG_OVERHEAD || end > data.length) {
      throw malformed(`batch length ${batchLength} with ${data.length - at - LOG_OVERHEAD} bytes left`);
    }
    const batch = readRecordBatch(data.subarray(at, end), left);
    left -= batch.chargedBytes;
    batches.push(batch);
    at = end;
  }
  return batches;
}

function readRecordBatch(batch: Buffer, maxRecordsBytes: number): RecordBatch {
  const magic = magicAt(batch, 0);
  if (magic !== 2) {
    throw new KafkaProtocolError(KafkaProtocolCodes.malformed, `record format magic ${String(magic)}, only 2 (RecordBatch v2) is accepted`);
  }
  const reader = new ByteReader(batch);
  reader.bytes(BEFORE_CRC);
  const crc = reader.uint32();
  const computed = crc32c(batch.subarray(reader.position));
  if (crc !== computed) {
    throw new KafkaProtocolError(KafkaProtocolCodes.badCrc, `batch CRC-32C ${crc.toString(16)}, computed ${computed.toString(16)}`);
  }
  const attributes = reader.int16();
  const lastOffsetDelta = reader.int32();
  const baseTimestamp = reader.int64();
  reader.int64(); // max timestamp
  const producerId = reader.int64();
  const producerEpoch = reader.int16();
  const baseSequence = reader.int32();
  const count = reader.int32();
  const compression = attributes & COMPRESSION_MASK;
  const recordsBytes = decompress(compression, reader.rest(), maxRecordsBytes);
  if (count < 0 || count * MIN_RECORD_BYTES > recordsBytes.length) {
    throw malformed(`${count} records in ${recordsBytes.length} bytes`);
  }
  const chargedBytes = recordsBytes.length + count * RECORD_CHARGE_BYTES;
  if (chargedBytes > maxRecordsBytes) {
    throw malformed(`${count} records of ${recordsBytes.length} bytes count as ${chargedBytes}, ${maxRecordsBytes} left of the request's limit`);
  }
  const records = new ByteReader(recordsBytes);
  const out: KafkaRecord[] = [];
  for (let i = 0; i < count; i++) out.push(readRecord(records, baseTimestamp));
  if (records.remaining !== 0) throw malformed(`${records.remaining} bytes after ${count} records`);
  return {
    compression,
    isTransactional: (attributes & TRANSACTIONAL_FLAG) !== 0,
    isControl: (attributes & CONTROL_FLAG) !== 0,
    lastOffsetDelta,
    producerId,
    producerEpoch,
    baseSequence,
    records: out,
    chargedBytes,
  };
}

function varintBytes(reader: ByteReader, what: string): Buffer | null {
  const n = reader.varint();
  if (n === -1) return null;
  if (n < -1) throw malformed(`${what} length ${n}`);
  return reader.bytes(n, what);
}

function readRecord(reader: ByteReader, baseTimestamp: bigint): KafkaRecord {
  const length = reader.varint();
  if (length < 0 || length > reader.remaining) throw malformed(`record length ${length} with ${reader.remaining} bytes left`);
  const end = reader.position + length;
  reader.int8(); // attributes, unused in v2
  const timestamp = baseTimestamp + reader.varlong();
  const offsetDelta = reader.varint();
  const key = varintBytes(reader, 'key');
  const value = varintBytes(reader, 'value');
  const headerCount = reader.varint();
  if (headerCount < 0 || headerCount * 2 > end - reader.position) throw malformed(`${headerCount} headers in a record of ${length} bytes`);
  const headers: RecordHeader[] = [];
  for (let i = 0; i < headerCount; i++) {
    const headerKey = varintBytes(reader, 'header key');
    if (headerKey === null) throw malformed('null header key');
    headers.push({ key: headerKey.toString('utf8'), value: varintBytes(reader, 'header value') });
  }
  if (reader.position !== end) throw malformed(`record of ${length} bytes read as ${length + reader.position - end}`);
  return { offsetDelta, timestamp, key, value, headers };
}

function malformed(message: string): KafkaProtocolError {
  return new KafkaProtocolError(KafkaProtocolCodes.malformed, message);
}
