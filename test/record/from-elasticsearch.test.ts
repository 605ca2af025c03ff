// The jobcomp/elasticsearch input mapper: captured Slurm 22.05 bodies -> 25.05 payloads,
// 23.02+ bodies pass through unchanged, and every mapping rule of docs/record-mapping.md.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RecordCodes, RecordError } from '../../src/errors';
import { parseElasticsearchBody } from '../../src/record/from-elasticsearch';
import { serialize } from '../../src/record/serialize';
import { deriveTresRaw } from '../../src/record/tres';
import { optionsFor } from '../helpers/records';

const ES_DIR = join(__dirname, '../fixtures/es-22.05');
const KAFKA_DIR = join(__dirname, '../fixtures/kafka-25.05');
const AT_25_11 = optionsFor('25.11');

function convert(body: Buffer | string, sendScript = false): string {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return serialize(parseElasticsearchBody(buf), optionsFor('25.11', { sendScript })).toString('latin1');
}

/** A captured 22.05 body with some keys changed (undefined deletes the key). */
function captured(changes: Record<string, unknown> = {}): string {
  const body = JSON.parse(readFileSync(join(ES_DIR, 'job9-ok.json'), 'utf8')) as Record<string, unknown>;
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete body[k];
    else body[k] = v;
  }
  return JSON.stringify(body);
}

describe('captured Slurm 22.05 jobcomp/elasticsearch bodies (golden)', () => {
  const bodies = readdirSync(ES_DIR).filter((f) => f.endsWith('.json'));

  it('has the captured suite', () => {
    expect(bodies.length).toBeGreaterThanOrEqual(9);
  });

  it.each(bodies)('%s maps to its golden 25.05 payload', (name) => {
    const out = serialize(parseElasticsearchBody(readFileSync(join(ES_DIR, name))), AT_25_11);
    const expected = readFileSync(join(ES_DIR, 'expected', name.replace(/\.json$/, '.kafka.json')));
    expect(out.toString('latin1')).toBe(expected.toString('latin1'));
  });
});

describe('23.02+ bodies (same record builder as jobcomp/kafka)', () => {
  it.each(['job4242-finish.json'])('%s passes through byte for byte', (name) => {
    const body = readFileSync(join(KAFKA_DIR, name));
    expect(convert(body)).toBe(body.toString('latin1'));
  });

  it('keeps null and "" as sent, and drops dates older plugins wrote as "Unknown"', () => {
    const body = readFileSync(join(KAFKA_DIR, 'job4242-finish.json'), 'latin1')
      .replace('"container":null', '"container":""')
      .replace('"@start":"2025-06-02T10:00:00"', '"@start":"Unknown"');
    const out = convert(Buffer.from(body, 'latin1'));
    expect(out).toContain('"container":""');
    expect(out).not.toContain('"@start"');
    expect(out).toContain('"elapsed":0,');
  });
});

describe('bodies of each release, in each release\'s layout (RecordFormat)', () => {
  const LAYOUTS = join(__dirname, '../fixtures/kafka-layouts');
  const layoutRecord = (name: string): Buffer => readFileSync(join(LAYOUTS, name));
  /** jobcomp/elasticsearch POSTs the record jobcomp/kafka of its release builds, without a NUL */
  const bodyOf = (name: string): Buffer => {
    const record = layoutRecord(name);
    return record[record.length - 1] === 0 ? record.subarray(0, -1) : record;
  };
  const as = (body: Buffer, release: string, flags: { sendScript?: boolean; sendComment?: boolean } = {}): string =>
    serialize(parseElasticsearchBody(body), optionsFor(release, flags)).toString('latin1');

  it.each([
    ['26.05-send_comment.finish.json', '26.05', { sendComment: true }],
    ['24.05.1-24.11.finish.json', '24.11', {}],
    ['23.11.9+.finish.json', '23.11.9', {}],
    ['23.11.1-23.11.6.finish.json', '23.11.1', {}],
    ['23.02-23.11.0.finish.json', '23.02', {}],
  ])('a body like %s comes out as its release\'s record, byte for byte', (name, release, flags) => {
    expect(as(bodyOf(name), release, flags)).toBe(layoutRecord(name).toString('latin1'));
  });

  it('a 26.05 body: sluid, original_sluid, admin_comment from the body; comment only with send_comment', () => {
    const body = bodyOf('26.05-send_comment.finish.json');
    expect(as(body, '26.05')).toBe(layoutRecord('26.05.finish.json').toString('latin1'));
    expect(as(body, '25.11')).toBe(layoutRecord('25.05-25.11.finish.json').toString('latin1'));
  });

  it('a 24.11 body (with the script it always sent) as a 25.11 record: the script only with send_script', () => {
    const body = bodyOf('24.05.1-24.11.finish.json');
    expect(as(body, '25.11')).toBe(layoutRecord('25.05-25.11.finish.json').toString('latin1'));
    expect(as(body, '25.11', { sendScript: true })).toBe(layoutRecord('25.05-25.11-send_script.finish.json').toString('latin1'));
  });

  it('a body without a SLUID as a 26.05 record: no sluid key, nothing invented', () => {
    const out = as(bodyOf('25.05-25.11.finish.json'), '26.05', { sendComment: true });
    expect(out).toBe(layoutRecord('25.05-25.11.finish.json').toString('latin1'));
  });

  it('a 22.05 body in the 23.02 layout keeps its unguarded elapsed and negative @queue_wait', () => {
    const body = captured({ '@start': '2026-11-22T03:50:20', '@end': '2026-11-22T03:50:11', elapsed: -9, '@queue_wait': -4 });
    const out = as(Buffer.from(body), '23.02');
    expect(out).toContain('"@start":"Unknown","@end":"2026-11-22T03:50:11","elapsed":-9,');
    expect(out).toContain('"@queue_wait":-4,');
    expect(as(Buffer.from(body), '26.05')).toContain('"group_id":0,"@end":"2026-11-22T03:50:11","elapsed":0,');
  });
});

describe('22.05 mapping rules', () => {
  it('"" becomes null for container, nodes, alloc_node and partition', () => {
    const out = convert(captured({ container: '', nodes: '', alloc_node: '', partition: '' }));
    expect(out).toContain('"container":null');
    expect(out).toContain('"nodes":null');
    expect(out).toContain('"alloc_node":null');
    expect(out).toContain('"partition":null');
  });

  it('a failed user or group lookup ("nobody" for another id) becomes null', () => {
    const out = convert(captured({ username: 'nobody', user_id: 1234, groupname: 'nobody', group_id: 1234 }));
    expect(out).toContain('"username":null,"user_id":1234,"groupname":null,"group_id":1234');
  });

  it('the real nobody (65534) keeps its name', () => {
    expect(convert(captured({ username: 'nobody', user_id: 65534 }))).toContain('"username":"nobody","user_id":65534');
  });

  it('"Unknown" and NO_VAL/INFINITE dates are omitted; elapsed is then 0', () => {
    const out = convert(captured({ '@start': 'Unknown', '@eligible': '2106-02-07T06:28:15', elapsed: 1795319530 }));
    expect(out).not.toContain('"@start"');
    expect(out).not.toContain('"@eligible"');
    expect(out).toContain('"elapsed":0,');
    expect(out).toContain('"cpu_hours":0.0,');
  });

  it('a start after the end is left out, as jobcomp/kafka does; elapsed 0, cpu_hours 0.0', () => {
    const out = convert(captured({ '@start': '2026-11-22T03:52:10', '@end': '2026-11-22T03:52:09', elapsed: -1 }));
    expect(out).not.toContain('"@start"');
    expect(out).toContain('"@end":"2026-11-22T03:52:09","elapsed":0,');
    expect(out).toContain('"cpu_hours":0.0,');
  });

  it('negative @queue_wait is omitted', () => {
    expect(convert(captured({ '@queue_wait': -5 }))).not.toContain('@queue_wait');
  });

  it('cluster and qos written as "" (association without a name) are omitted', () => {
    const out = convert(captured({ cluster: '', qos: '' }));
    expect(out).not.toContain('"cluster"');
    expect(out).not.toContain('"qos"');
  });

  it('the batch script is dropped unless send_script', () => {
    expect(convert(captured())).not.toContain('"script"');
    expect(convert(captured(), true)).toContain('"script":"#!\\/bin\\/sh\\n# This script was created by sbatch --wrap.\\n\\nsleep 1\\n"');
  });

  it('derives tres_*_raw only when every TRES has a fixed id', () => {
    expect(convert(captured({ tres_req: 'cpu=64,mem=128G,node=2,billing=64' }))).toContain('"tres_req_raw":"1=64,2=131072,4=2,5=64"');
    // the allocated list also has energy (id 3) at NO_VAL64, as 25.11 and 26.05 print it for a job that ran
    expect(convert(captured({ tres_alloc: 'cpu=4,mem=8G,node=1,billing=4' }))).toContain('"tres_alloc_raw":"1=4,2=8192,3=18446744073709551614,4=1,5=4"');
    // many distinct strings, each asked twice: what is remembered stays right
    for (const round of [1, 2]) {
      for (let cpus = 1; cpus <= 3000; cpus += 1) expect([round, deriveTresRaw(`cpu=${cpus},node=1`, 'requested')]).toEqual([round, `1=${cpus},4=1`]);
    }
    // counts past 2^53 stay exact
    expect(convert(captured({ tres_req: 'cpu=18446744073709551615,mem=9999999E,node=007' }))).toContain('"tres_req_raw":"1=18446744073709551615,2=10995115178248372224,4=7"');
    const out = convert(captured({ tres_alloc: 'cpu=4,mem=8G,node=1,billing=4,gres/gpu=2' }));
    expect(out).not.toContain('tres_alloc_raw');
    expect(out).toContain('"tres_alloc":"cpu=4,mem=8G,node=1,billing=4,gres\\/gpu=2"');
  });

  it('keeps every input byte: raw UTF-8, invalid UTF-8, and \\u escapes as UTF-8', () => {
    const utf8Name = Buffer.from('"Jé€-\\u00e9"', 'utf8').toString('latin1'); // raw é and €, then an escaped é
    const invalidAccount = '"a\xff\xc3("'; // bytes 0xff and 0xc3 0x28 are not UTF-8
    const latin1 = captured({ job_name: 'NAME', account: 'ACCT' }).replace('"NAME"', utf8Name).replace('"ACCT"', invalidAccount);
    const out = serialize(parseElasticsearchBody(Buffer.from(latin1, 'latin1')), AT_25_11);
    expect(out.includes(Buffer.from('"job_name":"Jé€-é"', 'utf8'))).toBe(true);
    expect(out.includes(Buffer.from([0x22, 0x61, 0xff, 0xc3, 0x28, 0x22]))).toBe(true);
  });
});

describe('bodies that cannot be mapped', () => {
  const fails = (body: string): RecordError => {
    try {
      parseElasticsearchBody(Buffer.from(body));
    } catch (err) {
      if (err instanceof RecordError) return err;
      throw err;
    }
    throw new Error('expected a RecordError');
  };

  it.each([
    ['not JSON', '{"jobid":', RecordCodes.notJson, undefined],
    ['not an object', '[1,2]', RecordCodes.notObject, undefined],
    ['jobid missing', captured({ jobid: undefined }), RecordCodes.missingField, 'jobid'],
    ['jobid a string', captured({ jobid: '9' }), RecordCodes.badField, 'jobid'],
    ['negative user_id', captured({ user_id: -1 }), RecordCodes.badField, 'user_id'],
    ['fractional total_cpus', captured({ total_cpus: 1.5 }), RecordCodes.badField, 'total_cpus'],
    ['state missing', captured({ state: undefined }), RecordCodes.missingField, 'state'],
    ['a date that is no date', captured({ '@end': 'yesterday' }), RecordCodes.badField, '@end'],
    ['job_name a number', captured({ job_name: 7 }), RecordCodes.badField, 'job_name'],
    // Found by test/hostile/fuzz-http: describing such a value once overflowed the stack.
    ['jobid nested 10,000 arrays deep', captured({ jobid: undefined }).replace('{', `{"jobid":${'['.repeat(10_000)}${']'.repeat(10_000)},`), RecordCodes.badField, 'jobid'],
    ['a date after year 9999', captured({ '@end': '10000-01-01T00:00:00' }), RecordCodes.badField, '@end'],
  ])('%s', (_what, body, code, field) => {
    const err = fails(body);
    expect(err.code).toBe(code);
    expect(err.field).toBe(field);
    if (field) expect(err.message).toContain(`"${field}"`);
  });

  it('remembers the job id for the log line when the body showed one', () => {
    expect(fails(captured({ state: 5 })).jobId).toBe(9);
  });
});
