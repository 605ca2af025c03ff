// The codecs of RecordBatch v2's attributes (bits 0-2). gzip and zstd are node:zlib's;
// snappy and lz4 have no package in the lockfile, so they are refused: the producer gets
// UNSUPPORTED_COMPRESSION_TYPE and the log names the setting (docs/kafka-listener.md#compression).

import * as zlib from 'node:zlib';
import { KafkaProtocolCodes, KafkaProtocolError } from '../errors';

export const CompressionCodec = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;

const NAMES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

export function codecName(codec: number): string {
  return NAMES[codec] ?? `unknown codec ${codec}`;
}

type Decompress = (data: Buffer, options: { maxOutputLength: number }) => Buffer;

function decompressorFor(codec: number): Decompress | undefined {
  if (codec === CompressionCodec.gzip) return zlib.gunzipSync;
  if (codec === CompressionCodec.zstd) return zlib.zstdDecompressSync;
  return undefined;
}

export function isSupportedCodec(codec: number): boolean {
  return codec === CompressionCodec.none || decompressorFor(codec) !== undefined;
}

/**
 * The records section of a batch, decompressed; at most `maxBytes` (a decompression bomb is
 * E_KAFKA_MALFORMED, not memory). Throws E_KAFKA_UNSUPPORTED_COMPRESSION for a codec this
 * Node.js cannot read.
 */
export function decompress(codec: number, data: Buffer, maxBytes: number): Buffer {
  if (codec === CompressionCodec.none) return data;
  const decompressor = decompressorFor(codec);
  if (decompressor === undefined) {
    throw new KafkaProtocolError(KafkaProtocolCodes.unsupportedCompression, `${codecName(codec)} compression is not supported`);
  }
  try {
    return decompressor(data, { maxOutputLength: maxBytes });
  } catch (err) {
    throw new KafkaProtocolError(KafkaProtocolCodes.malformed, `${codecName(codec)} data does not decompress within ${maxBytes} bytes: ${(err as Error).message}`);
  }
}
