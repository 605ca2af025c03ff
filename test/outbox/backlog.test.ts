// A large backlog, in process, on real SQLite: what a start reads (never every row: the
// count is kept by the transactions, the integrity check stops at the outbox's ends), how
// delivered rows are deleted (runs of ids), and a damaged page inside the outbox, found when
// the dispatcher reaches it (docs/operations.md "Damaged state file").

import { once } from 'node:events';
import { closeSync, openSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StateCodes, StateError } from '../../src/errors';
import { consecutiveRuns, Outbox, type NewRecord } from '../../src/outbox/outbox';
import { STATE_FILE_NAME } from '../../src/outbox/open';
import { JobEvent } from '../../src/record/job-record';
import { tempDir } from '../helpers/cli';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function openOutbox(stateDir: string): Outbox {
  const outbox = Outbox.open(stateDir);
  cleanups.push(() => outbox.close());
  return outbox;
}

function record(jobId: number): NewRecord {
  return { event: JobEvent.finish, jobId, payload: Buffer.alloc(800, 0x61 + (jobId % 26)), source: 'http', receivedAt: Date.now() };
}

async function fill(outbox: Outbox, n: number, firstJobId = 1): Promise<number[]> {
  const results = await Promise.all(Array.from({ length: n }, (_, i) => outbox.append(record(firstJobId + i))));
  return results.map((r) => r.id);
}

test('delivered ids are deleted as runs of consecutive ids, never across a gap', () => {
  expect(consecutiveRuns([])).toEqual([]);
  expect(consecutiveRuns([7])).toEqual([[7, 7]]);
  expect(consecutiveRuns([5, 3, 4, 9, 10, 12])).toEqual([[3, 5], [9, 10], [12, 12]]);
  expect(consecutiveRuns([2 ** 40 + 1, 2 ** 40])).toEqual([[2 ** 40, 2 ** 40 + 1]]);
});

test('acknowledging every other row deletes exactly those rows; the rows in between stay', async () => {
  const dir = tempDir();
  const outbox = openOutbox(dir);
  const ids = await fill(outbox, 10);
  const acked = ids.filter((_, i) => i % 2 === 0);
  for (const id of acked) outbox.ack(id);
  await once(outbox, 'flushed');
  expect(outbox.pendingAfter(0, 100).map((r) => r.id)).toEqual(ids.filter((_, i) => i % 2 === 1));
  expect(outbox.backlogSize).toBe(5);
});

test('the backlog count survives restarts and follows appends, deliveries, refusals and requeues', async () => {
  const dir = tempDir();
  let outbox = Outbox.open(dir);
  const ids = await fill(outbox, 300);
  for (const id of ids.slice(0, 120)) outbox.ack(id);
  outbox.ack(ids[0] as number); // a second report for a row already deleted changes nothing
  outbox.quarantineRow(ids[200] as number, 'E_TEST', 'refused for good');
  outbox.close();

  outbox = Outbox.open(dir);
  expect(outbox.backlogSize).toBe(179);
  const [entry] = outbox.quarantineRows();
  outbox.requeueQuarantined(entry?.id as number, record(9999), Date.now());
  outbox.close();

  outbox = openOutbox(dir);
  expect(outbox.backlogSize).toBe(180);
  expect(outbox.stats().backlog).toBe(180);
  expect(outbox.count()).toBe(180); // the rows themselves, counted
});

test('a state file of schema 3 is counted once, when it is migrated', async () => {
  const dir = tempDir();
  const outbox = Outbox.open(dir);
  await fill(outbox, 25);
  outbox.close();
  const db = new Database(join(dir, STATE_FILE_NAME));
  db.prepare("DELETE FROM counters WHERE name = 'backlog'").run();
  db.pragma('user_version = 3');
  db.close();
  expect(openOutbox(dir).backlogSize).toBe(25);
});

test('a truncated state file is refused at start without reading every page', async () => {
  const dir = tempDir();
  const outbox = Outbox.open(dir);
  await fill(outbox, 2000);
  outbox.close();
  const file = join(dir, STATE_FILE_NAME);
  truncateSync(file, Math.floor(statSync(file).size * 0.9));
  expect(() => Outbox.open(dir)).toThrow(expect.objectContaining({ code: StateCodes.corrupt }));
});

test('a damaged page inside the outbox: the start succeeds, the rows before it are read, then the outbox fails with E_STATE_CORRUPT', async () => {
  const dir = tempDir();
  const writer = Outbox.open(dir);
  const ids = await fill(writer, 4000);
  writer.close(); // checkpoints every row into the database file

  // overwrite one page in the middle of the outbox's leaves with garbage
  const file = join(dir, STATE_FILE_NAME);
  const pageSize = 4096;
  const pages = statSync(file).size / pageSize;
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, Math.floor(pages / 2) * pageSize);
  closeSync(fd);

  const outbox = openOutbox(dir);
  expect(outbox.backlogSize).toBe(4000);
  const fatal = once(outbox, 'fatal') as Promise<[StateError]>;
  const read: number[] = [];
  for (let cursor = 0; ; ) {
    const rows = outbox.pendingAfter(cursor, 100);
    if (rows.length === 0) break;
    read.push(...rows.map((r) => r.id));
    cursor = rows[rows.length - 1]?.id as number;
  }
  const [err] = await fatal;
  expect(err.code).toBe(StateCodes.corrupt);
  expect(read.length).toBeGreaterThan(1000);
  expect(read.length).toBeLessThan(4000);
  expect(read).toEqual(ids.slice(0, read.length));
  // nothing is committed any more
  await expect(outbox.append(record(1))).rejects.toMatchObject({ code: StateCodes.corrupt });
});
