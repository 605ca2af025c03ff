// The native hook's wire format (see native/jobcompd-hook.c), used on the Unix socket and
// in spool files alike:
//   request / spool file:  "JCH1" | uint32 BE length | environment ("KEY=VALUE\0"...)
//   answer:                status byte | uint32 BE length | UTF-8 message

export const MAGIC = Buffer.from('JCH1', 'latin1');
export const HEADER_BYTES = 8;

export const Answer = {
  /** committed */
  stored: 'A',
  /** kept in quarantine (committed) */
  quarantined: 'Q',
  /** the same record was committed before */
  duplicate: 'D',
  /** not published by configuration (start records disabled, epilog) */
  ignored: 'I',
  /** not committed: the hook must spool the record */
  error: 'E',
} as const;
export type AnswerStatus = (typeof Answer)[keyof typeof Answer];

/** In one buffer: three (the header, the text, their concatenation) cost a socket record 0.6 µs more. */
export function encodeAnswer(status: AnswerStatus, message: string): Buffer {
  const length = Buffer.byteLength(message, 'utf8');
  const answer = Buffer.allocUnsafe(5 + length);
  answer.write(status, 0, 'latin1');
  answer.writeUInt32BE(length, 1);
  answer.write(message, 5, 'utf8');
  return answer;
}

export function encodeRequest(environment: Buffer): Buffer {
  const head = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(environment.length, 4);
  return Buffer.concat([head, environment]);
}

export type HeaderCheck =
  | { ok: true; length: number }
  /** `tooLarge`: a well-formed header whose message is over the limit; the sender keeps (spools) it whole */
  | { ok: false; reason: string; tooLarge?: true };

/** Validate the 8-byte header. */
export function checkHeader(head: Buffer, maxBytes: number): HeaderCheck {
  if (head.length < HEADER_BYTES) return { ok: false, reason: `truncated header (${head.length} of ${HEADER_BYTES} bytes)` };
  if (!head.subarray(0, 4).equals(MAGIC)) return { ok: false, reason: 'not a jobcompd-hook message (bad magic)' };
  const length = head.readUInt32BE(4);
  if (length > maxBytes) return { ok: false, reason: `message of ${length} bytes exceeds the limit of ${maxBytes}`, tooLarge: true };
  return { ok: true, length };
}

export type Decoded = { ok: true; environment: Buffer } | { ok: false; reason: string };

/** A whole message (a spool file): header plus exactly `length` bytes. */
export function decodeMessage(buf: Buffer, maxBytes: number): Decoded {
  const head = checkHeader(buf.subarray(0, HEADER_BYTES), maxBytes);
  if (!head.ok) return head;
  const body = buf.subarray(HEADER_BYTES);
  if (body.length !== head.length) return { ok: false, reason: `length says ${head.length} bytes, ${body.length} present` };
  return { ok: true, environment: body };
}
