// The outbox's group commit, in process, on real SQLite and a real (small) filesystem:
// what concurrent appends share, when a row becomes visible to the dispatcher, and what a
// commit that fails answers. The daemon-level view is test/faults/storage.test.ts.

import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { StateError } from '../../src/errors';
import { GATHER_MAX_MS, GATHER_MAX_TURNS, Outbox, type OutboxRow, type AppendResult, type NewRecord } from '../../src/outbox/outbox';
import { JobEvent } from '../../src/record/job-record';
import { tempDir } from '../helpers/cli';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function openOutbox(stateDir: string, dedupWindowMs = 0): Outbox {
  const outbox = Outbox.open(stateDir, { dedupWindowMs });
  cleanups.push(() => outbox.close());
  return outbox;
}

function record(jobId: number, payload = Buffer.from(`{"jobid":${jobId}}`)): NewRecord {
  return { event: JobEvent.finish, jobId, payload, source: 'http', receivedAt: Date.now() };
}

/** A state directory on a tmpfs of `size`, so that a commit can really run out of space. */
function smallFilesystem(size: string): string {
  const dir = join(tempDir('jobcompd-outbox-'), 'state');
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  cleanups.push(() => execFileSync('umount', ['-l', dir]));
  return dir;
}

test('appends made together share one transaction and one sync, and each gets its own row', async () => {
  const outbox = openOutbox(tempDir());
  let transactions = 0;
  outbox.on('flushed', () => (transactions += 1));
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => outbox.append(record(1000 + i))));
  expect(new Set(results.map((r) => r.id)).size).toBe(50);
  expect(results.every((r) => !r.duplicate)).toBe(true);
  expect(transactions).toBe(1);
  expect(outbox.backlogSize).toBe(50);
});

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Event-loop turns until the outbox has committed `rows` rows in all. */
async function turnsUntilCommitted(outbox: Outbox, rows: number): Promise<number> {
  let turns = 0;
  while (outbox.backlogSize < rows) {
    await nextTurn();
    turns += 1;
  }
  return turns;
}

test('a transaction waits for the records its sources have begun to receive', async () => {
  const outbox = openOutbox(tempDir());
  let arriving = 2;
  // no time limit here, only the turns: two turns of a busy machine can take GATHER_MAX_MS
  outbox.gatherArriving(() => arriving, 60_000);
  let transactions = 0;
  outbox.on('flushed', () => (transactions += 1));
  const first = outbox.append(record(1500));
  // the other two arrive over the next turns, as hook connections accepted, then read, do
  await nextTurn();
  arriving -= 1;
  const second = outbox.append(record(1501));
  await nextTurn();
  arriving -= 1;
  const third = outbox.append(record(1502));
  await Promise.all([first, second, third]);
  expect(transactions).toBe(1);
});

test('a record that never comes holds a transaction for GATHER_MAX_TURNS turns at most', async () => {
  const outbox = openOutbox(tempDir());
  outbox.gatherArriving(() => 1);
  const appended = outbox.append(record(1600));
  const turns = await turnsUntilCommitted(outbox, 1);
  expect(turns).toBeLessThanOrEqual(GATHER_MAX_TURNS + 2);
  await appended;
});

test(`a record that never comes holds a transaction for the time limit at most (GATHER_MAX_MS=${GATHER_MAX_MS})`, async () => {
  const outbox = openOutbox(tempDir());
  outbox.gatherArriving(() => 1, 0);
  const appended = outbox.append(record(1700));
  const turns = await turnsUntilCommitted(outbox, 1);
  expect(turns).toBe(1);
  await appended;
});

/** Three records committed together, answered: three senders expected back. */
async function answerThree(outbox: Outbox, firstJobId: number): Promise<void> {
  await Promise.all([0, 1, 2].map((i) => outbox.append(record(firstJobId + i))));
}

test('the senders a transaction answered are waited for: their next records share one transaction', async () => {
  const outbox = openOutbox(tempDir());
  // no time limit here: a busy machine can take GATHER_MAX_MS between two turns
  outbox.gatherArriving(() => 0, 60_000);
  await answerThree(outbox, 1800);
  let transactions = 0;
  outbox.on('flushed', () => (transactions += 1));
  // each sender sends again in a turn of its own, as senders on another core do
  const again: Promise<AppendResult>[] = [];
  for (let i = 0; i < 3; i++) {
    again.push(outbox.append(record(1810 + i)));
    await nextTurn();
  }
  await Promise.all(again);
  expect(transactions).toBe(1);
});

test('the next record of a lone sender is committed at once', async () => {
  const outbox = openOutbox(tempDir());
  outbox.gatherArriving(() => 0, 60_000);
  await outbox.append(record(1900));
  const next = outbox.append(record(1901));
  const turns = await turnsUntilCommitted(outbox, 2);
  expect(turns).toBe(1);
  await next;
});

test('senders that do not come back hold the next transaction until the time limit, then it commits', async () => {
  const outbox = openOutbox(tempDir());
  outbox.gatherArriving(() => 0, 50);
  await answerThree(outbox, 2000);
  const lone = outbox.append(record(2010));
  const turns = await turnsUntilCommitted(outbox, 4);
  expect(turns).toBeGreaterThan(1);
  expect((await lone).duplicate).toBe(false);
});

test('a row is offered to the dispatcher only once its transaction is synced', async () => {
  const outbox = openOutbox(tempDir());
  const appended = outbox.append(record(2000));
  expect(outbox.pendingAfter(0, 10)).toEqual([]);
  const { id } = await appended;
  expect(outbox.pendingAfter(0, 10).map((r) => r.id)).toEqual([id]);
});

test('each row is read exactly once, in id order, as stored, whether it comes from the file or from memory', async () => {
  const dir = tempDir();
  const first = openOutbox(dir, 60_000);
  await Promise.all([1, 2, 3, 4, 5].map((i) => first.append(record(i))));
  first.close();

  const outbox = openOutbox(dir, 60_000);
  const read: OutboxRow[] = [];
  let cursor = 0;
  const readAll = (limit: number): void => {
    for (let rows: OutboxRow[]; (rows = outbox.pendingAfter(cursor, limit)).length > 0; ) {
      read.push(...rows);
      cursor = rows[rows.length - 1]?.id ?? cursor;
    }
  };
  const listener = { topic: 'site-topic', key: Buffer.from('k'), headers: Buffer.from([0, 0, 0, 0]) };
  await Promise.all([6, 7].map((i) => outbox.append(record(i))));
  readAll(2); // the backlog, from the file, in pages
  await Promise.all([outbox.append(record(8)), outbox.append({ ...record(9), ...listener }), outbox.append({ ...record(10), dedupKey: Buffer.alloc(32, 1) })]);
  await outbox.append({ ...record(10), dedupKey: Buffer.alloc(32, 1) }); // a duplicate: no new row
  readAll(2);
  await Promise.all(Array.from({ length: 5000 }, (_, i) => outbox.append(record(100 + i)))); // more than memory keeps
  readAll(1000);
  await outbox.append(record(11));
  readAll(1000);

  const expected = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ...Array.from({ length: 5000 }, (_, i) => 100 + i), 11];
  expect(read.map((r) => r.jobId)).toEqual(expected);
  expect(new Set(read.map((r) => r.id)).size).toBe(read.length);
  for (const row of read) expect(row).toEqual(outbox.get(row.id));
});

test('within DedupWindow the same record is stored once; the copy is answered with the first row', async () => {
  const outbox = openOutbox(tempDir(), 60_000);
  const key = Buffer.alloc(32, 7);
  const first = await outbox.append({ ...record(3000), dedupKey: key });
  const again = await outbox.append({ ...record(3000), dedupKey: key });
  expect(again).toEqual({ id: first.id, duplicate: true });
  expect(outbox.backlogSize).toBe(1);
});

test('a commit that runs out of space refuses its new records with E_STATE_DISK_FULL, keeps what was committed, and recovers', async () => {
  const stateDir = smallFilesystem('2m');
  const outbox = openOutbox(stateDir);
  const kept = await outbox.append(record(4000));
  const filler = join(stateDir, 'filler');
  const free = statfsSync(stateDir);
  writeFileSync(filler, Buffer.alloc(free.bavail * free.bsize - 64 * 1024, 1)); // 64 KB stay free

  const errors: StateError[] = [];
  outbox.on('commit-error', (err: StateError) => errors.push(err));
  const big = Buffer.alloc(256 * 1024, 0x61);
  let refusal: unknown;
  const accepted: AppendResult[] = [];
  for (let jobId = 4001; refusal === undefined && jobId < 4100; jobId++) {
    await outbox.append(record(jobId, big)).then(
      (r) => accepted.push(r),
      (err: unknown) => (refusal = err),
    );
  }
  expect(refusal).toBeInstanceOf(StateError);
  expect((refusal as StateError).code).toBe('E_STATE_DISK_FULL');
  expect(errors.map((e) => e.code)).toContain('E_STATE_DISK_FULL');
  expect(outbox.lastCommitFailed).toBe(true);
  expect(outbox.backlogSize).toBe(1 + accepted.length);

  // an ack that comes in while the disk is full is kept and committed once there is room
  outbox.ack(kept.id);
  rmSync(filler);
  const after = await outbox.append(record(4200));
  expect(after.duplicate).toBe(false);
  if (outbox.get(kept.id) !== undefined) await once(outbox, 'flushed');
  expect(outbox.get(kept.id)).toBeUndefined();
  expect(outbox.backlogSize).toBe(1 + accepted.length);
});
