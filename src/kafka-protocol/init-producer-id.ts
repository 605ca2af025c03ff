// InitProducerId (key 22), v0-v4: an idempotent producer's id and epoch. Transactions are
// not offered: a transactional id is answered with an error.

import { type RequestHeader, responseWriter } from './header';
import type { ByteReader } from './reader';

export interface InitProducerIdRequest {
  readonly transactionalId: string | null;
  /** -1 when the producer has none yet (v3+ only) */
  readonly producerId: bigint;
  readonly producerEpoch: number;
}

export function readInitProducerIdRequest(reader: ByteReader, version: number): InitProducerIdRequest {
  const flexible = version >= 2;
  const transactionalId = reader.versionedNullableString(flexible);
  reader.int32(); // transaction timeout
  const producerId = version >= 3 ? reader.int64() : -1n;
  const producerEpoch = version >= 3 ? reader.int16() : -1;
  if (flexible) reader.taggedFields();
  return { transactionalId, producerId, producerEpoch };
}

export interface InitProducerIdAnswer {
  readonly errorCode: number;
  readonly producerId: bigint;
  readonly producerEpoch: number;
}

export function writeInitProducerIdResponse(header: RequestHeader, answer: InitProducerIdAnswer): Buffer {
  const flexible = header.apiVersion >= 2;
  return responseWriter(header)
    .int32(0) // throttle time
    .int16(answer.errorCode)
    .int64(answer.producerId)
    .int16(answer.producerEpoch)
    .taggedFields(flexible)
    .toBuffer();
}
