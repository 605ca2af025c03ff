// ApiVersions (key 18), v0-v3. A client that asks in a version above ours gets
// UNSUPPORTED_VERSION in the v0 layout with our list, and retries in a version we speak.

import { ADVERTISED_APIS, ApiKey, KafkaErrorCode, supportedRange } from './api-keys';
import { type RequestHeader, responseWriter } from './header';
import type { ByteReader } from './reader';

export interface ApiVersionsRequest {
  readonly clientSoftwareName: string | null;
  readonly clientSoftwareVersion: string | null;
}

export function readApiVersionsRequest(reader: ByteReader, version: number): ApiVersionsRequest {
  if (version < 3) return { clientSoftwareName: null, clientSoftwareVersion: null };
  const clientSoftwareName = reader.compactString();
  const clientSoftwareVersion = reader.compactString();
  reader.taggedFields();
  return { clientSoftwareName, clientSoftwareVersion };
}

/** The answer to an ApiVersions request of any version, supported or not. */
export function writeApiVersionsResponse(header: Pick<RequestHeader, 'apiKey' | 'apiVersion' | 'correlationId'>): Buffer {
  const range = supportedRange(ApiKey.apiVersions);
  const supported = range !== undefined && header.apiVersion >= range.minVersion && header.apiVersion <= range.maxVersion;
  const version = supported ? header.apiVersion : 0;
  const flexible = version >= 3;
  const writer = responseWriter({ ...header, apiVersion: version });
  writer.int16(supported ? KafkaErrorCode.none : KafkaErrorCode.unsupportedVersion);
  writer.array(ADVERTISED_APIS, flexible, (api) => {
    writer.int16(api.apiKey).int16(api.minVersion).int16(api.maxVersion).taggedFields(flexible);
  });
  if (version >= 1) writer.int32(0); // throttle time
  writer.taggedFields(flexible);
  return writer.toBuffer();
}
