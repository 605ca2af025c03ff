// The duplicate check (DedupWindow) in the state file, in process on real SQLite: what it
// answers, across a schema upgrade too. The daemon-level view is in test/integration
// (http-source.test.ts, hook.test.ts) and test/kafka-listener/records.test.ts.

import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { dedupKeyOf } from '../../src/ingest';
import { Outbox, type NewRecord } from '../../src/outbox/outbox';
import { STATE_FILE_NAME } from '../../src/outbox/open';
import { JobEvent } from '../../src/record/job-record';
import { tempDir } from '../helpers/cli';

const FIXTURES = join(__dirname, '..', 'fixtures', 'state');
/** Longer than the fixture's age on any day this suite runs: its rows are within the window. */
const CENTURY_MS = 100 * 365 * 86_400_000;

const opened: Outbox[] = [];
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

function open(dir: string, dedupWindowMs: number): Outbox {
  const outbox = Outbox.open(dir, { dedupWindowMs });
  opened.push(outbox);
  return outbox;
}

/** The records test/fixtures/state/schema-4.sqlite holds (jobs 1-3, job 1 delivered). */
function fixtureRecord(jobId: number): NewRecord {
  const payload = Buffer.from(`{"jobid":${jobId},"state":"COMPLETED"}`);
  return { event: JobEvent.finish, jobId, payload, source: 'http', receivedAt: Date.now(), dedupKey: dedupKeyOf(JobEvent.finish, payload) };
}

function schema4StateDir(): string {
  const dir = tempDir();
  copyFileSync(join(FIXTURES, 'schema-4.sqlite'), join(dir, STATE_FILE_NAME));
  return dir;
}

test('a record sent again within the window is answered with the first copy, delivered or not; other records are stored', async () => {
  const outbox = open(tempDir(), 60_000);
  const first = await outbox.append(fixtureRecord(7));
  outbox.ack(first.id);
  const [again, other] = await Promise.all([outbox.append(fixtureRecord(7)), outbox.append(fixtureRecord(8))]);
  expect(again).toEqual({ id: first.id, duplicate: true });
  expect(other.duplicate).toBe(false);
  expect(outbox.stats()).toMatchObject({ backlog: 1, delivered: 1, deduplicated: 1 });
});

test('after an upgrade from schema 4, the records the old file had seen are still caught as duplicates', async () => {
  const outbox = open(schema4StateDir(), CENTURY_MS);
  expect(outbox.backlogSize).toBe(2);
  // job 1 was delivered before the upgrade, jobs 2 and 3 wait: each resend is the first copy's row
  expect(await outbox.append(fixtureRecord(1))).toEqual({ id: 1, duplicate: true });
  expect(await outbox.append(fixtureRecord(3))).toEqual({ id: 3, duplicate: true });
  expect(outbox.wouldDeduplicate(2, fixtureRecord(2).dedupKey as Buffer)).toBe(true);
  // and a new record is checked, then stored, as before
  const fresh = await outbox.append(fixtureRecord(4));
  expect(fresh.duplicate).toBe(false);
  expect(await outbox.append(fixtureRecord(4))).toEqual({ id: fresh.id, duplicate: true });
  expect(outbox.stats()).toMatchObject({ backlog: 3, deduplicated: 3 });
});

test("the old file's rows leave with the window, as every row does", async () => {
  const dir = schema4StateDir();
  const outbox = open(dir, 1000); // the fixture's rows are older than a second
  expect((await outbox.append(fixtureRecord(1))).duplicate).toBe(false);
  expect(outbox.wouldDeduplicate(1, fixtureRecord(1).dedupKey as Buffer)).toBe(true); // its new row
  expect(outbox.wouldDeduplicate(2, fixtureRecord(2).dedupKey as Buffer)).toBe(false);
});
