// Evidence a conformance run generates: tables written into the project's docs between
// markers, and (with CONFORMANCE_WRITE_FIXTURES=1) the captured bytes under test/fixtures/.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PROJECT_ROOT } from '../../helpers/cli';
import { keyOf, type FieldComparison, type Payload, type Verdict } from '../../helpers/payload';

/** Replaces the block between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` in a doc. */
export function writeGeneratedBlock(doc: string, name: string, body: string): void {
  const file = join(PROJECT_ROOT, 'docs', doc);
  const text = readFileSync(file, 'utf8');
  const open = `<!-- generated:${name} -->`;
  const close = `<!-- /generated:${name} -->`;
  const block = `${open}\n${body.trimEnd()}\n${close}`;
  const at = text.indexOf(open);
  const end = text.indexOf(close);
  const next = at >= 0 && end > at ? text.slice(0, at) + block + text.slice(end + close.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}

/** The key a job's records are matched by across runs: its name, array task and het component. */
export function matchKey(p: Payload): string {
  const v = p.value;
  const het = v['het_job_id'] !== undefined && v['het_job_id'] !== 0 ? String(v['het_job_offset']) : '-';
  return `${String(v['job_name'])}#${String(v['array_task_id'] ?? '-')}#${het}`;
}

/** NO_VAL - 1: jobcomp/script's ARRAYTASKID of a job that is not an array task. */
const NOT_AN_ARRAY_TASK = '4294967294';

/** matchKey() of the job a script or prolog environment (byte strings) belongs to. */
export function envMatchKey(env: ReadonlyMap<string, string>, context: 'script' | 'prolog'): string {
  const [name, task, het] = context === 'script' ? ['JOBNAME', 'ARRAYTASKID', 'HETJOBOFFSET'] : ['SLURM_JOB_NAME', 'SLURM_ARRAY_TASK_ID', 'SLURM_HET_JOB_OFFSET'];
  const taskId = env.get(task);
  const key = `${env.get(name) ?? ''}#${taskId === undefined || taskId === NOT_AN_ARRAY_TASK ? '-' : taskId}#${env.get(het) ?? '-'}`;
  return Buffer.from(key, 'latin1').toString('utf8');
}

export function byMatchKey(payloads: Payload[]): Map<string, Payload> {
  const out = new Map<string, Payload>();
  for (const p of payloads) {
    const key = matchKey(p);
    if (out.has(key)) throw new Error(`two records for ${key}: ${p.bytes.toString('utf8')}`);
    out.set(key, p);
  }
  return out;
}

/** job id -> job name, from the records themselves (array tasks and het components included). */
export function idsOf(payloads: Payload[]): Map<number, string> {
  return new Map(payloads.map((p) => [Number(p.value['jobid']), String(p.value['job_name'])]));
}

/** Per field: how each job's field compared, summarised over the jobs. */
export function fieldTable(comparisons: Map<string, FieldComparison[]>): { key: string; verdicts: Map<Verdict, string[]> }[] {
  const order: string[] = [];
  const rows = new Map<string, Map<Verdict, string[]>>();
  for (const [job, fields] of comparisons) {
    for (const f of fields) {
      let row = rows.get(f.key);
      if (row === undefined) {
        rows.set(f.key, (row = new Map()));
        order.push(f.key);
      }
      row.set(f.verdict, [...(row.get(f.verdict) ?? []), job]);
    }
  }
  return order.map((key) => ({ key, verdicts: rows.get(key) as Map<Verdict, string[]> }));
}

const FIXTURE_NAME = /[^A-Za-z0-9_.-]+/g;

function fixtureName(key: string): string {
  return key.replace(/#-/g, '').replace(/#/g, '_').replace(FIXTURE_NAME, '_').replace(/^_+|_+$/g, '').slice(0, 40);
}

export function writingFixtures(): boolean {
  return process.env['CONFORMANCE_WRITE_FIXTURES'] === '1';
}

/** test/fixtures/slurm-<format>/<kind>/<job>.<ext>: exact bytes. */
export function writeFixture(format: string, kind: string, key: string, ext: string, bytes: Buffer | string): void {
  const file = join(PROJECT_ROOT, 'test', 'fixtures', `slurm-${format}`, kind, `${fixtureName(key)}.${ext}`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, bytes);
}

/** An environment (byte strings) as KEY=VALUE lines, sorted: what `convert --from script|prolog` reads. */
export function envBytes(env: ReadonlyMap<string, string>): Buffer {
  const lines = [...env].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}\n`);
  return Buffer.from(lines.join(''), 'latin1');
}

export { keyOf };
