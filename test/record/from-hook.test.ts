// The jobcomp/script and PrologSlurmctld environments a real Slurm 22.05 slurmctld gave
// its scripts (captured), mapped to jobcomp/kafka records; and every mapping rule.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RecordCodes, RecordError } from '../../src/errors';
import { mapHookEnv, mapJobcompScriptEnv, mapPrologEnv } from '../../src/record/from-hook';
import { hookContext, parseEnvBlock, parseEnvDump } from '../../src/record/slurm-env';
import { serialize } from '../../src/record/serialize';
import { optionsFor } from '../helpers/records';

const AT_25_11 = optionsFor('25.11');
import { timeLimitSeconds, totalCpus } from '../../src/record/slurm-values';
import { Answer, decodeMessage, encodeAnswer, encodeRequest } from '../../src/sources/hook-protocol';

const DIR = join(__dirname, '../fixtures/script-22.05');

function dumps(prefix: string): [string, string][] {
  return ['run1', 'run2'].flatMap((run) =>
    readdirSync(join(DIR, run))
      .filter((f) => f.startsWith(prefix) && f.endsWith('.env'))
      .map((f): [string, string] => [`${run}/${f}`, join(DIR, run, f)]),
  );
}

function expected(path: string): string {
  const dir = join(path, '..', 'expected');
  return readFileSync(join(dir, path.split('/').pop()?.replace(/\.env$/, '.kafka.json') ?? ''), 'latin1');
}

const envOf = (vars: Record<string, string>): Map<string, string> => new Map(Object.entries(vars));

/** The captured environment of a finished batch job (job 1 of run 2). */
const okJob = (): Map<string, string> => parseEnvDump(readFileSync(dumps('jobcomp.1.').find(([n]) => n.startsWith('run2'))?.[1] ?? ''));

describe('captured jobcomp/script environments (golden)', () => {
  it.each(dumps('jobcomp.'))('%s', (_name, path) => {
    const env = parseEnvDump(readFileSync(path));
    expect(hookContext(env)).toBe('jobcomp');
    expect(serialize(mapJobcompScriptEnv(env), AT_25_11).toString('latin1')).toBe(expected(path));
  });
});

describe('captured PrologSlurmctld environments (golden)', () => {
  it.each(dumps('prolog_ctld.'))('%s', (_name, path) => {
    const env = parseEnvDump(readFileSync(path));
    expect(hookContext(env)).toBe('prolog');
    expect(serialize(mapPrologEnv(env), AT_25_11).toString('latin1')).toBe(expected(path));
  });
});

describe('jobcomp/script rules', () => {
  it('maps times, exit codes, array tasks and the time limit', () => {
    const env = okJob();
    env.set('ARRAYJOBID', '7');
    env.set('ARRAYTASKID', '2');
    env.set('LIMIT', '1-02:03:00');
    env.set('EXITCODE', '3:0');
    const out = serialize(mapJobcompScriptEnv(env), AT_25_11).toString('latin1');
    expect(out).toContain('"@start":"2026-11-22T03:50:10","@end":"2026-11-22T03:50:11","elapsed":1');
    expect(out).toContain('"exit_code":"3:0","state":"COMPLETED"');
    expect(out).toContain('"array_job_id":7,"array_task_id":2,"pack_job_id":0');
    expect(out).toContain(`"time_limit":${(26 * 60 + 3) * 60}`);
  });

  it('leaves out START=0 (cancelled while pending) and UNLIMITED limits; elapsed is then 0', () => {
    const env = okJob();
    env.set('START', '0');
    env.set('LIMIT', 'UNLIMITED');
    const out = serialize(mapJobcompScriptEnv(env), AT_25_11).toString('latin1');
    expect(out).not.toContain('@start');
    expect(out).not.toContain('time_limit');
    expect(out).toContain('"elapsed":0,');
  });

  it('leaves out a START later than END, as jobcomp/kafka does ("Unknown"); elapsed is then 0', () => {
    const env = okJob();
    env.set('START', '1795319412');
    env.set('END', '1795319411');
    const out = serialize(mapJobcompScriptEnv(env), AT_25_11).toString('latin1');
    expect(out).not.toContain('@start');
    expect(out).toContain('"@end":"2026-11-22T03:50:11","elapsed":0,');
  });

  it('uses ELIGIBLE (Slurm 24.05+) for @eligible and @queue_wait', () => {
    const env = okJob();
    env.set('ELIGIBLE', '1795319409');
    expect(serialize(mapJobcompScriptEnv(env), AT_25_11).toString('latin1')).toContain('"@submit":"2026-11-22T03:50:09","@eligible":"2026-11-22T03:50:09","@queue_wait":1');
  });

  it('treats empty variables as unset and WORK_DIR=unknown as no directory; nobody for another uid is null', () => {
    const env = okJob();
    env.set('WORK_DIR', 'unknown');
    env.set('USERNAME', 'nobody');
    env.set('UID', '4242');
    const out = serialize(mapJobcompScriptEnv(env), AT_25_11).toString('latin1');
    expect(out).not.toContain('work_dir');
    expect(out).not.toContain('"account"');
    expect(out).toContain('"username":null,"user_id":4242');
  });
});

describe('jobcomp/script environments of 26.05', () => {
  it('SLUID and ORIGINAL_SLUID become sluid and original_sluid, after jobid, only in the 26.05 layout', () => {
    const env = okJob();
    env.set('SLUID', 's0CJ4W8K2ZQ6M2');
    env.set('ORIGINAL_SLUID', 's0CJ4W8K2ZQ6M1');
    const out = serialize(mapJobcompScriptEnv(env), optionsFor('26.05', { sendComment: true })).toString('latin1');
    expect(out).toMatch(/^\{"jobid":\d+,"sluid":"s0CJ4W8K2ZQ6M2","original_sluid":"s0CJ4W8K2ZQ6M1","container":null,/);
    expect(out).not.toContain('comment');
    expect(serialize(mapJobcompScriptEnv(env), AT_25_11).toString('latin1')).not.toContain('sluid');
  });

  it('in a layout before 24.05.1 a START after END is printed "Unknown", and a negative @queue_wait is kept', () => {
    const env = okJob();
    env.set('START', '0');
    env.set('ELIGIBLE', env.get('END') ?? '');
    expect(serialize(mapJobcompScriptEnv(env), optionsFor('24.05.0')).toString('latin1')).toContain('"@start":"Unknown","@end":');
    env.set('START', String(Number(env.get('END')) - 1));
    env.set('ELIGIBLE', env.get('END') ?? '');
    expect(serialize(mapJobcompScriptEnv(env), optionsFor('24.05.0')).toString('latin1')).toContain('"@queue_wait":-1,');
    expect(serialize(mapJobcompScriptEnv(env), optionsFor('24.05.1')).toString('latin1')).not.toContain('@queue_wait');
  });
});

describe('PrologSlurmctld rules', () => {
  const prolog = (extra: Record<string, string> = {}): Map<string, string> =>
    envOf({
      SLURM_SCRIPT_CONTEXT: 'prolog_slurmctld',
      SLURM_JOB_ID: '77',
      SLURM_JOB_UID: '1001',
      SLURM_JOB_USER: 'alice',
      SLURM_JOB_GID: '2001',
      SLURM_JOB_GROUP: 'physics',
      SLURM_JOB_PARTITION: 'compute',
      SLURM_JOB_NODELIST: 'node[001-002]',
      SLURM_JOB_NUM_NODES: '2',
      SLURM_JOB_CPUS_PER_NODE: '32(x2)',
      SLURM_JOB_ACCOUNT: '(null)',
      SLURM_JOB_NAME: 'lammps_run',
      JOBCOMPD_HOOK_TIME: '1748858400.123456789',
      ...extra,
    });

  it('builds a start record: @start from the hook time, CPUs summed, state null, no account "(null)"', () => {
    expect(serialize(mapPrologEnv(prolog()), AT_25_11).toString('latin1')).toBe(
      '{"jobid":77,"container":null,"username":"alice","user_id":1001,"groupname":"physics","group_id":2001,"@start":"2025-06-02T10:00:00",' +
        '"partition":"compute","alloc_node":null,"nodes":"node[001-002]","total_cpus":64,"total_nodes":2,"state":null,' +
        '"het_job_id":0,"het_job_offset":0,"job_name":"lammps_run"}',
    );
  });

  it('26.05: SLURM_JOB_SLUID as sluid and original_sluid, SLURM_JOB_COMMENT as comment with send_comment; no admin_comment', () => {
    const env = prolog({ SLURM_JOB_SLUID: 's0CJ4W8K2ZQ6M1', SLURM_JOB_COMMENT: 'run 7', SLURM_JOB_ACCOUNT: 'physics' });
    const out = serialize(mapPrologEnv(env), optionsFor('26.05', { sendComment: true })).toString('latin1');
    expect(out.startsWith('{"jobid":77,"sluid":"s0CJ4W8K2ZQ6M1","original_sluid":"s0CJ4W8K2ZQ6M1","container":null,')).toBe(true);
    expect(out.endsWith('"job_name":"lammps_run","account":"physics","comment":"run 7"}')).toBe(true);
    expect(serialize(mapPrologEnv(env), optionsFor('26.05')).toString('latin1')).not.toContain('"comment"');
    expect(serialize(mapPrologEnv(env), AT_25_11).toString('latin1')).not.toContain('sluid');
  });

  it('26.05 without SLURM_JOB_SLUID: no sluid key', () => {
    expect(serialize(mapPrologEnv(prolog()), optionsFor('26.05')).toString('latin1')).toBe(serialize(mapPrologEnv(prolog()), AT_25_11).toString('latin1'));
  });

  it('a real 26.05 prolog environment gives the real plugin start record, less the fields a prolog is not given', () => {
    // captured from Slurm 26.05.3 by the conformance suite (job "ok"): the prolog's environment
    // and jobcomp/kafka's start record of the same job, in the same run
    const env = parseEnvDump(
      Buffer.from(
        'SLURM_CLUSTER_NAME=conformance\nSLURM_JOBID=1\nSLURM_JOB_ACCOUNT=(null)\nSLURM_JOB_CPUS_PER_NODE=1\nSLURM_JOB_END_TIME=1796391404\n' +
          'SLURM_JOB_EXCLUSIVE=NO\nSLURM_JOB_GID=0\nSLURM_JOB_GROUP=root\nSLURM_JOB_ID=1\nSLURM_JOB_NAME=ok\nSLURM_JOB_NODELIST=localhost\n' +
          'SLURM_JOB_NUM_NODES=1\nSLURM_JOB_OVERSUBSCRIBE=NO\nSLURM_JOB_PARTITION=debug\nSLURM_JOB_RESTART_COUNT=0\nSLURM_JOB_SLUID=s9P9M90M1VJP00\n' +
          'SLURM_JOB_START_TIME=1796391104\nSLURM_JOB_STDIN=/dev/null\nSLURM_JOB_STDOUT=/dev/null\nSLURM_JOB_UID=0\nSLURM_JOB_USER=root\n' +
          'SLURM_JOB_WORK_DIR=/tmp/wd "q" back\\slash\ttab ünïcødé\nSLURM_SCRIPT_CONTEXT=prolog_slurmctld\nJOBCOMPD_HOOK_TIME=1796391105.5\n',
        'utf8',
      ),
    );
    const plugin: Record<string, unknown> = {
      jobid: 1, sluid: 's9P9M90M1VJP00', original_sluid: 's9P9M90M1VJP00', container: null, username: 'root', user_id: 0, groupname: 'root', group_id: 0,
      '@start': '2026-12-04T13:31:44', partition: 'debug', alloc_node: 'localhost', nodes: 'localhost', total_cpus: 1, total_nodes: 1, state: null,
      het_job_id: 0, het_job_offset: 0, priority: 1, '@submit': '2026-12-04T13:31:44', '@eligible': '2026-12-04T13:31:44', '@queue_wait': 0,
      work_dir: '/tmp/wd "q" back\\slash\ttab ünïcødé', std_in: '/dev/null', std_out: '/dev/null', ntasks: 0, ntasks_per_node: 0, ntasks_per_tres: 0,
      cpus_per_task: 1, time_limit: 300, job_name: 'ok', tres_req_raw: '1=1,2=24105,4=1,5=1', tres_req: 'cpu=1,mem=24105M,node=1,billing=1',
      tres_alloc_raw: '1=1,3=18446744073709551614,4=1,5=1', tres_alloc: 'cpu=1,node=1,billing=1', script: '#!/bin/sh\n# This script was created by sbatch --wrap.\n\nsleep 1\n',
    };
    const notGiven = ['priority', '@submit', '@eligible', '@queue_wait', 'ntasks', 'ntasks_per_node', 'ntasks_per_tres', 'cpus_per_task', 'time_limit', 'tres_req_raw', 'tres_req', 'tres_alloc_raw', 'tres_alloc', 'script'];
    const expected = Object.fromEntries(Object.entries({ ...plugin, alloc_node: null }).filter(([k]) => !notGiven.includes(k)));
    const ours = serialize(mapPrologEnv(env), optionsFor('26.05', { sendScript: true, sendComment: true }));
    expect(ours.toString('utf8')).toBe(JSON.stringify(expected).replace(/\//g, '\\/'));
  });

  it('reservation, wckey and QOS from SLURM_JOB_RESERVATION, SLURM_WCKEY, SLURM_JOB_QOS (as the real 26.05 prolog and plugin give them)', () => {
    const out = serialize(mapPrologEnv(prolog({ SLURM_JOB_RESERVATION: 'resv', SLURM_WCKEY: 'wk1', SLURM_JOB_QOS: 'normal' })), AT_25_11).toString('latin1');
    expect(out).toContain('"het_job_offset":0,"qos":"normal","job_name":"lammps_run","reservation_name":"resv","wc_key":"wk1"}');
    expect(serialize(mapPrologEnv(prolog({ SLURM_JOB_QOS: '(null)' })), AT_25_11).toString('latin1')).not.toContain('qos');
  });

  it('sums SLURM_JOB_CPUS_PER_NODE forms', () => {
    expect(totalCpus('4(x2),2')).toBe(10);
    expect(totalCpus('1')).toBe(1);
    expect(totalCpus('x')).toBeUndefined();
    expect(totalCpus('9'.repeat(400))).toBeUndefined(); // not Infinity
  });

  // Found by test/hostile/fuzz-socket: such values reached Kafka as "Infinity" or killed the daemon.
  it('refuses a hook time Slurm could not print; leaves out a time limit too large to be one', () => {
    expect(() => mapPrologEnv(prolog({ JOBCOMPD_HOOK_TIME: '9'.repeat(36) }))).toThrow(
      expect.objectContaining({ code: RecordCodes.badField, field: 'JOBCOMPD_HOOK_TIME' }) as Error,
    );
    expect(timeLimitSeconds(`${'9'.repeat(400)}:00:00`)).toBeUndefined();
  });
});

describe('hook contexts and errors', () => {
  it('recognises the three contexts; epilog environments are not published', () => {
    expect(mapHookEnv(okJob()).kind).toBe('record');
    expect(mapHookEnv(envOf({ SLURM_SCRIPT_CONTEXT: 'epilog_slurmctld', SLURM_JOB_ID: '5' }))).toEqual({ kind: 'not-published', context: 'epilog', jobId: 5 });
  });

  it.each([
    ['no context', {}, RecordCodes.missingField, undefined],
    ['JOBID not a number', { JOBID: 'x' }, RecordCodes.badField, 'JOBID'],
    ['missing JOBSTATE', { JOBID: '5', UID: '0', GID: '0', PROCS: '1', NODECNT: '1', EXITCODE: '0:0', DERIVED_EC: '0:0' }, RecordCodes.missingField, 'JOBSTATE'],
    ['EXITCODE malformed', { JOBID: '5', UID: '0', GID: '0', PROCS: '1', NODECNT: '1', EXITCODE: 'bad', DERIVED_EC: '0:0', JOBSTATE: 'FAILED' }, RecordCodes.badField, 'EXITCODE'],
  ] as [string, Record<string, string>, string, string | undefined][])('%s', (_name, vars, code, field) => {
    let caught: unknown;
    try {
      mapHookEnv(envOf(vars));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(RecordError);
    expect((caught as RecordError).code).toBe(code);
    expect((caught as RecordError).field).toBe(field);
    if ((vars as Record<string, string>).JOBID === '5') expect((caught as RecordError).jobId).toBe(5);
  });

  it('parses time limits as jobcomp/script prints them', () => {
    expect(timeLimitSeconds('00:01:00')).toBe(60);
    expect(timeLimitSeconds('365-00:00:00')).toBe(31_536_000);
    expect(timeLimitSeconds('UNLIMITED')).toBeUndefined();
  });
});

describe('the hook wire format', () => {
  it('round-trips an environment with every byte value except NUL', () => {
    const value = Buffer.from(Array.from({ length: 255 }, (_, i) => i + 1)).toString('latin1').replace(/=/g, '');
    const block = Buffer.from(`JOBID=1\0WEIRD=${value}\0`, 'latin1');
    const decoded = decodeMessage(encodeRequest(block), 1 << 20);
    expect(decoded.ok && parseEnvBlock(decoded.environment).get('WEIRD')).toBe(value);
  });

  it('rejects bad magic, lengths that lie, and oversized messages', () => {
    expect(decodeMessage(Buffer.from('XXXX\0\0\0\0'), 100)).toEqual({ ok: false, reason: 'not a jobcompd-hook message (bad magic)' });
    expect(decodeMessage(Buffer.concat([encodeRequest(Buffer.from('A=1\0')), Buffer.from('x')]), 100)).toEqual({ ok: false, reason: 'length says 4 bytes, 5 present' });
    expect(decodeMessage(encodeRequest(Buffer.alloc(200)), 100)).toEqual({ ok: false, tooLarge: true, reason: 'message of 200 bytes exceeds the limit of 100' });
  });

  it('reads KEY=VALUE entries, the last of a key winning, and skips entries without a key or an "="', () => {
    const block = Buffer.from('A=1\0=no key\0NOEQUALS\0B=x=y\0\0C=\0A=2\0D=last, no NUL', 'latin1');
    expect([...parseEnvBlock(block)]).toEqual([
      ['A', '2'],
      ['B', 'x=y'],
      ['C', ''],
      ['D', 'last, no NUL'],
    ]);
    expect(parseEnvBlock(Buffer.from('NOEQUALS\0\0MORE\0', 'latin1')).size).toBe(0);
    expect(parseEnvBlock(Buffer.alloc(0)).size).toBe(0);
  });

  it('answers with a status byte, the message length and the message in UTF-8 (golden bytes)', () => {
    expect(encodeAnswer(Answer.stored, 'committed as row 7').toString('hex')).toBe(`4100000012${Buffer.from('committed as row 7').toString('hex')}`);
    expect(encodeAnswer(Answer.error, 'd\u00e9j\u00e0').toString('hex')).toBe('450000000664c3a96ac3a0');
    expect(encodeAnswer(Answer.duplicate, '').toString('hex')).toBe('4400000000');
  });
});
