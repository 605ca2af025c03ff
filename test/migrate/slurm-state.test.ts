// The state files of Slurm's jobcomp/kafka and jobcomp/elasticsearch: both layouts of
// jobcomp_kafka_state, a real elasticsearch_state from Slurm 22.05, and broken inputs.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_DATAERR, JobcompdError } from '../../src/errors';
import {
  encodeElasticsearchState,
  encodeKafkaState,
  parseSlurmState,
  SlurmStateError,
  type SavedRecord,
} from '../../src/migrate/slurm-state';
import { planSlurmStateImport } from '../../src/replay/sources';
import { optionsFor } from '../helpers/records';

const FIXTURES = join(__dirname, '../fixtures');
const finish = readFileSync(join(FIXTURES, 'kafka-25.05/job4242-finish.json'));
const start = readFileSync(join(FIXTURES, 'kafka-25.05/job4242-start.json'));
const esCapture = readFileSync(join(FIXTURES, 'slurm-state/elasticsearch_state.2jobs.bin'));

const KNOWN_VERSIONS: [number, string][] = [
  [0x2700, '23.02'],
  [0x2800, '23.11'],
  [0x2900, '24.05'],
  [0x2a00, '24.11'],
  [0x2b00, '25.05'],
  [0x2c00, '25.11'],
  [0x2d00, '26.05'],
];

function be16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}
function be32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}
function withCount(buf: Buffer, at: number, count: number): Buffer {
  const copy = Buffer.from(buf);
  copy.writeUInt32BE(count, at);
  return copy;
}

const finishAndStart: SavedRecord[] = [
  { event: 1, jobId: 4242, payload: finish },
  { event: 2, jobId: 4242, payload: start },
];
const kafka2505 = encodeKafkaState(0x2b00, finishAndStart);
const kafka2302 = encodeKafkaState(0x2700, [{ event: 1, jobId: 4242, payload: finish }]);

describe('jobcomp_kafka_state, 25.05+ layout (event, job id, payload)', () => {
  test('is written byte for byte like pack16/pack32/packstr', () => {
    const expected = Buffer.concat([
      be16(0x2b00), be32(2),
      be32(1), be32(4242), be32(finish.length + 1), finish, Buffer.from([0]),
      be32(2), be32(4242), be32(start.length + 1), start, Buffer.from([0]),
    ]);
    expect(kafka2505.equals(expected)).toBe(true);
  });

  test('round trips the spec sample finish and start records', () => {
    const state = parseSlurmState(kafka2505, 'jobcomp_kafka_state');
    expect(state).toMatchObject({ kind: 'jobcomp_kafka_state', protocolVersion: 0x2b00, slurmVersion: '25.05' });
    expect(state.records.map((r) => [r.event, r.jobId])).toEqual([[1, 4242], [2, 4242]]);
    expect(state.records[0]?.payload.equals(finish)).toBe(true);
    expect(state.records[1]?.payload.equals(start)).toBe(true);
    expect(encodeKafkaState(0x2b00, state.records).equals(kafka2505)).toBe(true);
  });
});

describe('jobcomp_kafka_state, 23.02-24.11 layout (job id, payload)', () => {
  test('is written without an event field', () => {
    const expected = Buffer.concat([be16(0x2700), be32(1), be32(4242), be32(finish.length + 1), finish, Buffer.from([0])]);
    expect(kafka2302.equals(expected)).toBe(true);
  });

  test('round trips; every record is a job finish', () => {
    const state = parseSlurmState(kafka2302);
    expect(state).toMatchObject({ kind: 'jobcomp_kafka_state', protocolVersion: 0x2700, slurmVersion: '23.02' });
    expect(state.records).toHaveLength(1);
    expect(state.records[0]).toMatchObject({ event: 1, jobId: 4242 });
    expect(state.records[0]?.payload.equals(finish)).toBe(true);
    expect(encodeKafkaState(0x2700, state.records).equals(kafka2302)).toBe(true);
  });

  test('cannot store a job start record', () => {
    expect(() => encodeKafkaState(0x2a00, finishAndStart)).toThrow('24.11 layout stores job finish records only');
  });
});

test.each(KNOWN_VERSIONS.map(([v, release]) => [`0x${v.toString(16)}`, v, release] as const))(
  'protocol version %s is read with the layout of its release',
  (_hex, version, release) => {
  const records = version >= 0x2b00 ? finishAndStart : finishAndStart.slice(0, 1);
  const state = parseSlurmState(encodeKafkaState(version, records));
  expect(state.protocolVersion).toBe(version);
  expect(state.slurmVersion).toBe(release);
  expect(state.records.map((r) => r.event)).toEqual(records.map((r) => r.event));
  expect(state.records.every((r, i) => r.payload.equals(records[i]!.payload))).toBe(true);
  },
);

test('an empty jobcomp_kafka_state (count 0) parses', () => {
  const state = parseSlurmState(encodeKafkaState(0x2c00, []));
  expect(state).toEqual({ kind: 'jobcomp_kafka_state', protocolVersion: 0x2c00, slurmVersion: '25.11', records: [] });
});

describe('elasticsearch_state', () => {
  test('the real Slurm 22.05 capture holds jobs 21 and 22', () => {
    const state = parseSlurmState(esCapture, 'elasticsearch_state');
    expect(state).toMatchObject({ kind: 'elasticsearch_state', protocolVersion: undefined, slurmVersion: undefined });
    expect(state.records.map((r) => [r.event, r.jobId])).toEqual([[1, 21], [1, 22]]);
    expect(state.records[0]?.payload.toString('latin1')).toMatch(/^\{"jobid":21,/);
    expect(state.records[1]?.payload.toString('latin1')).toMatch(/^\{"jobid":22,/);
    for (const r of state.records) {
      expect(r.payload.includes(0)).toBe(false);
      expect(r.payload.toString('latin1')).toMatch(/\}$/);
    }
  });

  test('payloads come back untouched: writing them again gives the captured bytes', () => {
    const state = parseSlurmState(esCapture);
    expect(encodeElasticsearchState(state.records.map((r) => r.payload)).equals(esCapture)).toBe(true);
  });

  test('content decides, not the file name', () => {
    expect(parseSlurmState(esCapture, 'jobcomp_kafka_state').kind).toBe('elasticsearch_state');
    expect(parseSlurmState(kafka2505, '/var/spool/slurm/elasticsearch_state.old').kind).toBe('jobcomp_kafka_state');
  });

  test('a body without a leading jobid has no job id', () => {
    const payloads = [Buffer.from('{"container":null,"jobid":7}'), Buffer.from('{"jobid":8}'), Buffer.from('{"jobid":99999999999}')];
    const state = parseSlurmState(encodeElasticsearchState(payloads));
    expect(state.records.map((r) => r.jobId)).toEqual([undefined, 8, undefined]);
    expect(state.records.every((r, i) => r.payload.equals(payloads[i]!))).toBe(true);
  });

  test('an empty elasticsearch_state (count 0) parses', () => {
    expect(parseSlurmState(Buffer.alloc(4))).toEqual({
      kind: 'elasticsearch_state',
      protocolVersion: undefined,
      slurmVersion: undefined,
      records: [],
    });
  });
});

describe('broken inputs', () => {
  const F = finish.length;
  const S = start.length;
  const cases: [string, Buffer, string | undefined, string[]][] = [
    ['empty file', Buffer.alloc(0), undefined, ['empty file (0 bytes)', 'jobcomp_kafka_state or elasticsearch_state']],
    ['empty file, named', Buffer.alloc(0), 'jobcomp_kafka_state', ['empty file (0 bytes): no jobcomp_kafka_state header']],
    [
      'truncated elasticsearch_state header',
      Buffer.from([0, 0, 0]),
      undefined,
      ['elasticsearch_state: header at byte 0: the file ends (3 bytes) before the 4-byte record count'],
    ],
    [
      'truncated jobcomp_kafka_state header',
      Buffer.from([0x2b, 0x00, 0x00, 0x00]),
      undefined,
      ['jobcomp_kafka_state (25.05 layout): header at byte 2: the file ends (4 bytes) before the 4-byte record count'],
    ],
    [
      'truncated record, 25.05 layout',
      kafka2505.subarray(0, kafka2505.length - 10),
      'jobcomp_kafka_state',
      [
        `jobcomp_kafka_state (25.05 layout): record 2 of 2 at byte ${6 + 12 + F + 1 + 8}: ` +
          `payload packstr length ${S + 1} runs past the end of the file (${kafka2505.length - 10} bytes)`,
      ],
    ],
    [
      'truncated record, 23.02 layout (2 bytes after the header)',
      kafka2302.subarray(0, 8),
      undefined,
      ['jobcomp_kafka_state (23.02 layout): header at byte 2: record count 1 needs at least 9 bytes, but only 2 follow the header'],
    ],
    [
      'truncated record, elasticsearch_state',
      esCapture.subarray(0, 1000),
      'elasticsearch_state',
      ['elasticsearch_state: record 2 of 2 at byte 801: JSON body packstr length 793 runs past the end of the file (1000 bytes)'],
    ],
    [
      'count too large, elasticsearch_state',
      withCount(esCapture, 0, 3),
      undefined,
      ['elasticsearch_state: record 3 of 3 at byte 1598: the file ends after 2 records, but the header says 3'],
    ],
    [
      'count too large, jobcomp_kafka_state',
      withCount(kafka2505, 2, 5),
      undefined,
      ['jobcomp_kafka_state (25.05 layout): record 3 of 5', 'the file ends after 2 records, but the header says 5'],
    ],
    [
      'count smaller than the data (trailing records)',
      withCount(esCapture, 0, 1),
      undefined,
      ['elasticsearch_state: after the last record at byte 801: 797 bytes of trailing data (the header says 1 record;'],
    ],
    [
      'trailing bytes, elasticsearch_state',
      Buffer.concat([esCapture, Buffer.from('\n\n')]),
      undefined,
      ['elasticsearch_state: after the last record at byte 1598: 2 bytes of trailing data', 'the file is 1600 bytes'],
    ],
    [
      'trailing bytes, jobcomp_kafka_state',
      Buffer.concat([kafka2302, Buffer.from([0])]),
      undefined,
      [`jobcomp_kafka_state (23.02 layout): after the last record at byte ${kafka2302.length}: 1 byte of trailing data`],
    ],
    [
      'unknown version',
      Buffer.concat([be16(0x2e00), kafka2505.subarray(2)]),
      undefined,
      ['jobcomp_kafka_state: header at byte 0: unknown protocol version 0x2E00', 'known: 0x2700 = 23.02', '0x2D00 = 26.05'],
    ],
    [
      'unknown version 22.05 (no jobcomp/kafka), named',
      Buffer.concat([be16(0x2600), kafka2505.subarray(2)]),
      '/var/spool/slurmctld/jobcomp_kafka_state.old',
      ['/var/spool/slurmctld/jobcomp_kafka_state.old: jobcomp_kafka_state: header at byte 0: unknown protocol version 0x2600'],
    ],
    [
      'not a state file at all, named',
      Buffer.from('hello world\n'),
      'elasticsearch_state',
      ['elasticsearch_state: header at byte 0: record count 1751477356 needs at least 8757386780 bytes, but only 8 follow the header'],
    ],
    [
      'hostile count 0xFFFFFFFF, jobcomp_kafka_state',
      Buffer.concat([be16(0x2b00), be32(0xffffffff), Buffer.alloc(20)]),
      undefined,
      ['jobcomp_kafka_state (25.05 layout): header at byte 2: record count 4294967295 needs at least 55834574835 bytes, but only 20 follow the header'],
    ],
    [
      'hostile count 0xFFFFFFFF, elasticsearch_state',
      Buffer.concat([be32(0xffffffff), Buffer.alloc(20)]),
      undefined,
      ['elasticsearch_state: header at byte 0: record count 4294967295 needs at least 21474836475 bytes, but only 20 follow the header'],
    ],
    [
      'unknown event',
      encodeKafkaState(0x2d00, finishAndStart).fill(0, 6, 9).fill(3, 9, 10),
      undefined,
      ['jobcomp_kafka_state (26.05 layout): record 1 of 2 at byte 6: unknown event 3 (expected 1 = job finish or 2 = job start)'],
    ],
    [
      'NULL payload',
      Buffer.concat([be32(1), be32(0), Buffer.alloc(4)]),
      undefined,
      ['elasticsearch_state: record 1 of 1 at byte 4: JSON body is a NULL string (packstr length 0)'],
    ],
    [
      'packstr without its NUL',
      Buffer.concat([be32(1), be32(3), Buffer.from('{}}')]),
      undefined,
      ['elasticsearch_state: record 1 of 1 at byte 4: JSON body packstr of length 3 does not end with a NUL'],
    ],
    [
      'packstr with a NUL inside',
      Buffer.concat([be32(1), be32(4), Buffer.from('{\0}\0', 'latin1')]),
      undefined,
      ['elasticsearch_state: record 1 of 1 at byte 4: JSON body packstr of length 4 has a NUL at byte 9, before its end'],
    ],
  ];

  test.each(cases)('%s', (_name, buf, fileName, fragments) => {
    let caught: unknown;
    try {
      parseSlurmState(buf, fileName);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SlurmStateError);
    expect(caught).toBeInstanceOf(JobcompdError);
    const err = caught as SlurmStateError;
    expect(err.code).toBe('E_SLURM_STATE');
    expect(err.exitCode).toBe(EXIT_DATAERR);
    for (const f of fragments) expect(err.message).toContain(f);
  });
});

describe('writers refuse what Slurm could not read back', () => {
  test('unknown version', () => {
    expect(() => encodeKafkaState(0x2600, [])).toThrow('unknown jobcomp_kafka_state protocol version 0x2600');
  });
  test('a record without a job id', () => {
    expect(() => encodeKafkaState(0x2b00, [{ event: 1, jobId: undefined, payload: finish }])).toThrow('need a job id');
  });
  test('a payload with a NUL', () => {
    expect(() => encodeElasticsearchState([Buffer.from('{\0}', 'latin1')])).toThrow('cannot contain a NUL');
  });
});

describe('importing a jobcomp_kafka_state in the RecordFormat layout (replay --from-slurm-state --dry-run)', () => {
  const file = encodeKafkaState(0x2800, [{ event: 1, jobId: 4242, payload: finish }]);

  it('23.11.0-23.11.6 re-produced a saved payload with its trailing NUL; 23.11.7+ without', () => {
    const planned = (release: string): Buffer[] =>
      planSlurmStateImport(file, 'jobcomp_kafka_state', optionsFor(release)).records.map((r) => (r.kind === 'publish' ? r.payload : Buffer.alloc(0)));
    expect(planned('23.11.6')).toEqual([Buffer.concat([finish, Buffer.alloc(1)])]);
    expect(planned('23.11.7')).toEqual([finish]);
  });

  it('a 26.05 file (protocol 0x2D00, the 25.05 layout) keeps events and payloads as saved', () => {
    const records = planSlurmStateImport(encodeKafkaState(0x2d00, [{ event: 2, jobId: 4242, payload: start }]), 'jobcomp_kafka_state', optionsFor('26.05')).records;
    expect(records).toEqual([{ kind: 'publish', event: 2, jobId: 4242, payload: start }]);
  });
});
