// The record layouts jobcomp/kafka produced across Slurm releases, as one table, and the
// RecordFormat setting that picks one (docs/record-mapping.md "Record format per release",
// docs/configuration.md RecordFormat). The serializer reads the rules of a layout from
// here and nowhere else.

import { ConfigCodes, ConfigError, type ConfigLocation } from '../errors';

export interface RecordLayout {
  /** The releases it covers, as check-config prints them. */
  name: string;
  /** The first release with this layout; it lasts until the next row's. */
  since: Version;
  /** 23.02.0-23.11.6 sent strlen + 1 bytes: every payload ends with a 0x00. */
  trailingNul: boolean;
  /** tres_req_raw / tres_alloc_raw (23.11.1+). */
  tresRaw: boolean;
  /** elapsed is 0 unless 0 < start < end (23.11.1+); before, the raw end - start. */
  elapsedGuard: boolean;
  /**
   * 'omit' (23.11.9+, 24.05.1+): invalid dates and a negative @queue_wait are left out.
   * 'print': a finish record always has @start and @end ("Unknown" when invalid), and a
   * negative @queue_wait is sent.
   */
  invalidDates: 'omit' | 'print';
  /** priority (24.05+). */
  priority: boolean;
  /** Which partition the release's plugins name; the inputs of that release already carry it. */
  partition: 'requested list' | 'partition it ran in';
  /** 'always': the batch script whenever the input has it; 'send_script': only with that JobCompParams flag (25.05+). */
  script: 'always' | 'send_script';
  /** Job start records (25.05+, with enable_job_start). */
  startRecords: boolean;
  /** sluid, original_sluid after jobid; admin_comment, and comment with send_comment, after account (26.05+). */
  sluidAndComments: boolean;
}

type Version = readonly [major: number, minor: number, patch: number];

// One row per layout, oldest first; the sources are in docs/record-mapping.md.
export const RECORD_LAYOUTS: readonly RecordLayout[] = [
  row('23.02-23.11.0', [23, 2, 0], { trailingNul: true, tresRaw: false, elapsedGuard: false, invalidDates: 'print', priority: false, partition: 'requested list', script: 'always', startRecords: false, sluidAndComments: false }),
  row('23.11.1-23.11.6', [23, 11, 1], { trailingNul: true, tresRaw: true, elapsedGuard: true, invalidDates: 'print', priority: false, partition: 'requested list', script: 'always', startRecords: false, sluidAndComments: false }),
  row('23.11.7-23.11.8', [23, 11, 7], { trailingNul: false, tresRaw: true, elapsedGuard: true, invalidDates: 'print', priority: false, partition: 'requested list', script: 'always', startRecords: false, sluidAndComments: false }),
  row('23.11.9+', [23, 11, 9], { trailingNul: false, tresRaw: true, elapsedGuard: true, invalidDates: 'omit', priority: false, partition: 'requested list', script: 'always', startRecords: false, sluidAndComments: false }),
  row('24.05.0', [24, 5, 0], { trailingNul: false, tresRaw: true, elapsedGuard: true, invalidDates: 'print', priority: true, partition: 'requested list', script: 'always', startRecords: false, sluidAndComments: false }),
  row('24.05.1-24.11', [24, 5, 1], { trailingNul: false, tresRaw: true, elapsedGuard: true, invalidDates: 'omit', priority: true, partition: 'requested list', script: 'always', startRecords: false, sluidAndComments: false }),
  row('25.05-25.11', [25, 5, 0], { trailingNul: false, tresRaw: true, elapsedGuard: true, invalidDates: 'omit', priority: true, partition: 'partition it ran in', script: 'send_script', startRecords: true, sluidAndComments: false }),
  row('26.05', [26, 5, 0], { trailingNul: false, tresRaw: true, elapsedGuard: true, invalidDates: 'omit', priority: true, partition: 'partition it ran in', script: 'send_script', startRecords: true, sluidAndComments: true }),
];

/** The release series that had jobcomp/kafka, as `major.minor`. */
export const KNOWN_SERIES: readonly string[] = ['23.02', '23.11', '24.05', '24.11', '25.05', '25.11', '26.05'];

function row(name: string, since: Version, rules: Omit<RecordLayout, 'name' | 'since'>): RecordLayout {
  return { name, since, ...rules };
}

/** The newest layout: the default RecordFormat. */
export const NEWEST_LAYOUT: RecordLayout = RECORD_LAYOUTS[RECORD_LAYOUTS.length - 1] as RecordLayout;

/** The format in force: the layout, and the release it was chosen by. */
export interface RecordFormat {
  /** The value as given ("24.11.7"), or the default's name. */
  release: string;
  layout: RecordLayout;
}

export const DEFAULT_RECORD_FORMAT: RecordFormat = { release: NEWEST_LAYOUT.name, layout: NEWEST_LAYOUT };

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

function layoutOf(v: Version): RecordLayout {
  let found = RECORD_LAYOUTS[0] as RecordLayout;
  for (const layout of RECORD_LAYOUTS) if (compare(layout.since, v) <= 0) found = layout;
  return found;
}

/**
 * A Slurm release as an admin types it ("24.11", "24.11.7", "23.11.7") -> the layout its
 * jobcomp/kafka produced. A series whose layout changed between patch releases ("23.11",
 * "24.05") needs the patch release; anything else is refused, naming the location.
 */
export function parseRecordFormat(value: string, loc: ConfigLocation): RecordFormat {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(value.trim());
  const series = m ? `${Number(m[1])}.${m[2]?.padStart(2, '0') ?? ''}` : '';
  if (!m || !KNOWN_SERIES.includes(series)) {
    throw new ConfigError(ConfigCodes.badValue, loc, `must be a Slurm release with jobcomp/kafka (${KNOWN_SERIES.join(', ')}, or one of their patch releases such as 24.11.7), got "${value}"`);
  }
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (m[3] !== undefined) return { release: value.trim(), layout: layoutOf([major, minor, Number(m[3])]) };
  const inSeries = RECORD_LAYOUTS.filter((l) => l.since[0] === major && l.since[1] === minor && l.since[2] > 0);
  if (inSeries.length > 0) {
    const names = [layoutOf([major, minor, 0]), ...inSeries].map((l) => l.name).join(', ');
    throw new ConfigError(ConfigCodes.badValue, loc, `"${value}" is ambiguous: the record changed within ${series} (${names}); give the patch release, e.g. ${series}.${inSeries[inSeries.length - 1]?.since[2] ?? 0}`);
  }
  return { release: value.trim(), layout: layoutOf([major, minor, 0]) };
}

/** Why job start records are not published, or undefined when they are. */
export function startRecordsOff(layout: RecordLayout, enableJobStart: boolean): string | undefined {
  if (!layout.startRecords) return `start records disabled: the ${layout.name} record format has none, Slurm added them in 25.05`;
  if (!enableJobStart) return 'start records disabled: no enable_job_start in JobCompParams';
  return undefined;
}
