// SaslHandshake (key 17) v1 and SaslAuthenticate (key 36) v0-v2, with the PLAIN mechanism
// (RFC 4616): the one a producer on another host needs to be let in (docs/kafka-listener.md#sasl).
// SaslHandshake v0 (raw tokens without a Kafka header) is not offered; clients of the last
// years (librdkafka 1.x+, Java 1.x+) use v1.

import { type RequestHeader, responseWriter } from './header';
import type { ByteReader } from './reader';

export const PLAIN = 'PLAIN';

export function readSaslHandshakeRequest(reader: ByteReader): string {
  return reader.string();
}

export function writeSaslHandshakeResponse(header: RequestHeader, errorCode: number, mechanisms: readonly string[]): Buffer {
  const writer = responseWriter(header).int16(errorCode);
  writer.array(mechanisms, false, (m) => writer.string(m, false));
  return writer.toBuffer();
}

export function readSaslAuthenticateRequest(reader: ByteReader, version: number): Buffer {
  const flexible = version >= 2;
  const bytes = flexible ? reader.compactNullableBytes() : reader.nullableBytes();
  if (flexible) reader.taggedFields();
  return bytes ?? Buffer.alloc(0);
}

export function writeSaslAuthenticateResponse(header: RequestHeader, errorCode: number, errorMessage: string | null): Buffer {
  const flexible = header.apiVersion >= 2;
  const writer = responseWriter(header).int16(errorCode).string(errorMessage, flexible);
  if (flexible) writer.uvarint(1); // empty compact bytes
  else writer.int32(0);
  if (header.apiVersion >= 1) writer.int64(0n); // session lifetime: no re-authentication
  return writer.taggedFields(flexible).toBuffer();
}

/** PLAIN's message: [authzid] NUL authcid NUL passwd. undefined if it is not one. */
export function parsePlain(message: Buffer): { user: string; password: string } | undefined {
  const parts = message.toString('utf8').split('\u0000');
  if (parts.length !== 3) return undefined;
  const [authzid, user, password] = parts as [string, string, string];
  if (user === '' || (authzid !== '' && authzid !== user)) return undefined;
  return { user, password };
}
