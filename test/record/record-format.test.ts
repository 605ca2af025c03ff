// RecordFormat: a Slurm release as an admin types it -> the record layout of that
// release's jobcomp/kafka (docs/record-mapping.md, "Record format per release").

import { ConfigError } from '../../src/errors';
import { DEFAULT_RECORD_FORMAT, parseRecordFormat, RECORD_LAYOUTS } from '../../src/record/record-format';

const at = { file: 'jobcompd.conf', line: 7, key: 'RecordFormat' };
const layoutFor = (release: string): string => parseRecordFormat(release, at).layout.name;

it.each([
  ['23.02', '23.02-23.11.0'],
  ['23.02.7', '23.02-23.11.0'],
  ['23.11.0', '23.02-23.11.0'],
  ['23.11.1', '23.11.1-23.11.6'],
  ['23.11.6', '23.11.1-23.11.6'],
  ['23.11.7', '23.11.7-23.11.8'],
  ['23.11.8', '23.11.7-23.11.8'],
  ['23.11.9', '23.11.9+'],
  ['23.11.11', '23.11.9+'],
  ['24.05.0', '24.05.0'],
  ['24.05.1', '24.05.1-24.11'],
  ['24.05.8', '24.05.1-24.11'],
  ['24.11', '24.05.1-24.11'],
  ['24.11.7', '24.05.1-24.11'],
  ['25.05', '25.05-25.11'],
  ['25.05.8', '25.05-25.11'],
  ['25.11', '25.05-25.11'],
  ['25.11.7', '25.05-25.11'],
  ['26.05', '26.05'],
  ['26.05.3', '26.05'],
  [' 24.11 ', '24.05.1-24.11'],
])('RecordFormat=%s is the %s layout', (release, layout) => {
  expect(layoutFor(release)).toBe(layout);
});

it('defaults to the newest layout, 26.05', () => {
  expect(DEFAULT_RECORD_FORMAT.layout.name).toBe('26.05');
  expect(DEFAULT_RECORD_FORMAT.layout).toBe(RECORD_LAYOUTS[RECORD_LAYOUTS.length - 1]);
});

function refusal(value: string): ConfigError {
  try {
    parseRecordFormat(value, at);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`${value} was accepted`);
}

it.each(['23.11', '24.05'])('refuses %s, a series whose record changed between patch releases, naming file, line and key', (value) => {
  const err = refusal(value);
  expect(err.code).toBe('E_CONFIG_BAD_VALUE');
  expect(err.exitCode).toBe(78);
  expect(err.location).toEqual(at);
  expect(err.detail).toContain('ambiguous');
});

it.each(['22.05', '26.11', '24.08', '24', 'latest', '', '24.11.x', '24.11.7.1', 'v24.11'])('refuses %j, which is no release with jobcomp/kafka', (value) => {
  const err = refusal(value);
  expect(err.code).toBe('E_CONFIG_BAD_VALUE');
  expect(err.location).toEqual(at);
  expect(err.detail).not.toContain('ambiguous');
});

it('orders the layouts oldest first, each row different from the one before', () => {
  const rules = RECORD_LAYOUTS.map(({ name: _name, since: _since, ...r }) => JSON.stringify(r));
  for (let i = 1; i < RECORD_LAYOUTS.length; i++) {
    const [a, b] = [RECORD_LAYOUTS[i - 1], RECORD_LAYOUTS[i]];
    expect(a && b && (a.since[0] - b.since[0] || a.since[1] - b.since[1] || a.since[2] - b.since[2])).toBeLessThan(0);
    expect(rules[i]).not.toBe(rules[i - 1]);
  }
});
