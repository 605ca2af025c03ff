// The hook journal in process: the entries the listener's thread writes, pinned by golden
// bytes; where they go in the file; what a restart reads back; a failed write. The real
// listener (native/hook-socket) with real Unix sockets, no daemon. The daemon's side
// (answers from the journal, and records committed from it after kill -9) is in
// test/integration/hook-journal.test.ts.

import { mkdtempSync, openSync, readFileSync, statSync, closeSync, constants } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as hookListener from 'jobcompd-hook-socket';
import type { HookListenerHandle } from 'jobcompd-hook-socket';
import { crc32c } from '../../src/kafka-protocol/crc32c';
import type { JournalMark } from '../../src/outbox/outbox';
import { encodeJournalHeader, entriesAfter, ENTRY_HEADER_BYTES, JOURNAL_HEADER_BYTES, journalInMemory, readEntry, readJournalHeader } from '../../src/sources/hook-journal-format';
import { HookJournal, type JournalState } from '../../src/sources/hook-journal';
import { Answer, encodeAnswer, encodeRequest } from '../../src/sources/hook-protocol';

const EPOCH = 0x0102030405;

/** An entry as the format says (hook-journal-format.ts); pinned by the golden bytes the listener writes below. */
function entryOf(epoch: number, seq: number, bytes: Buffer): Buffer {
  const entry = Buffer.alloc(ENTRY_HEADER_BYTES + bytes.length);
  entry.write('JCJ1', 0, 'latin1');
  entry.writeBigUInt64BE(BigInt(epoch), 8);
  entry.writeBigUInt64BE(BigInt(seq), 16);
  entry.writeUInt32BE(bytes.length, 24);
  bytes.copy(entry, ENTRY_HEADER_BYTES);
  entry.writeUInt32BE(crc32c(entry.subarray(8)), 4);
  return entry;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'jobcompd-journal-'));
}

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

interface Input {
  bytes: Buffer;
  seq: number;
  end: number;
}

/** The real listener with a journal; inputs not answered from it are answered "A" as the socket source would. */
class Listener {
  readonly inputs: Input[] = [];
  /** answeredAt of each input answered from the journal */
  readonly answeredAt: number[] = [];
  readonly journalErrors: string[] = [];
  /** onHeld's counts (journal.batch) */
  readonly heldNotices: number[] = [];
  private noticeWaiters: (() => void)[] = [];
  readonly handle: HookListenerHandle;
  readonly path: string;

  constructor(journal: hookListener.HookJournalFile) {
    this.path = join(tempDir(), 'hook.sock');
    this.handle = hookListener.listen(
      this.path,
      { maxMessageBytes: 1024 * 1024, timeoutMs: 10_000, maxConnections: 8, allowedUids: [process.getuid?.() ?? 0], journal },
      (id, bytes, _ended, seq, end, answeredAt) => {
        this.inputs.push({ bytes, seq, end });
        if (seq === 0) hookListener.answer(this.handle, id, encodeAnswer(Answer.stored, 'committed'), false);
        else this.answeredAt.push(answeredAt);
      },
      () => undefined,
      (message) => this.journalErrors.push(message),
      (held) => {
        this.heldNotices.push(held);
        for (const wake of this.noticeWaiters.splice(0)) wake();
      },
    );
  }

  /** Resolves once onHeld has been called `n` times. */
  async notices(n: number): Promise<number[]> {
    while (this.heldNotices.length < n) await new Promise<void>((resolve) => this.noticeWaiters.push(resolve));
    return this.heldNotices;
  }

  /** take(): the inputs it handed over before it returned. */
  take(): Input[] {
    const before = this.inputs.length;
    hookListener.take(this.handle);
    return this.inputs.slice(before);
  }

  /** One hook: its message, and the answer it read before the end of the stream. */
  send(environment: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = connect(this.path, () => socket.write(encodeRequest(environment)));
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve(Buffer.concat(chunks)) : reject(err)));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => hookListener.close(this.handle, resolve));
  }
}

function journalFile(size: number): { file: string; fd: number } {
  const file = join(tempDir(), 'hook-journal');
  const journal = HookJournal.open(file, size, new MemoryState());
  return { file, fd: journal.fd };
}

test('an entry, byte for byte, as the listener writes it', async () => {
  const { file, fd } = journalFile(65536);
  const l = new Listener({ fd, bytes: 65536, epoch: EPOCH, nextSeq: 7, sync: true });
  const answer = await l.send(Buffer.from('JOBID=7\0', 'latin1'));
  await l.close();
  closeSync(fd);
  expect(answer.toString('latin1', 0, 1)).toBe(Answer.stored);
  expect(l.inputs).toEqual([{ bytes: encodeRequest(Buffer.from('JOBID=7\0', 'latin1')), seq: 7, end: JOURNAL_HEADER_BYTES + 36 }]);
  expect(readFileSync(file).subarray(JOURNAL_HEADER_BYTES, JOURNAL_HEADER_BYTES + 36).toString('hex')).toBe(
    [
      '4a434a31', // "JCJ1"
      'd43343d5', // CRC-32C (Castagnoli) of everything after it
      '0000000102030405', // epoch
      '0000000000000007', // seq
      '00000008', // length
      '4a4f4249443d3700', // "JOBID=7\0"
    ].join(''),
  );
  expect(entryOf(EPOCH, 7, Buffer.from('JOBID=7\0', 'latin1'))).toEqual(readFileSync(file).subarray(JOURNAL_HEADER_BYTES, JOURNAL_HEADER_BYTES + 36));
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

const readEntryIn = (file: Buffer, epoch: number, offset: number, seq: number) => readEntry(journalInMemory(file), epoch, offset, seq);

describe('reading an entry back', () => {
  const entry = entryOf(EPOCH, 3, Buffer.from('JOBID=3\0', 'latin1'));
  const file = fileWith(8192, [[JOURNAL_HEADER_BYTES, entry]]);

  test('whole, with its epoch and sequence number: its bytes, and where the next begins', () => {
    expect(readEntryIn(file, EPOCH, JOURNAL_HEADER_BYTES, 3)).toEqual({ seq: 3, offset: JOURNAL_HEADER_BYTES, end: JOURNAL_HEADER_BYTES + entry.length, bytes: Buffer.from('JOBID=3\0', 'latin1') });
  });

  test('of another run (epoch), another sequence number, torn or changed: not an entry', () => {
    expect(readEntryIn(file, EPOCH + 1, JOURNAL_HEADER_BYTES, 3)).toBeUndefined();
    expect(readEntryIn(file, EPOCH, JOURNAL_HEADER_BYTES, 4)).toBeUndefined();
    expect(readEntryIn(file.subarray(0, JOURNAL_HEADER_BYTES + entry.length - 1), EPOCH, JOURNAL_HEADER_BYTES, 3)).toBeUndefined();
    const changed = Buffer.from(file);
    changed.writeUInt8(changed.readUInt8(JOURNAL_HEADER_BYTES + entry.length - 2) ^ 1, JOURNAL_HEADER_BYTES + entry.length - 2);
    expect(readEntryIn(changed, EPOCH, JOURNAL_HEADER_BYTES, 3)).toBeUndefined();
  });
});

test('after the mark: entries in sequence, on at the start when the next is not where the last ended, up to the first missing', () => {
  const a = entryOf(EPOCH, 11, Buffer.from('a'));
  const b = entryOf(EPOCH, 12, Buffer.from('b'));
  const c = entryOf(EPOCH, 13, Buffer.from('c'));
  const stale = entryOf(EPOCH - 1, 14, Buffer.from('stale, of the run before'));
  const at = 8192 - a.length - b.length - 10; // c does not fit after b: it is at the start
  const file = fileWith(8192, [[JOURNAL_HEADER_BYTES, c], [JOURNAL_HEADER_BYTES + c.length, stale], [at, a], [at + a.length, b]]);
  expect(entriesAfter(journalInMemory(file), EPOCH, 10, at).map((e) => e.bytes.toString())).toEqual(['a', 'b', 'c']);
  expect(entriesAfter(journalInMemory(file), EPOCH, 12, at + a.length + b.length).map((e) => e.seq)).toEqual([13]);
  expect(entriesAfter(journalInMemory(file), EPOCH, 13, JOURNAL_HEADER_BYTES + c.length)).toEqual([]);
});

describe('the journal of a run', () => {
  test('made whole at its size, with a new epoch in the state file after the last entry applied', () => {
    const file = join(tempDir(), 'hook-journal');
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

  test('entries go one after the other, back to the start when none waits, and never over one not applied', async () => {
    const { fd } = journalFile(65536);
    const l = new Listener({ fd, bytes: 65536, epoch: EPOCH, nextSeq: 1, sync: true });
    const big = Buffer.alloc(21_000, 0x41);
    const entry = ENTRY_HEADER_BYTES + big.length;
    const offsets = (): number[] => l.inputs.map((i) => (i.seq === 0 ? 0 : i.end - (i.bytes.length - 8) - ENTRY_HEADER_BYTES));
    for (let i = 0; i < 3; i++) expect((await l.send(big)).toString('latin1', 0, 1)).toBe(Answer.stored);
    // 4,096 + 3 x 21,028 > 65,536, and the start is taken: the third is answered by JavaScript
    expect(offsets()).toEqual([JOURNAL_HEADER_BYTES, JOURNAL_HEADER_BYTES + entry, 0]);
    hookListener.applied(l.handle, 1);
    await l.send(big); // where the first was
    await l.send(Buffer.alloc(1)); // ends where the second begins: no room
    hookListener.applied(l.handle, 3);
    await l.send(Buffer.alloc(1)); // none waits: at the start
    await l.close();
    closeSync(fd);
    expect(offsets().slice(3)).toEqual([JOURNAL_HEADER_BYTES, 0, JOURNAL_HEADER_BYTES]);
    expect(l.inputs.map((i) => i.seq)).toEqual([1, 2, 0, 3, 0, 4]);
  });

  test('a message that arrives while another connection is open is answered by JavaScript, after the state file', async () => {
    const { fd } = journalFile(65536);
    const l = new Listener({ fd, bytes: 65536, epoch: EPOCH, nextSeq: 1, sync: true });
    const other = connect(l.path);
    await new Promise((resolve) => other.once('connect', resolve));
    await l.send(Buffer.from('JOBID=1\0', 'latin1'));
    other.destroy();
    await l.close();
    closeSync(fd);
    expect(l.inputs.map((i) => i.seq)).toEqual([0]);
  });

  test('a restart reads back what the state file had not applied, and the next run goes on numbering after it', async () => {
    const file = join(tempDir(), 'hook-journal');
    const state = new MemoryState();
    const journal = HookJournal.open(file, 65536, state);
    const l = new Listener({ fd: journal.fd, bytes: journal.size, epoch: journal.epoch, nextSeq: journal.firstSeq, sync: true });
    for (const env of ['JOBID=1\0', 'JOBID=2\0', 'JOBID=3\0']) await l.send(Buffer.from(env, 'latin1'));
    await l.close();
    journal.close();
    state.apply(l.inputs[0] as JournalMark); // the first is in the state file

    const left = HookJournal.leftOver(file, state);
    expect(left.map((e) => e.bytes.toString('latin1'))).toEqual(['JOBID=2\0', 'JOBID=3\0']);
    state.apply(left[1] as JournalMark); // committed at start
    const next = HookJournal.open(file, 65536, state);
    expect(HookJournal.leftOver(file, state)).toEqual([]); // a new epoch: nothing of the run before reads as new
    expect(next.firstSeq).toBe(4);
    next.close();
  });

  test('a file of another size is made again at the size asked for', () => {
    const file = join(tempDir(), 'hook-journal');
    const state = new MemoryState();
    HookJournal.open(file, 65536, state).close();
    HookJournal.open(file, 131072, state).close();
    expect(statSync(file).size).toBe(131072);
  });
});

describe('answered entries held for take() (journal.batch)', () => {
  const job = (n: number): Buffer => Buffer.from(`JOBID=${n}\0`, 'latin1');

  test('take() hands them over in order before it returns; onHeld hears of the first and of every batch-th; close hands over the rest', async () => {
    const { fd } = journalFile(65536);
    const l = new Listener({ fd, bytes: 65536, epoch: EPOCH, nextSeq: 1, sync: true, batch: 3 });
    const from = Date.now();
    for (const n of [1, 2]) expect((await l.send(job(n))).toString('latin1', 0, 1)).toBe(Answer.stored);
    expect(await l.notices(1)).toEqual([1]);
    expect(l.take().map((i) => i.seq)).toEqual([1, 2]);
    for (const n of [3, 4, 5, 6]) await l.send(job(n));
    expect(await l.notices(3)).toEqual([1, 1, 3]);
    await l.close();
    closeSync(fd);
    expect(l.inputs.map((i) => i.bytes.toString('latin1', 8))).toEqual([1, 2, 3, 4, 5, 6].map((n) => job(n).toString('latin1')));
    expect(l.heldNotices).toEqual([1, 1, 3]);
    for (const at of l.answeredAt) expect(at).toBeGreaterThanOrEqual(from - 1);
    for (const at of l.answeredAt) expect(at).toBeLessThanOrEqual(Date.now());
  });

  test('an input the journal does not answer brings the held ones first, without take()', async () => {
    const { fd } = journalFile(8192);
    const l = new Listener({ fd, bytes: 8192, epoch: EPOCH, nextSeq: 1, sync: true, batch: 3 });
    await l.send(job(1));
    await l.send(Buffer.alloc(5000, 0x41)); // no room for it in the journal: answered after JavaScript sees it
    expect(l.inputs.map((i) => i.seq)).toEqual([1, 0]);
    await l.close();
    closeSync(fd);
  });
});

test('a failed write: the hook gets no answer (it spools), onJournalError says so, and the journal is used no more', async () => {
  const { file } = journalFile(65536);
  const readOnly = openSync(file, constants.O_RDONLY);
  const l = new Listener({ fd: readOnly, bytes: 65536, epoch: EPOCH, nextSeq: 1, sync: true });
  expect((await l.send(Buffer.from('JOBID=1\0', 'latin1'))).length).toBe(0);
  expect((await l.send(Buffer.from('JOBID=2\0', 'latin1'))).toString('latin1', 0, 1)).toBe(Answer.stored);
  await l.close();
  closeSync(readOnly);
  expect(l.journalErrors).toEqual([expect.stringContaining('hook journal')]);
  expect(l.inputs.map((i) => [i.seq, i.bytes.toString('latin1', 8)])).toEqual([[0, 'JOBID=2\0']]);
});
