// The hook journal in process: its format pinned by golden bytes, where entries go in the
// file, and what a restart reads back. The daemon's side (answers from the journal, and
// records committed from it after kill -9) is in test/integration/hook-journal.test.ts.

import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JournalMark } from '../../src/outbox/outbox';
import { encodeEntry, encodeJournalHeader, entriesAfter, JOURNAL_HEADER_BYTES, readEntry, readJournalHeader } from '../../src/sources/hook-journal-format';
import { HookJournal, type JournalState } from '../../src/sources/hook-journal';

const EPOCH = 0x0102030405;

test('an entry, byte for byte', () => {
  expect(encodeEntry(EPOCH, 7, Buffer.from('JOBID=7\0', 'latin1')).toString('hex')).toBe(
    [
      '4a434a31', // "JCJ1"
      'd43343d5', // CRC-32C (Castagnoli) of everything after it
      '0000000102030405', // epoch
      '0000000000000007', // seq
      '00000008', // length
      '4a4f4249443d3700', // "JOBID=7\0"
    ].join(''),
  );
});

test('a file header, byte for byte', () => {
  const head = encodeJournalHeader(65536);
  expect(head.subarray(0, 16).toString('hex')).toBe('4a434a46' + '00000001' + '0000000000010000');
  expect(head.length).toBe(JOURNAL_HEADER_BYTES);
  expect(head.subarray(16).every((b) => b === 0)).toBe(true);
  expect(readJournalHeader(head)).toBe(65536);
  expect(readJournalHeader(Buffer.from('JCJF\0\0\0\x02' + '\0'.repeat(8), 'latin1'))).toBeUndefined();
});

function fileWith(size: number, entries: [number, Buffer][]): Buffer {
  const file = Buffer.alloc(size);
  encodeJournalHeader(size).copy(file);
  for (const [offset, entry] of entries) entry.copy(file, offset);
  return file;
}

describe('reading an entry back', () => {
  const entry = encodeEntry(EPOCH, 3, Buffer.from('JOBID=3\0', 'latin1'));
  const file = fileWith(8192, [[JOURNAL_HEADER_BYTES, entry]]);

  test('whole, with its epoch and sequence number: its bytes, and where the next begins', () => {
    expect(readEntry(file, EPOCH, JOURNAL_HEADER_BYTES, 3)).toEqual({ seq: 3, offset: JOURNAL_HEADER_BYTES, end: JOURNAL_HEADER_BYTES + entry.length, bytes: Buffer.from('JOBID=3\0', 'latin1') });
  });

  test('of another run (epoch), another sequence number, torn or changed: not an entry', () => {
    expect(readEntry(file, EPOCH + 1, JOURNAL_HEADER_BYTES, 3)).toBeUndefined();
    expect(readEntry(file, EPOCH, JOURNAL_HEADER_BYTES, 4)).toBeUndefined();
    expect(readEntry(file.subarray(0, JOURNAL_HEADER_BYTES + entry.length - 1), EPOCH, JOURNAL_HEADER_BYTES, 3)).toBeUndefined();
    const changed = Buffer.from(file);
    changed.writeUInt8(changed.readUInt8(JOURNAL_HEADER_BYTES + entry.length - 2) ^ 1, JOURNAL_HEADER_BYTES + entry.length - 2);
    expect(readEntry(changed, EPOCH, JOURNAL_HEADER_BYTES, 3)).toBeUndefined();
  });
});

test('after the mark: entries in sequence, on at the start when the next is not where the last ended, up to the first missing', () => {
  const a = encodeEntry(EPOCH, 11, Buffer.from('a'));
  const b = encodeEntry(EPOCH, 12, Buffer.from('b'));
  const c = encodeEntry(EPOCH, 13, Buffer.from('c'));
  const stale = encodeEntry(EPOCH - 1, 14, Buffer.from('stale, of the run before'));
  const at = 8192 - a.length - b.length - 10; // c does not fit after b: it is at the start
  const file = fileWith(8192, [[JOURNAL_HEADER_BYTES, c], [JOURNAL_HEADER_BYTES + c.length, stale], [at, a], [at + a.length, b]]);
  expect(entriesAfter(file, EPOCH, 10, at).map((e) => e.bytes.toString())).toEqual(['a', 'b', 'c']);
  expect(entriesAfter(file, EPOCH, 12, at + a.length + b.length).map((e) => e.seq)).toEqual([13]);
  expect(entriesAfter(file, EPOCH, 13, JOURNAL_HEADER_BYTES + c.length)).toEqual([]);
});

/** The state file's part, in memory: the mark, and the entries its transactions applied. */
class MemoryState implements JournalState {
  mark: (JournalMark & { id: number }) | undefined;
  journalMark(): (JournalMark & { id: number }) | undefined {
    return this.mark;
  }
  setJournalMark(mark: JournalMark & { id: number }): void {
    this.mark = { ...mark };
  }
  apply(m: JournalMark): void {
    if (this.mark) this.mark = { ...this.mark, ...m };
  }
}

function tempFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'jobcompd-journal-')), 'hook-journal');
}

describe('the journal of a run', () => {
  test('made whole at its size, with a new epoch in the state file after the last entry applied', () => {
    const file = tempFile();
    const state = new MemoryState();
    const journal = HookJournal.open(file, 65536, state);
    journal.close();
    expect(statSync(file).size).toBe(65536);
    expect(readJournalHeader(readFileSync(file))).toBe(65536);
    expect(state.mark).toEqual({ id: expect.any(Number), seq: 0, end: JOURNAL_HEADER_BYTES });
    const first = state.mark?.id;
    HookJournal.open(file, 65536, state).close();
    expect(state.mark?.id).not.toBe(first);
  });

  test('entries go one after the other, back to the start when none waits, and never over one not applied', () => {
    const state = new MemoryState();
    const journal = HookJournal.open(tempFile(), 65536, state);
    const bytes = Buffer.alloc(21_000, 0x41);
    const one = journal.place(bytes);
    const two = journal.place(bytes);
    expect([one?.offset, two?.offset]).toEqual([JOURNAL_HEADER_BYTES, one?.mark.end]);
    expect(journal.place(bytes)).toBeUndefined(); // 4,096 + 3 x 21,028 > 65,536, and the start is taken
    journal.applied(one?.mark.seq ?? 0);
    const three = journal.place(bytes);
    expect(three?.offset).toBe(JOURNAL_HEADER_BYTES); // where `one` was
    expect(journal.place(Buffer.alloc(1))).toBeUndefined(); // `three` ends where `two` begins
    journal.applied(three?.mark.seq ?? 0);
    expect(journal.place(Buffer.alloc(1))?.offset).toBe(JOURNAL_HEADER_BYTES);
    expect([one, two, three].map((p) => p?.mark.seq)).toEqual([1, 2, 3]);
    journal.close();
  });

  test('a restart reads back what the state file had not applied, and the next run goes on numbering after it', () => {
    const file = tempFile();
    const state = new MemoryState();
    const journal = HookJournal.open(file, 65536, state);
    const placed = ['JOBID=1\0', 'JOBID=2\0', 'JOBID=3\0'].map((env) => journal.place(Buffer.from(env, 'latin1')));
    const image = readFileSync(file);
    for (const p of placed) p?.entry.copy(image, p.offset); // what the listener writes
    writeFileSync(file, image);
    journal.close();
    state.apply(placed[0]?.mark as JournalMark); // the first is in the state file

    const left = HookJournal.leftOver(file, state);
    expect(left.map((e) => e.bytes.toString('latin1'))).toEqual(['JOBID=2\0', 'JOBID=3\0']);
    state.apply(left[1] as JournalMark); // committed at start
    const next = HookJournal.open(file, 65536, state);
    expect(HookJournal.leftOver(file, state)).toEqual([]); // a new epoch: nothing of the run before reads as new
    expect(next.place(Buffer.from('x'))?.mark.seq).toBe(4);
    next.close();
  });

  test('a file of another size is made again at the size asked for', () => {
    const file = tempFile();
    const state = new MemoryState();
    HookJournal.open(file, 65536, state).close();
    HookJournal.open(file, 131072, state).close();
    expect(statSync(file).size).toBe(131072);
  });
});
