// What the listener's records become in the state file, in process on real SQLite:
// topic, key and headers kept for the upstream producer, job id and event from the
// plugin's JSON, what cannot be published unchanged quarantined, resends stored once, and
// a state file of the schema before the listener migrated with its rows intact.

import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { Ingest } from '../../src/ingest';
import { decodeHeaders, encodeHeaders, unpublishableHeader } from '../../src/outbox/message-headers';
import { Outbox } from '../../src/outbox/outbox';
import { SCHEMA_VERSION } from '../../src/outbox/schema';
import { JobEvent } from '../../src/record/job-record';
import { identifyPluginRecord } from '../../src/record/plugin-record';
import { DEFAULT_RECORD_FORMAT } from '../../src/record/record-format';
import { parseJobCompParams } from '../../src/config/jobcomp-params';
import { tempDir } from '../helpers/cli';

const FIXTURES = join(__dirname, '..', 'fixtures');
const END_RECORD = readFileSync(join(FIXTURES, 'slurm-26.05', 'kafka', 'ok.json'));
const START_RECORD = readFileSync(join(FIXTURES, 'slurm-26.05', 'kafka-start', 'ok.json'));

const opened: Outbox[] = [];
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

function ingestInto(stateDir: string, dedupWindowMs = 60_000): { outbox: Outbox; ingest: Ingest } {
  const outbox = Outbox.open(stateDir, { dedupWindowMs });
  opened.push(outbox);
  const params = parseJobCompParams('', { file: '(test)' }).params;
  return { outbox, ingest: new Ingest(outbox, () => params, DEFAULT_RECORD_FORMAT, pino({ level: 'silent' })) };
}

test('a plugin record keeps its topic, key and headers, with the job id and event of its JSON', async () => {
  const { outbox, ingest } = ingestInto(tempDir());
  const headers = [{ key: 'origin', value: Buffer.from('slurmctld') }];
  const end = await ingest.acceptProduced({ topic: 'hpc-jobs', key: Buffer.from([1, 0, 2]), value: END_RECORD, headers });
  const start = await ingest.acceptProduced({ topic: 'hpc-starts', key: null, value: START_RECORD, headers: [] });
  expect(end).toMatchObject({ kind: 'stored', jobId: 1, event: JobEvent.finish });
  expect(start).toMatchObject({ kind: 'stored', jobId: 1, event: JobEvent.start });
  await new Promise((r) => setImmediate(r));
  const rows = outbox.pendingAfter(0, 10);
  expect(rows.map((r) => ({ topic: r.topic, key: r.key, headers: decodeHeaders(r.headers), payload: r.payload }))).toEqual([
    { topic: 'hpc-jobs', key: Buffer.from([1, 0, 2]), headers, payload: END_RECORD },
    { topic: 'hpc-starts', key: null, headers: [], payload: START_RECORD },
  ]);
});

test('the plugin resending a record within DedupWindow stores it once; the same value to another topic is another record', async () => {
  const { ingest } = ingestInto(tempDir());
  const message = { topic: 'hpc-jobs', key: null, value: END_RECORD, headers: [] };
  expect((await ingest.acceptProduced(message)).kind).toBe('stored');
  expect((await ingest.acceptProduced(message)).kind).toBe('duplicate');
  expect((await ingest.acceptProduced({ ...message, topic: 'other' })).kind).toBe('stored');
});

test('a value that is not a plugin record is stored and published all the same, as job 0', async () => {
  const { ingest } = ingestInto(tempDir());
  expect(await ingest.acceptProduced({ topic: 't', key: null, value: Buffer.from('plain text'), headers: [] })).toMatchObject({ kind: 'stored', jobId: 0 });
});

test('what node-rdkafka cannot publish unchanged is quarantined with its topic, key and headers, not altered', async () => {
  const { outbox, ingest } = ingestInto(tempDir());
  const binary = [{ key: 'bin', value: Buffer.from([0xff, 0x00]) }];
  expect(await ingest.acceptProduced({ topic: 't', key: Buffer.from('k'), value: END_RECORD, headers: binary })).toMatchObject({ kind: 'quarantined', code: 'E_KAFKA_UNPUBLISHABLE' });
  expect(await ingest.acceptProduced({ topic: 't', key: null, value: null, headers: [] })).toMatchObject({ kind: 'quarantined', code: 'E_KAFKA_UNPUBLISHABLE' });
  const [first] = outbox.quarantineRows();
  expect({ topic: first?.topic, key: first?.key, headers: decodeHeaders(first?.headers ?? null), jobId: first?.jobId, payload: first?.raw }).toEqual({
    topic: 't',
    key: Buffer.from('k'),
    headers: binary,
    jobId: 1,
    payload: END_RECORD,
  });
});

test('a state file of schema 2 (before the listener) is migrated; its rows go to the event topic as before', () => {
  const dir = tempDir();
  copyFileSync(join(FIXTURES, 'state', 'schema-2.sqlite'), join(dir, 'jobcompd.sqlite'));
  const { outbox } = ingestInto(dir);
  expect(outbox.pendingAfter(0, 10)).toEqual([expect.objectContaining({ jobId: 42, topic: null, key: null, headers: null, payload: Buffer.from('{"jobid":42}') })]);
  expect(outbox.quarantineRows()).toEqual([expect.objectContaining({ reasonCode: 'E_RECORD_NOT_JSON', raw: Buffer.from('bad'), topic: null })]);
  expect(SCHEMA_VERSION).toBe(5);
});

test('headers round-trip through the state file encoding, null values included', () => {
  const headers = [
    { key: 'a', value: Buffer.from('x') },
    { key: 'é', value: null },
    { key: '', value: Buffer.alloc(0) },
  ];
  expect(decodeHeaders(encodeHeaders(headers))).toEqual(headers);
  expect(encodeHeaders([])).toBeNull();
  expect(unpublishableHeader([{ key: 'a', value: Buffer.from('ünï') }])).toBeUndefined();
  expect(unpublishableHeader([{ key: 'a', value: Buffer.from([0xc3]) }])).toMatch(/"a"/);
});

test('plugin records are told apart by "@end"; a trailing NUL is allowed; anything else is not a plugin record', () => {
  expect(identifyPluginRecord(END_RECORD)).toEqual({ jobId: 1, event: JobEvent.finish });
  expect(identifyPluginRecord(Buffer.concat([START_RECORD, Buffer.from([0])]))).toEqual({ jobId: 1, event: JobEvent.start });
  for (const other of ['[1]', '{"jobid":"1"}', '{"jobid":-1}', 'null', '{']) expect(identifyPluginRecord(Buffer.from(other))).toBeUndefined();
});
