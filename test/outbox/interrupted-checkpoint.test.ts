// A checkpoint cut short by kill -9: SQLite copies the log's pages into the database file
// in page order, so page 1, whose header holds the new page count, is written before the
// pages that make the file that long. The file is then shorter than its header says, and
// the pages past its end are in the log. Such a file is whole and must open with every
// record; a file that is short of pages the log does not hold is refused as truncated.

import { copyFileSync, mkdirSync, openSync, closeSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StateCodes, StateError } from '../../src/errors';
import { CHECKPOINT_AFTER_CHANGES, Outbox, type NewRecord } from '../../src/outbox/outbox';
import { STATE_FILE_NAME } from '../../src/outbox/open';
import { committedWalPages } from '../../src/outbox/wal-pages';
import { JobEvent } from '../../src/record/job-record';
import { tempDir } from '../helpers/cli';

const RECORDS = 200;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function record(jobId: number): NewRecord {
  return { event: JobEvent.finish, jobId, payload: Buffer.alloc(2000, 0x61 + (jobId % 26)), source: 'http', receivedAt: Date.now() };
}

/**
 * The state directory as kill -9 would leave it during the checkpoint of a transaction that
 * grew the file: copied while the outbox is open (its records only in the log), then page 1
 * of the copy overwritten with its newest version from the log.
 */
async function killedDuringCheckpoint(): Promise<string> {
  const live = tempDir();
  const outbox = Outbox.open(live);
  cleanups.push(() => outbox.close());
  expect(RECORDS).toBeLessThan(CHECKPOINT_AFTER_CHANGES); // no checkpoint of its own
  await Promise.all(Array.from({ length: RECORDS }, (_, i) => outbox.append(record(9000 + i))));
  const copy = join(tempDir(), 'state');
  mkdirSync(copy);
  for (const suffix of ['', '-wal']) copyFileSync(join(live, STATE_FILE_NAME + suffix), join(copy, STATE_FILE_NAME + suffix));

  const wal = readFileSync(join(copy, `${STATE_FILE_NAME}-wal`));
  const pageSize = wal.readUInt32BE(8);
  let newestPageOne: Buffer | undefined;
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    if (wal.readUInt32BE(at) === 1) newestPageOne = wal.subarray(at + 24, at + 24 + pageSize);
  }
  if (newestPageOne === undefined) throw new Error('page 1 is not in the log');
  const fd = openSync(join(copy, STATE_FILE_NAME), 'r+');
  writeSync(fd, newestPageOne, 0, pageSize, 0);
  closeSync(fd);
  const headerPages = newestPageOne.readUInt32BE(28);
  expect(statSync(join(copy, STATE_FILE_NAME)).size).toBeLessThan(headerPages * pageSize);
  return copy;
}

test('a state file whose checkpoint was cut short opens with every record', async () => {
  const dir = await killedDuringCheckpoint();
  const outbox = Outbox.open(dir);
  cleanups.push(() => outbox.close());
  expect(outbox.backlogSize).toBe(RECORDS);
  expect(outbox.pendingAfter(0, 1000).map((r) => r.jobId)).toEqual(Array.from({ length: RECORDS }, (_, i) => 9000 + i));
});

test('without the log, the same file is refused as truncated (E_STATE_CORRUPT)', async () => {
  const dir = await killedDuringCheckpoint();
  // the log cut after its header: the pages past the file's end are nowhere
  const walFile = join(dir, `${STATE_FILE_NAME}-wal`);
  const header = readFileSync(walFile).subarray(0, 32);
  const fd = openSync(walFile, 'w');
  writeSync(fd, header);
  closeSync(fd);
  let error: unknown;
  try {
    Outbox.open(dir).close();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(StateError);
  expect((error as StateError).code).toBe(StateCodes.corrupt);
});

test('only committed frames with valid checksums count as in the log', async () => {
  const dir = await killedDuringCheckpoint();
  const walFile = join(dir, `${STATE_FILE_NAME}-wal`);
  const whole = committedWalPages(walFile);
  expect(whole?.pages.has(1)).toBe(true);
  // one flipped byte in the first frame's page breaks the checksum chain from there on
  const fd = openSync(walFile, 'r+');
  writeSync(fd, Buffer.from([readFileSync(walFile)[32 + 24 + 100] as number ^ 0xff]), 0, 1, 32 + 24 + 100);
  closeSync(fd);
  expect(committedWalPages(walFile)?.pages.size).toBe(0);
});
