// Cuts one hook message (hook-protocol.ts) out of the bytes of a socket connection, which
// arrive in chunks of any size. One message per connection: bytes after it are an error.

import { checkHeader, HEADER_BYTES } from './hook-protocol';

/**
 * The most of a stream with a bad magic kept in quarantine as evidence: it is no hook
 * message, so no record is cut by this. Everything else kept is bounded by MaxMessageBytes.
 */
const MAX_KEPT_BYTES = 64 * 1024;

export type Framed =
  /** not a whole message yet */
  | { kind: 'incomplete' }
  | { kind: 'message'; environment: Buffer }
  /** not in the hook's wire format; `raw` is what is kept as evidence */
  | { kind: 'malformed'; raw: Buffer; reason: string }
  /** a well-formed header announcing more than MaxMessageBytes: nothing is kept, the hook spools it whole */
  | { kind: 'too-large'; reason: string };

export class HookMessageFramer {
  private readonly chunks: Buffer[] = [];
  private received = 0;
  private expected: number | undefined;

  constructor(private readonly maxMessageBytes: number) {}

  /** The next chunk of the connection; a result other than 'incomplete' is final. */
  push(chunk: Buffer): Framed {
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (this.expected === undefined && this.received >= HEADER_BYTES) {
      const head = checkHeader(this.bytes().subarray(0, HEADER_BYTES), this.maxMessageBytes);
      if (!head.ok && head.tooLarge) return { kind: 'too-large', reason: head.reason };
      if (!head.ok) return { kind: 'malformed', raw: this.bytes().subarray(0, MAX_KEPT_BYTES), reason: head.reason };
      this.expected = HEADER_BYTES + head.length;
    }
    if (this.expected === undefined || this.received < this.expected) return { kind: 'incomplete' };
    const message = this.bytes();
    if (this.received > this.expected) return { kind: 'malformed', raw: message, reason: `${this.received - this.expected} bytes after the message` };
    return { kind: 'message', environment: message.subarray(HEADER_BYTES) };
  }

  /** The client ended its stream before a whole message: undefined when it sent nothing at all. */
  end(): Extract<Framed, { kind: 'malformed' }> | undefined {
    if (this.received === 0) return undefined;
    return { kind: 'malformed', raw: this.bytes(), reason: `truncated message (${this.received} bytes)` };
  }

  /** Everything received so far; most messages arrive in one chunk, which is not copied. */
  private bytes(): Buffer {
    if (this.chunks.length > 1) this.chunks.splice(0, this.chunks.length, Buffer.concat(this.chunks));
    return this.chunks[0] ?? Buffer.alloc(0);
  }
}
