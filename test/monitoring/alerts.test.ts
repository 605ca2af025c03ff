// The shipped alert rules (config/prometheus/jobcompd-alerts.yml) are valid and do what
// they say: promtool's unit tests (alerts.promtool.yml) fire each alert on its condition
// and none on a healthy daemon. Debian's prometheus package provides promtool.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../helpers/cli';

const RULES = join(PROJECT_ROOT, 'config/prometheus/jobcompd-alerts.yml');
const TESTS = join(__dirname, 'alerts.promtool.yml');

function promtool(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, out: r.stdout + r.stderr };
}

test('promtool accepts the rule file', () => {
  const r = promtool('check', 'rules', RULES);
  expect(r).toEqual({ code: 0, out: expect.stringContaining('SUCCESS: 6 rules found') as string });
});

test("promtool's unit tests of every alert pass", () => {
  const r = promtool('test', 'rules', TESTS);
  expect(r).toEqual({ code: 0, out: expect.stringContaining('SUCCESS') as string });
});
