// Hook records answered from the hook journal, in the Ingest, on a real state file
// (docs/delivery-guarantees.md#the-hook-journal): they wait, unmapped, here or held in the
// source until taken, and are committed together; any other input sends them on first, so
// that rows keep the order of arrival;
// a flush maps them with the configuration in effect before a reload changes it. The
// listener's side is test/sources/hook-journal.test.ts, the daemon's
// test/integration/hook-journal.test.ts.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { parseJobCompParams, type JobCompParams } from '../../src/config/jobcomp-params';
import { Ingest, JOURNALED_BATCH, type AcceptResult } from '../../src/ingest';
import { Outbox } from '../../src/outbox/outbox';
import { JOURNAL_HEADER_BYTES } from '../../src/sources/hook-journal-format';
import { DEFAULT_RECORD_FORMAT } from '../../src/record/record-format';
import { tempDir } from '../helpers/cli';
import { capture, withJobId } from '../helpers/hook';

const ES_BODY = readFileSync(join(__dirname, '..', 'fixtures', 'es-22.05', readdirSync(join(__dirname, '..', 'fixtures', 'es-22.05')).find((f) => f.endsWith('.json')) as string));

const opened: Outbox[] = [];
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

function ingestInto(params: () => JobCompParams = () => parseJobCompParams('', { file: '(test)' }).params): { outbox: Outbox; ingest: Ingest } {
  const outbox = Outbox.open(tempDir(), { dedupWindowMs: 0 });
  opened.push(outbox);
  outbox.setJournalMark({ id: 7, seq: 0, end: JOURNAL_HEADER_BYTES });
  return { outbox, ingest: new Ingest(outbox, params, DEFAULT_RECORD_FORMAT, pino({ level: 'silent' })) };
}

/** A hook's message body, as the socket hands it over: NUL-separated KEY=VALUE. */
function environment(prefix: 'jobcomp.' | 'prolog_ctld.', jobId: number): Buffer {
  const env = withJobId(capture(prefix), prefix === 'jobcomp.' ? 'JOBID' : 'SLURM_JOB_ID', jobId);
  return Buffer.from([...env].map(([k, v]) => `${k}=${v}\0`).join(''), 'latin1');
}

const mark = (seq: number): { seq: number; end: number } => ({ seq, end: JOURNAL_HEADER_BYTES + seq * 100 });
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('records answered from the journal one after another are committed together, with the last entry marked applied', async () => {
  const { outbox, ingest } = ingestInto();
  let transactions = 0;
  outbox.on('flushed', () => (transactions += 1));
  const accepted: Promise<unknown>[] = [];
  for (let seq = 1; seq <= 3; seq++) {
    accepted.push(ingest.acceptJournaledHook(environment('jobcomp.', 500 + seq), mark(seq)));
    // turns enough for a lone record's transaction to start
    for (let t = 0; t < 3; t++) await nextTurn();
  }
  await Promise.all(accepted);
  expect(transactions).toBe(1);
  expect(outbox.pendingAfter(0, 10).map((r) => r.jobId)).toEqual([501, 502, 503]);
  expect(outbox.journalMark()).toEqual({ id: 7, ...mark(3) });
});

test(`${JOURNALED_BATCH} waiting are sent on at once; the next one waits for a batch of its own`, async () => {
  const { outbox, ingest } = ingestInto();
  const batches: number[] = [];
  outbox.on('committed', (rows: number) => batches.push(rows));
  const accepted = Array.from({ length: JOURNALED_BATCH + 1 }, (_, i) => ingest.acceptJournaledHook(environment('jobcomp.', 1000 + i), mark(i + 1)));
  await Promise.all(accepted);
  expect(batches).toEqual([JOURNALED_BATCH, 1]);
});

test('any other input sends the waiting ones on first: rows keep the order of arrival', async () => {
  const { outbox, ingest } = ingestInto();
  const first = ingest.acceptJournaledHook(environment('jobcomp.', 601), mark(1));
  const second = ingest.acceptElasticsearch(ES_BODY, 'http');
  const third = ingest.acceptJournaledHook(environment('jobcomp.', 603), mark(2));
  const fourth = ingest.acceptHookEnvironment(environment('jobcomp.', 604), 'socket');
  const results = await Promise.all([first, second, third, fourth]);
  const ids = results.map((r) => (r.kind === 'stored' ? r.id : -1));
  expect(ids).toEqual([...ids].sort((a, b) => a - b));
  expect(outbox.pendingAfter(0, 10).map((r) => r.jobId)).toEqual([601, results[1]?.kind === 'stored' ? results[1].jobId : -1, 603, 604]);
});

test('flushed before a reload, they are mapped with the configuration they came under', async () => {
  let params = parseJobCompParams('enable_job_start', { file: '(test)' }).params;
  const { ingest } = ingestInto(() => params);
  const start = ingest.acceptJournaledHook(environment('prolog_ctld.', 701), mark(1));
  ingest.flushJournaled();
  params = parseJobCompParams('', { file: '(test)' }).params; // start records off from now
  expect(await start).toEqual(expect.objectContaining({ kind: 'stored', jobId: 701 }));
  expect(await ingest.acceptJournaledHook(environment('prolog_ctld.', 702), mark(2))).toEqual(expect.objectContaining({ kind: 'ignored', jobId: 702 }));
});

test('records a source holds (the hook listener) are taken when the wait ends, before any other input, and at once when a batch waits', async () => {
  const { outbox, ingest } = ingestInto();
  const held: number[] = [];
  const accepted: Promise<AcceptResult>[] = [];
  let seq = 0;
  const stopTaking = ingest.holdJournaled(() => {
    for (const job of held.splice(0)) accepted.push(ingest.acceptJournaledHook(environment('jobcomp.', job), mark(++seq)));
  });
  const committed = (): Promise<number> => new Promise((resolve) => outbox.once('committed', resolve));

  held.push(801, 802);
  const first = committed();
  ingest.journaledWaiting(1); // the first held: the wait starts
  expect(await first).toBe(2);

  held.push(803);
  ingest.journaledWaiting(1);
  const es = ingest.acceptElasticsearch(ES_BODY, 'http');
  expect(held).toEqual([]);

  held.push(...Array.from({ length: JOURNALED_BATCH }, (_, i) => 900 + i));
  ingest.journaledWaiting(JOURNALED_BATCH);
  expect(held).toEqual([]);

  await Promise.all([...accepted, es]);
  stopTaking();
  const jobs = outbox.pendingAfter(0, 100).map((r) => r.jobId);
  expect(jobs.slice(0, 3)).toEqual([801, 802, 803]);
  expect(jobs.slice(4)).toEqual(Array.from({ length: JOURNALED_BATCH }, (_, i) => 900 + i));
  expect(outbox.journalMark()).toEqual({ id: 7, ...mark(JOURNALED_BATCH + 3) });
});
