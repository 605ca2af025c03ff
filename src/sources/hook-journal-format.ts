// The hook journal's file format (the journal itself: hook-journal.ts; why it exists:
// docs/delivery-guarantees.md#the-hook-journal). Entries are written by the hook listener's
// thread (native/hook-socket/hook-listener.c) and read back here; the bytes are pinned by
// golden bytes (test/sources/hook-journal.test.ts).
//
//   header (JOURNAL_HEADER_BYTES): "JCJF" | uint32 BE version (1) | uint64 BE file size | zeros
//   entry: "JCJ1" | uint32 BE CRC-32C of the rest | uint64 BE epoch | uint64 BE seq |
//          uint32 BE length | bytes
//
// The epoch is new at every start and kept in the state file beside the last applied entry,
// so an entry of an earlier run, even one whose bytes reached the disk after a kill, never
// reads as the next one: its sequence number may be used again.
// Entries follow one another; one that does not fit before the end of the file is at the
// start (right after the header), so a reader that does not find the next sequence number
// where the last entry ended looks there, and stops where neither holds it.

import { crc32c } from '../kafka-protocol/crc32c';

export const JOURNAL_HEADER_BYTES = 4096;
export const ENTRY_HEADER_BYTES = 28;
const FILE_MAGIC = 'JCJF';
const ENTRY_MAGIC = 'JCJ1';
const VERSION = 1;

export function encodeJournalHeader(size: number): Buffer {
  const head = Buffer.alloc(JOURNAL_HEADER_BYTES);
  head.write(FILE_MAGIC, 0, 'latin1');
  head.writeUInt32BE(VERSION, 4);
  head.writeBigUInt64BE(BigInt(size), 8);
  return head;
}

/** The file size a journal header records; undefined when `head` is not one. */
export function readJournalHeader(head: Buffer): number | undefined {
  if (head.length < 16 || head.toString('latin1', 0, 4) !== FILE_MAGIC || head.readUInt32BE(4) !== VERSION) return undefined;
  const size = Number(head.readBigUInt64BE(8));
  return Number.isSafeInteger(size) && size > JOURNAL_HEADER_BYTES ? size : undefined;
}

function entryBytes(length: number): number {
  return ENTRY_HEADER_BYTES + length;
}

export interface JournalEntry {
  seq: number;
  offset: number;
  /** where the entry ends: the next one begins there, or at the start */
  end: number;
  bytes: Buffer;
}

/**
 * A journal's bytes, read a piece at a time: at start the reader takes only the entries it
 * needs, not the whole file (a buffer over glibc's mmap threshold raises it for the
 * process's life: docs/benchmarks.md).
 */
export interface JournalBytes {
  readonly size: number;
  /** `length` bytes from `offset`, which the caller keeps within `size` */
  read(offset: number, length: number): Buffer;
}

/** A journal held in memory (tests). */
export function journalInMemory(file: Buffer): JournalBytes {
  return { size: file.length, read: (offset, length) => file.subarray(offset, offset + length) };
}

/** The entry `seq` of `epoch` at `offset` of the file, if it is there whole. */
export function readEntry(file: JournalBytes, epoch: number, offset: number, seq: number): JournalEntry | undefined {
  if (offset < JOURNAL_HEADER_BYTES || offset + ENTRY_HEADER_BYTES > file.size) return undefined;
  const head = file.read(offset, ENTRY_HEADER_BYTES);
  if (head.toString('latin1', 0, 4) !== ENTRY_MAGIC) return undefined;
  if (Number(head.readBigUInt64BE(8)) !== epoch || Number(head.readBigUInt64BE(16)) !== seq) return undefined;
  const end = offset + entryBytes(head.readUInt32BE(24));
  if (end > file.size) return undefined;
  const entry = file.read(offset, end - offset);
  if (crc32c(entry.subarray(8)) !== entry.readUInt32BE(4)) return undefined;
  return { seq, offset, end, bytes: Buffer.from(entry.subarray(ENTRY_HEADER_BYTES)) };
}

/** Every entry after the last applied one (`seq`, ending at `end`), in order. */
export function entriesAfter(file: JournalBytes, epoch: number, seq: number, end: number): JournalEntry[] {
  const found: JournalEntry[] = [];
  let at = end;
  for (let next = seq + 1; ; next++) {
    const entry = readEntry(file, epoch, at, next) ?? readEntry(file, epoch, JOURNAL_HEADER_BYTES, next);
    // each entry takes ENTRY_HEADER_BYTES at least: more than fit is a loop, never a journal
    if (entry === undefined || found.length > file.size / ENTRY_HEADER_BYTES) return found;
    found.push(entry);
    at = entry.end;
  }
}
