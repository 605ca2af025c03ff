// How `jobcompd tail` prints a record (docs/operations.md "jobcompd tail"): JSON lines (the
// payload's own bytes), CSV (the plugin's columns, in its order), or a table for a terminal.

import { recordColumns } from '../record/columns';
import type { RecordLayout } from '../record/record-format';

export const OUTPUT_FORMATS = ['table', 'json', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** A consumed record: its payload without the trailing NUL of old layouts, and the fields parsed. */
export interface TailRecord {
  json: Buffer;
  fields: Record<string, unknown>;
}

export interface RecordPrinter {
  /** printed once before the first record; empty for JSON lines */
  header: string;
  line(record: TailRecord): Buffer;
}

export function printerFor(format: OutputFormat, layout: RecordLayout): RecordPrinter {
  switch (format) {
    case 'json':
      return { header: '', line: (r) => Buffer.concat([r.json, NEWLINE]) };
    case 'csv': {
      const columns = recordColumns(layout);
      return { header: `${columns.map(csvField).join(',')}\r\n`, line: (r) => Buffer.from(`${columns.map((c) => csvField(text(r.fields[c]))).join(',')}\r\n`) };
    }
    case 'table':
      return { header: `${tableRow(TABLE.map((c) => c.title))}\n`, line: (r) => Buffer.from(`${tableRow(TABLE.map((c) => c.value(r.fields)))}\n`) };
  }
}

const NEWLINE = Buffer.from('\n');

/** RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled. */
function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

function text(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Finish records carry a state; start records carry null (docs/record-mapping.md). */
export function isStartRecord(fields: Record<string, unknown>): boolean {
  return fields.state === null;
}

interface TableColumn {
  title: string;
  width: number;
  value(f: Record<string, unknown>): string;
}

const TABLE: TableColumn[] = [
  { title: 'TIME', width: 19, value: (f) => text(isStartRecord(f) ? f['@start'] : f['@end']) },
  { title: 'EVENT', width: 6, value: (f) => (isStartRecord(f) ? 'start' : 'end') },
  { title: 'JOBID', width: 10, value: (f) => text(f.jobid) },
  { title: 'USER', width: 10, value: (f) => text(f.username) },
  { title: 'PARTITION', width: 10, value: (f) => text(f.partition) },
  { title: 'STATE', width: 13, value: (f) => text(f.state) },
  { title: 'EXIT', width: 5, value: (f) => text(f.exit_code) },
  { title: 'ELAPSED', width: 8, value: (f) => text(f.elapsed) },
  { title: 'NODES', width: 16, value: (f) => text(f.nodes) },
  { title: 'NAME', width: 0, value: (f) => text(f.job_name) },
];

function tableRow(values: string[]): string {
  return TABLE.map((c, i) => {
    const v = (values[i] ?? '').replace(/[\x00-\x1f\x7f]/g, ' ');
    if (c.width === 0) return v;
    return v.length > c.width ? `${v.slice(0, c.width - 1)}+` : v.padEnd(c.width);
  }).join(' ');
}
