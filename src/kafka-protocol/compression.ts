// The codecs of RecordBatch v2's attributes (bits 0-2). gzip and zstd are node:zlib's;
// snappy and lz4 are our own decode-only modules (snappy.ts, lz4.ts: no package in the
// lockfile provides them). Codecs 5 to 7 do not exist: the producer gets
// UNSUPPORTED_COMPRESSION_TYPE and the log names the setting (docs/kafka-listener.md#compression).

import type * as Zlib from 'node:zlib';
import { KafkaProtocolCodes, KafkaProtocolError } from '../errors';
import { lz4Decompress } from './lz4';
import { snappyDecompress } from './snappy';

export const CompressionCodec = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;

const NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

export function codecName(codec: number): string {
  return NAMES[codec] ?? `unknown codec ${codec}`;
}

type Decompress = (data: Buffer, maxOutputLength: number) => Buffer;

let zlibModule: typeof Zlib | undefined;
/** node:zlib, loaded by the first batch that needs it: 1 MB of memory a daemon without the listener, or with uncompressed producers, never uses */
function zlib(): typeof Zlib {
  return (zlibModule ??= require('node:zlib') as typeof Zlib);
}

const DECOMPRESSORS: Record<number, Decompress> = {
  [CompressionCodec.gzip]: (data, maxOutputLength) => zlib().gunzipSync(data, { maxOutputLength }),
  [CompressionCodec.snappy]: snappyDecompress,
  [CompressionCodec.lz4]: lz4Decompress,
  [CompressionCodec.zstd]: (data, maxOutputLength) => zlib().zstdDecompressSync(data, { maxOutputLength }),
};

export function isSupportedCodec(codec: number): boolean {
  return codec === CompressionCodec.none || DECOMPRESSORS[codec] !== undefined;
}

/**
 * The records section of a batch, decompressed; at most `maxBytes` (a decompression bomb is
 * E_KAFKA_MALFORMED, not memory, as is any data that does not decode). Throws
 * E_KAFKA_UNSUPPORTED_COMPRESSION for a codec that does not exist.
 */
export function decompress(codec: number, data: Buffer, maxBytes: number): Buffer {
  if (codec === CompressionCodec.none) return data;
  const decompressor = DECOMPRESSORS[codec];
  if (decompressor === undefined) {
    throw new KafkaProtocolError(KafkaProtocolCodes.unsupportedCompression, `${codecName(codec)} compression is not supported`);
  }
  try {
    return decompressor(data, maxBytes);
  } catch (err) {
    throw new KafkaProtocolError(KafkaProtocolCodes.malformed, `${codecName(codec)} data does not decompress (at most ${maxBytes} bytes): ${(err as Error).message}`);
  }
}
