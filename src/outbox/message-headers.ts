// The headers of a record taken by the Kafka listener, as one BLOB of the outbox's headers
// column: a count, then per header its key and its value (-1 for a null value), each with
// an INT32 length. A format of jobcompd's own state file, never sent anywhere.

export interface MessageHeader {
  readonly key: string;
  readonly value: Buffer | null;
}

/** null for no headers (the column stays NULL). */
export function encodeHeaders(headers: readonly MessageHeader[]): Buffer | null {
  if (headers.length === 0) return null;
  const parts: Buffer[] = [int32(headers.length)];
  for (const h of headers) {
    const key = Buffer.from(h.key, 'utf8');
    parts.push(int32(key.length), key, int32(h.value === null ? -1 : h.value.length));
    if (h.value !== null) parts.push(h.value);
  }
  return Buffer.concat(parts);
}

export function decodeHeaders(blob: Buffer | null): MessageHeader[] {
  if (blob === null) return [];
  const out: MessageHeader[] = [];
  let at = 4;
  const count = blob.readInt32BE(0);
  for (let i = 0; i < count; i++) {
    const keyLength = blob.readInt32BE(at);
    const key = blob.subarray(at + 4, at + 4 + keyLength).toString('utf8');
    at += 4 + keyLength;
    const valueLength = blob.readInt32BE(at);
    at += 4;
    out.push({ key, value: valueLength < 0 ? null : blob.subarray(at, at + valueLength) });
    at += Math.max(0, valueLength);
  }
  return out;
}

/**
 * Why node-rdkafka could not publish these headers unchanged, or undefined if it can: it
 * passes each value through a JavaScript string and a C string, so a null value, a NUL
 * byte or bytes that are not UTF-8 would arrive changed (docs/kafka-listener.md#headers).
 */
export function unpublishableHeader(headers: readonly MessageHeader[]): string | undefined {
  for (const h of headers) {
    if (h.value === null) return `header "${h.key}" has a null value`;
    if (h.value.includes(0) || !Buffer.from(h.value.toString('utf8'), 'utf8').equals(h.value)) {
      return `header "${h.key}" is not UTF-8 text without NUL bytes`;
    }
  }
  return undefined;
}

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n, 0);
  return b;
}
