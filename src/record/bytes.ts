// Byte strings (see job-record.ts) and a JSON reader that keeps every input byte.

/** Ordinary (UTF-16) text -> the byte string of its UTF-8 encoding. */
export function utf8ToByteString(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

// Matches an escaped backslash (kept as is, so "\\u00e9" stays literal), a surrogate pair
// escape, or a single \uXXXX escape.
const ESCAPES = /\\(?:\\|u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|u([0-9a-fA-F]{4}))/g;

/**
 * JSON.parse over the bytes of `buf`, with every string value returned as a byte string.
 * Raw bytes (valid UTF-8 or not) come back unchanged; \uXXXX escapes above U+007F become
 * the bytes of their UTF-8 encoding, which is what json-c's parser does.
 */
export function parseJsonBytes(buf: Buffer): unknown {
  const text = buf.toString('latin1');
  return JSON.parse(text.includes('\\u') ? text.replace(ESCAPES, escapeToUtf8Bytes) : text);
}

function escapeToUtf8Bytes(match: string, hi?: string, lo?: string, single?: string): string {
  if (match === '\\\\') return match;
  const codePoint =
    hi !== undefined && lo !== undefined
      ? 0x10000 + ((parseInt(hi, 16) - 0xd800) << 10) + (parseInt(lo, 16) - 0xdc00)
      : parseInt(single ?? '0', 16);
  if (codePoint < 0x80) return match;
  return utf8ToByteString(String.fromCodePoint(codePoint));
}
