// The hook journal (docs/delivery-guarantees.md#the-hook-journal): a file of fixed size in
// the state directory, where a hook record can be made durable, and answered, without
// waiting for the state file's transaction. slurmctld runs jobcomp/script one record after
// another and waits for each; a SQLite commit and its fdatasync in libuv's pool, driven from
// JavaScript, cost more than the whole of issue 15's budget on this machine
// (docs/benchmarks.md, eighth session). When the state file has no other record to commit,
// the socket source writes the hook's message here instead, and the listener in C writes it
// and fdatasyncs it in libuv's thread pool, then answers; the record goes on into the
// state file as any other. Its transaction records the entry as applied (JournalMark in the
// counters table), and only once that is synced is the entry's space used again. At start,
// the entries after the mark are committed to the state file before the socket listens.
//
// Under load the group commit has records waiting and the hook is answered after it, as
// before: one fdatasync then covers dozens of records, where the journal's, on the event
// loop, would cover a turn's few.

import { randomInt } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, renameSync, writeSync, constants } from 'node:fs';
import { dirname } from 'node:path';
import { giveToStateDirOwner } from '../outbox/open';
import { syncDataNow } from '../outbox/sync';
import type { JournalMark } from '../outbox/outbox';
import { encodeEntry, encodeJournalHeader, entriesAfter, entryBytes, JOURNAL_HEADER_BYTES, readJournalHeader, type JournalEntry } from './hook-journal-format';

export const JOURNAL_FILE = 'hook-journal';
const ZEROS = Buffer.alloc(1024 * 1024);

/** What the state file knows of the journal (the Outbox). */
export interface JournalState {
  journalMark(): (JournalMark & { id: number }) | undefined;
  setJournalMark(mark: JournalMark & { id: number }): void;
}

/** An entry placed in the file: its bytes go to `offset`, the mark to the record's transaction. */
export interface PlacedEntry {
  offset: number;
  entry: Buffer;
  mark: JournalMark;
}

export class HookJournal {
  /** entries placed and not yet applied in a synced transaction, in order */
  private readonly unapplied: { seq: number; offset: number; end: number }[] = [];
  private head = JOURNAL_HEADER_BYTES;

  private constructor(
    readonly fd: number,
    private readonly size: number,
    private readonly epoch: number,
    private nextSeq: number,
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
      const bytes = Buffer.alloc(fstatSync(fd).size);
      readSync(fd, bytes, 0, bytes.length, 0);
      if (readJournalHeader(bytes) !== bytes.length) return [];
      return entriesAfter(bytes, mark.id, mark.seq, mark.end);
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

  /** A place for `bytes`, or undefined when the unapplied entries leave none. */
  place(bytes: Buffer): PlacedEntry | undefined {
    const length = entryBytes(bytes.length);
    const offset = this.offsetFor(length);
    if (offset === undefined) return undefined;
    const seq = this.nextSeq++;
    const end = offset + length;
    this.unapplied.push({ seq, offset, end });
    this.head = end;
    return { offset, entry: encodeEntry(this.epoch, seq, bytes), mark: { seq, end } };
  }

  private offsetFor(length: number): number | undefined {
    const first = this.unapplied[0];
    if (first === undefined) return JOURNAL_HEADER_BYTES + length <= this.size ? JOURNAL_HEADER_BYTES : undefined;
    if (this.head > first.offset) {
      if (this.head + length <= this.size) return this.head;
      return JOURNAL_HEADER_BYTES + length <= first.offset ? JOURNAL_HEADER_BYTES : undefined;
    }
    return this.head + length <= first.offset ? this.head : undefined;
  }

  /** The state file holds every entry up to `seq`, synced: their space may be written again. */
  applied(seq: number): void {
    let n = 0;
    while (n < this.unapplied.length && (this.unapplied[n] as { seq: number }).seq <= seq) n++;
    this.unapplied.splice(0, n);
    // with none left, the next entry goes to the start: the file's first pages stay in use
    if (this.unapplied.length === 0) this.head = JOURNAL_HEADER_BYTES;
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

/** Written whole beside it, synced, then renamed over it and the directory synced. */
function create(file: string, size: number): number {
  const temporary = `${file}.new`;
  const fd = openSync(temporary, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    writeSync(fd, encodeJournalHeader(size), 0, JOURNAL_HEADER_BYTES, 0);
    for (let at = JOURNAL_HEADER_BYTES; at < size; at += ZEROS.length) writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, size - at), at);
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
