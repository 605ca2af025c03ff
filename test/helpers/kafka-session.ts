// The listener's session in process (answerRequest without a socket): a context that
// commits into the caller's function, and the one partition's answer of a flexible
// Produce response (v9 and later).

import { ProducerState } from '../../src/kafka-protocol/producer-state';
import { ByteReader } from '../../src/kafka-protocol/reader';
import type { KafkaSessionContext, KafkaSessionEvents, ProducedRecord } from '../../src/sources/kafka-session';

export function sessionContext(commit: (records: readonly ProducedRecord[]) => Promise<void>, extra: { maxRecordsBytes?: number; events?: Partial<KafkaSessionEvents> } = {}): KafkaSessionContext {
  const ignore = (): void => undefined;
  return {
    broker: { nodeId: 0, host: '127.0.0.1', port: 9292 },
    clusterId: 'test',
    maxRecordsBytes: extra.maxRecordsBytes ?? 1 << 20,
    producers: new ProducerState(),
    offsets: new Map(),
    commit,
    events: { unsupportedCompression: ignore, refusedBatch: ignore, unsupportedRequest: ignore, authenticationFailed: ignore, refused: ignore, ...extra.events },
  };
}

/** error code and base offset of the one partition of a flexible Produce answer */
export function partitionAnswer(answer: Buffer | undefined): { errorCode: number; baseOffset: bigint } {
  const r = new ByteReader(answer as Buffer);
  r.int32(); // correlation id
  r.taggedFields();
  r.uvarint(); // topics
  r.compactString();
  r.uvarint(); // partitions
  r.int32(); // index
  return { errorCode: r.int16(), baseOffset: r.int64() };
}
