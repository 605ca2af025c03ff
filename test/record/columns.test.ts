// The CSV columns of `jobcompd tail` (recordColumns): every key of each layout's sample record
// (test/fixtures/kafka-layouts, written from the release changelogs) is a column, in the
// sample's own order.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordColumns } from '../../src/record/columns';
import { RECORD_LAYOUTS } from '../../src/record/record-format';

const DIR = join(__dirname, '../fixtures/kafka-layouts');
const samples = readdirSync(DIR).filter((f) => f.endsWith('.json'));

test.each(samples)('%s: its keys are columns of its layout, in the same order', (file) => {
  const layout = RECORD_LAYOUTS.find((l) => file.startsWith(`${l.name}.`) || file.startsWith(`${l.name}-`));
  expect(layout).toBeDefined();
  const keys = Object.keys(JSON.parse(readFileSync(join(DIR, file), 'utf8').replace(/\0$/, '')) as object);
  const columns = recordColumns(layout!);
  expect(keys.filter((k) => !columns.includes(k))).toEqual([]);
  const positions = keys.map((k) => columns.indexOf(k));
  expect(positions).toEqual([...positions].sort((a, b) => a - b));
});

test('columns appear once, and only layouts that have them carry the newer ones', () => {
  for (const layout of RECORD_LAYOUTS) expect(new Set(recordColumns(layout)).size).toBe(recordColumns(layout).length);
  const oldest = recordColumns(RECORD_LAYOUTS[0]!);
  const newest = recordColumns(RECORD_LAYOUTS[RECORD_LAYOUTS.length - 1]!);
  expect(oldest).not.toContain('tres_req_raw');
  expect(newest.slice(0, 3)).toEqual(['jobid', 'sluid', 'original_sluid']);
  expect(newest).toContain('comment');
});
