// Golden tests for the jobcomp/kafka serializer (spec §7, §8): the exact bytes.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { JobEvent, type JobRecord } from '../../src/record/job-record';
import { cpuHours, serialize } from '../../src/record/serialize';
import { jsonCDouble, jsonCString } from '../../src/record/json-c';
import { utf8ToByteString } from '../../src/record/bytes';
import { optionsFor } from '../helpers/records';

/** The spec's samples are 25.05/25.11 records. */
const AT_25_11 = optionsFor('25.11');
const fixture = (name: string): Buffer => readFileSync(join(__dirname, '../fixtures/kafka-25.05', name));
const t = (iso: string): number => Date.parse(`${iso}Z`) / 1000;

/** Spec §8: batch job 4242 of alice on hpc1. */
function job4242(event: JobEvent): JobRecord {
  return {
    event,
    jobid: 4242,
    container: null,
    username: 'alice',
    user_id: 1001,
    groupname: 'physics',
    group_id: 2001,
    start: t('2025-06-02T10:00:00'),
    end: event === JobEvent.finish ? t('2025-06-02T11:02:03') : undefined,
    elapsed: 3723,
    partition: 'compute',
    alloc_node: 'login01',
    nodes: 'node[001-002]',
    total_cpus: 64,
    total_nodes: 2,
    derived_ec: '0:0',
    exit_code: '0:0',
    state: 'COMPLETED',
    failed_node: null,
    pack_job_id: 0,
    pack_job_offset: 0,
    het_job_id: 0,
    het_job_offset: 0,
    priority: 10873,
    submit: t('2025-06-02T09:58:41'),
    eligible: t('2025-06-02T09:58:41'),
    queue_wait: 79,
    work_dir: '/home/alice/sim',
    std_out: '/home/alice/sim/%x-%j.out',
    cluster: 'hpc1',
    qos: 'normal',
    ntasks: 64,
    ntasks_per_node: 0,
    ntasks_per_tres: 0,
    cpus_per_task: 1,
    time_limit: 7200,
    job_name: 'lammps_run',
    tres_req_raw: '1=64,2=131072,4=2,5=64',
    tres_req: 'cpu=64,mem=128G,node=2,billing=64',
    tres_alloc_raw: '1=64,2=131072,4=2,5=64',
    tres_alloc: 'cpu=64,mem=128G,node=2,billing=64',
    account: 'physics',
    parent_accounts: '/root/physics/physics',
  };
}

describe('jobcomp/kafka payload bytes (spec §8 samples)', () => {
  it('reproduces the job-end message byte for byte (1017 bytes)', () => {
    const out = serialize(job4242(JobEvent.finish), AT_25_11);
    expect(out.length).toBe(1017);
    expect(out.equals(fixture('job4242-finish.json'))).toBe(true);
  });

  it('reproduces the job-start message byte for byte (843 bytes): finish-only keys gone, state null', () => {
    const out = serialize(job4242(JobEvent.start), AT_25_11);
    expect(out.length).toBe(843);
    expect(out.equals(fixture('job4242-start.json'))).toBe(true);
  });

  it('ends without a NUL or newline and uses no whitespace between tokens', () => {
    const out = serialize(job4242(JobEvent.finish), AT_25_11).toString('latin1');
    expect(out.endsWith('}')).toBe(true);
    expect(out).not.toMatch(/[,:] /);
  });
});

describe('cpu_hours: float32 arithmetic printed like json-c (spec §7.1 table)', () => {
  it.each([
    [7, 4, '0.0077777779661118984'],
    [3723, 4, '4.1366667747497559'],
    [3723, 64, '66.186668395996094'],
    [3600, 1, '1.0'],
    [0, 64, '0.0'],
    [60, 1, '0.01666666753590107'],
    [1, 1, '0.00027777778450399637'], // captured from a real 22.05 slurmctld
    [84, 1, '0.023333333432674408'], // captured (TIMEOUT job)
  ])('%i s x %i cpus -> %s', (elapsed, cpus, expected) => {
    expect(jsonCDouble(cpuHours(elapsed, cpus))).toBe(expected);
  });
});

describe('json-c string escaping', () => {
  const esc = (s: string): string => jsonCString(utf8ToByteString(s));

  it('escapes / as \\/, and " and \\', () => {
    expect(esc('/home/a "b" c\\d')).toBe('"\\/home\\/a \\"b\\" c\\\\d"');
  });

  it('uses the short escapes for \\b \\f \\n \\r \\t', () => {
    expect(esc('\b\f\n\r\t')).toBe('"\\b\\f\\n\\r\\t"');
  });

  it('writes other control bytes as lowercase \\u00xx', () => {
    expect(esc('\u0000\u0001\u001b\u001f')).toBe('"\\u0000\\u0001\\u001b\\u001f"');
  });

  it('passes DEL and UTF-8 through raw', () => {
    expect(Buffer.from(esc('\u007fé€😀'), 'latin1').toString('utf8')).toBe('"\u007fé€😀"');
  });

  it('passes invalid UTF-8 bytes through unchanged', () => {
    const bytes = Buffer.from([0x61, 0xff, 0xc3, 0x28, 0x80]).toString('latin1');
    expect(Buffer.from(jsonCString(bytes), 'latin1')).toEqual(Buffer.from([0x22, 0x61, 0xff, 0xc3, 0x28, 0x80, 0x22]));
  });

  it('escapes keys and values alike inside a record', () => {
    const r = job4242(JobEvent.finish);
    r.job_name = 'a"b/c\n';
    const out = serialize(r, AT_25_11).toString('latin1');
    expect(out).toContain('"job_name":"a\\"b\\/c\\n"');
  });
});

describe('presence rules', () => {
  it('omits optional keys that are undefined and writes null for always-present ones', () => {
    const r = job4242(JobEvent.finish);
    r.start = undefined;
    r.nodes = null;
    delete r.priority;
    delete r.parent_accounts;
    const out = serialize(r, AT_25_11).toString('latin1');
    expect(out).not.toContain('"@start"');
    expect(out).toContain('"nodes":null');
    expect(out).not.toContain('"priority"');
    expect(out).not.toContain('"parent_accounts"');
  });

  it('writes array fields right after cpu_hours, only for array tasks', () => {
    const r = job4242(JobEvent.finish);
    r.array = { job_id: 4240, task_id: 2 };
    expect(serialize(r, AT_25_11).toString('latin1')).toContain('"cpu_hours":66.186668395996094,"array_job_id":4240,"array_task_id":2,"pack_job_id":0');
  });

  it('writes script only when the record carries one, before parent_accounts', () => {
    const r = job4242(JobEvent.finish);
    r.script = '#!/bin/sh\necho hi\n';
    expect(serialize(r, optionsFor('25.11', { sendScript: true })).toString('latin1')).toContain('"account":"physics","script":"#!\\/bin\\/sh\\necho hi\\n","parent_accounts"');
  });
});

describe('one golden record per layout (RecordFormat)', () => {
  const layoutFixture = (name: string): Buffer => readFileSync(join(__dirname, '../fixtures/kafka-layouts', name));

  /** job 4242 with everything a 26.05 input can carry */
  function full(event: JobEvent): JobRecord {
    return {
      ...job4242(event),
      sluid: 's0CJ4W8K2ZQ6M1',
      original_sluid: 's0CJ4W8K2ZQ6M1',
      admin_comment: 'moved to [ab]',
      comment: 'run "7" of 9',
      script: '#!/bin/bash\nsrun lmp\n',
    };
  }

  it.each([
    ['26.05', { sendComment: true }, '26.05-send_comment.finish.json'],
    ['26.05.3', {}, '26.05.finish.json'],
    ['25.11.7', {}, '25.05-25.11.finish.json'],
    ['25.05', { sendScript: true }, '25.05-25.11-send_script.finish.json'],
    ['24.11.7', {}, '24.05.1-24.11.finish.json'],
    ['23.11.10', {}, '23.11.9+.finish.json'],
    ['23.11.7', {}, '23.11.7-23.11.8.finish.json'],
    ['23.11.3', {}, '23.11.1-23.11.6.finish.json'],
    ['23.02', {}, '23.02-23.11.0.finish.json'],
  ])('RecordFormat=%s %j: %s', (release, flags, name) => {
    expect(serialize(full(JobEvent.finish), optionsFor(release, flags)).toString('latin1')).toBe(layoutFixture(name).toString('latin1'));
  });

  it('26.05 start record: the SLUIDs after jobid, the comments after account', () => {
    expect(serialize(full(JobEvent.start), optionsFor('26.05', { sendComment: true })).toString('latin1')).toBe(layoutFixture('26.05-send_comment.start.json').toString('latin1'));
  });

  it('26.05 without a SLUID in the input: no sluid key, nothing invented', () => {
    const out = serialize(job4242(JobEvent.finish), optionsFor('26.05', { sendComment: true }));
    expect(out.equals(fixture('job4242-finish.json'))).toBe(true);
  });

  it('23.02-23.11.6 payloads end with one NUL byte, later ones with the closing brace', () => {
    const bytes = (release: string): Buffer => serialize(job4242(JobEvent.finish), optionsFor(release));
    expect(bytes('23.11.6').subarray(-2)).toEqual(Buffer.from('}\0', 'latin1'));
    expect(bytes('23.11.7').subarray(-1)).toEqual(Buffer.from('}'));
  });

  /** a job cancelled while pending, its expected start after its end; the body said elapsed -30 */
  function cancelledPending(): JobRecord {
    const r = job4242(JobEvent.finish);
    return { ...r, start: undefined, elapsed: 0, rawElapsed: -30, total_cpus: 1, queue_wait: -12, state: 'CANCELLED' };
  }

  it.each([
    ['23.02', '"@start":"Unknown","@end":"2025-06-02T11:02:03","elapsed":-30,', '"cpu_hours":-0.0083333337679505348,', '"@queue_wait":-12,'],
    ['23.11.8', '"@start":"Unknown","@end":"2025-06-02T11:02:03","elapsed":0,', '"cpu_hours":0.0,', '"@queue_wait":-12,'],
    ['24.05.0', '"@start":"Unknown","@end":"2025-06-02T11:02:03","elapsed":0,', '"cpu_hours":0.0,', '"@queue_wait":-12,'],
    ['23.11.9', '"group_id":2001,"@end":"2025-06-02T11:02:03","elapsed":0,', '"cpu_hours":0.0,', '"@eligible":"2025-06-02T09:58:41","work_dir"'],
    ['24.11', '"group_id":2001,"@end":"2025-06-02T11:02:03","elapsed":0,', '"cpu_hours":0.0,', '"@eligible":"2025-06-02T09:58:41","work_dir"'],
    ['26.05', '"group_id":2001,"@end":"2025-06-02T11:02:03","elapsed":0,', '"cpu_hours":0.0,', '"@eligible":"2025-06-02T09:58:41","work_dir"'],
  ])('invalid dates, elapsed guard and negative @queue_wait under %s', (release, times, cpuHoursText, queueWait) => {
    const out = serialize(cancelledPending(), optionsFor(release)).toString('latin1');
    expect(out).toContain(times);
    expect(out).toContain(cpuHoursText);
    expect(out).toContain(queueWait);
  });
});
