// Request header v1/v2 and response header v0/v1. The header version follows from the API's
// version: flexible versions use request header v2 (tagged fields after the client id)
// and response header v1, except ApiVersions, whose response header is always v0 so that
// a client can read the answer before it knows which versions the broker speaks.

import { ApiKey, isFlexible } from './api-keys';
import { ByteReader } from './reader';
import { ByteWriter } from './writer';

export interface RequestHeader {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
}

/** The fields every request header version starts with: enough to answer any request. */
export function readHeaderStart(frame: Buffer): Pick<RequestHeader, 'apiKey' | 'apiVersion' | 'correlationId'> {
  const reader = new ByteReader(frame);
  return { apiKey: reader.int16(), apiVersion: reader.int16(), correlationId: reader.int32() };
}

/** The header of a request of a supported API and version; the reader is left at the body. */
export function readRequestHeader(reader: ByteReader): RequestHeader {
  const apiKey = reader.int16();
  const apiVersion = reader.int16();
  const correlationId = reader.int32();
  const clientId = reader.nullableString(); // not compact even in header v2
  if (isFlexible(apiKey, apiVersion)) reader.taggedFields();
  return { apiKey, apiVersion, correlationId, clientId };
}

/** A writer with the response header of the request written. */
export function responseWriter(header: Pick<RequestHeader, 'apiKey' | 'apiVersion' | 'correlationId'>): ByteWriter {
  const writer = new ByteWriter().int32(header.correlationId);
  if (header.apiKey !== ApiKey.apiVersions) writer.taggedFields(isFlexible(header.apiKey, header.apiVersion));
  return writer;
}
