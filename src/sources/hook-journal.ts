// The hook journal (docs/delivery-guarantees.md#the-hook-journal): a file of fixed size in
// the state directory, where a hook record is made durable, and answered, before JavaScript
// sees it. slurmctld runs jobcomp/script one record after another and waits for each; a
// record answered only after a SQLite transaction driven from JavaScript cannot come near
// the cost of the fdatasync itself (docs/benchmark-rounds.md, eighth to eleventh sessions).
// The hook listener's own thread (native/hook-socket/hook-listener.c) places the message of
// a lone connection here, writes it, fdatasyncs and answers; the record then goes into the
// state file as any other. Its transaction records the entry as applied (JournalMark in the
// counters table), and only once that is synced is the entry's space used again. At start,
// the entries after the mark are committed to the state file before the socket listens.
//
// This module owns the file: made or reused at start, with a new epoch recorded in the
// state file; the listener writes the entries.

import { randomInt } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, renameSync, writeSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import { giveToStateDirOwner } from '../outbox/open';
import { syncDataNow } from '../outbox/sync';
import type { JournalMark } from '../outbox/outbox';
import { encodeJournalHeader, entriesAfter, JOURNAL_HEADER_BYTES, readJournalHeader, type JournalBytes, type JournalEntry } from './hook-journal-format';

export const JOURNAL_FILE = 'hook-journal';

/** What the state file knows of the journal (the Outbox). */
export interface JournalState {
  journalMark(): (JournalMark & { id: number }) | undefined;
  setJournalMark(mark: JournalMark & { id: number }): void;
}

export class HookJournal {
  private constructor(
    readonly fd: number,
    readonly size: number,
    readonly epoch: number,
    /** the sequence number of this run's first entry */
    readonly firstSeq: number,
  ) {}

  /**
   * The entries a run before this one left after the state file's mark. Read before the
   * journal is opened for this run; commit them, then `open`.
   */
  static leftOver(file: string, state: JournalState): JournalEntry[] {
    const mark = state.journalMark();
    if (mark === undefined) return [];
    let fd: number;
    try {
      fd = openSync(file, constants.O_RDONLY);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    try {
      const file = journalOnDisk(fd, fstatSync(fd).size);
      if (file.size < JOURNAL_HEADER_BYTES || readJournalHeader(file.read(0, JOURNAL_HEADER_BYTES)) !== file.size) return [];
      return entriesAfter(file, mark.id, mark.seq, mark.end);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * This run's journal: the file reused when it has the size asked for, else made anew
   * (zeros written, so that an entry's write changes no file metadata), and a new epoch
   * recorded in the state file after the last entry applied, durably, before any entry.
   */
  static open(file: string, size: number, state: JournalState): HookJournal {
    const lastSeq = state.journalMark()?.seq ?? 0;
    let fd = reusable(file, size);
    if (fd === undefined) fd = create(file, size);
    const epoch = randomInt(1, 2 ** 47);
    try {
      state.setJournalMark({ id: epoch, seq: lastSeq, end: JOURNAL_HEADER_BYTES });
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return new HookJournal(fd, size, epoch, lastSeq + 1);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The file, open for writing, when it is a journal of `size` bytes. */
function reusable(file: string, size: number): number | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDWR);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const head = Buffer.alloc(JOURNAL_HEADER_BYTES);
  if (fstatSync(fd).size === size && readSync(fd, head, 0, head.length, 0) === head.length && readJournalHeader(head) === size) return fd;
  closeSync(fd);
  return undefined;
}

/** Read where the reader asks: an entry short of `length` bytes on disk fails its CRC. */
function journalOnDisk(fd: number, size: number): JournalBytes {
  return {
    size,
    read(offset, length) {
      const bytes = Buffer.alloc(length);
      readSync(fd, bytes, 0, length, offset);
      return bytes;
    },
  };
}

const ZEROS_BYTES = 64 * 1024;

/** Written whole beside it, synced, then renamed over it and the directory synced. */
function create(file: string, size: number): number {
  const temporary = `${file}.new`;
  const fd = openSync(temporary, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    writeSync(fd, encodeJournalHeader(size), 0, JOURNAL_HEADER_BYTES, 0);
    // Below glibc's 128 KiB mmap threshold: freeing a larger buffer raises the threshold
    // for the process's life and the drain's peak RSS with it (docs/benchmarks.md).
    const zeros = Buffer.alloc(Math.min(size, ZEROS_BYTES));
    for (let at = JOURNAL_HEADER_BYTES; at < size; at += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, size - at), at);
    syncDataNow(fd);
    giveToStateDirOwner(temporary, dirname(file));
    renameSync(temporary, file);
    const dir = openSync(dirname(file), constants.O_RDONLY);
    try {
      syncDataNow(dir);
    } finally {
      closeSync(dir);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}
