// Test records: the captured Slurm 22.05 jobcomp/elasticsearch bodies, made distinct by
// giving each a new job id, and the payloads jobcompd must turn them into.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseElasticsearchBody } from '../../src/record/from-elasticsearch';
import { serialize } from '../../src/record/serialize';
import { parseRecordFormat } from '../../src/record/record-format';
import { DEFAULT_PAYLOAD_OPTIONS, type PayloadOptions } from '../../src/record/to-payload';

export const ES_FIXTURES = join(__dirname, '../fixtures/es-22.05');

export function capturedBodies(): Buffer[] {
  return readdirSync(ES_FIXTURES)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => readFileSync(join(ES_FIXTURES, f)));
}

/** `count` bodies cycling through the captures, with job ids firstJobId, firstJobId+1, ... */
export function numberedBodies(count: number, firstJobId: number): Buffer[] {
  const templates = capturedBodies().map((b) => b.toString('latin1'));
  return Array.from({ length: count }, (_, i) => {
    const t = templates[i % templates.length] as string;
    return Buffer.from(t.replace(/^\{"jobid":\d+,/, `{"jobid":${firstJobId + i},`), 'latin1');
  });
}

/** What jobcompd publishes for a body (default JobCompParams and RecordFormat). */
export function expectedPayload(body: Buffer): Buffer {
  return serialize(parseElasticsearchBody(body), DEFAULT_PAYLOAD_OPTIONS);
}

export function jobIdOf(payload: Buffer): number {
  const m = /^\{"jobid":(\d+),/.exec(payload.toString('latin1'));
  if (!m) throw new Error(`not a job record: ${payload.toString('latin1').slice(0, 40)}`);
  return Number(m[1]);
}

/** Payload options for the layout of `release` (as RecordFormat takes it), default JobCompParams unless given. */
export function optionsFor(release: string, flags: { sendScript?: boolean; sendComment?: boolean } = {}): PayloadOptions {
  return { layout: parseRecordFormat(release, { file: '(test)' }).layout, sendScript: flags.sendScript ?? false, sendComment: flags.sendComment ?? false };
}
