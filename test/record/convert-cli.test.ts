// `jobcompd convert`, the admin's tool, through the real executable: every input format,
// the exact payload bytes on stdout, --newline, --params, and a clear refusal (exit 65).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCliBytes } from '../helpers/cli';

const ES = join(__dirname, '../fixtures/es-22.05');
const SCRIPT = join(__dirname, '../fixtures/script-22.05/run2');

function fixture(dir: string, prefix: string): { input: Buffer; expected: Buffer } {
  const name = readdirSync(dir).find((f) => f.startsWith(prefix)) ?? '';
  const expectedName = name.replace(/\.(json|env)$/, '.kafka.json');
  return { input: readFileSync(join(dir, name)), expected: readFileSync(join(dir, 'expected', expectedName)) };
}

it.each([
  ['elasticsearch', ES, 'job9-ok.'],
  ['script', SCRIPT, 'jobcomp.1.'],
  ['prolog', SCRIPT, 'prolog_ctld.1.'],
])('--from %s prints exactly the payload of the captured record, without a newline', (from, dir, prefix) => {
  const { input, expected } = fixture(dir, prefix);
  const r = runCliBytes(['convert', '--from', from], input);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout.equals(expected)).toBe(true);
});

it('--newline ends the output with one newline, which is not part of the payload', () => {
  const { input, expected } = fixture(ES, 'job9-ok.');
  const r = runCliBytes(['convert', '--from', 'elasticsearch', '--newline'], input);
  expect(r.code).toBe(0);
  expect(r.stdout.equals(Buffer.concat([expected, Buffer.from('\n')]))).toBe(true);
});

it('--params send_script keeps the batch script that is dropped by default', () => {
  const { input } = fixture(ES, 'job17-script-5k.');
  expect(runCliBytes(['convert', '--from', 'elasticsearch'], input).stdout.toString('utf8')).not.toContain('"script":');
  const withScript = runCliBytes(['convert', '--from', 'elasticsearch', '--params', 'send_script'], input);
  expect(withScript.code).toBe(0);
  expect(withScript.stdout.toString('utf8')).toContain('"script":"#!\\/bin\\/sh\\n# padding line 00000');
});

it('refuses input it cannot map with exit 65 and the reason, and prints nothing on stdout', () => {
  const r = runCliBytes(['convert', '--from', 'elasticsearch'], Buffer.from('{"jobid":"nine"}'));
  expect(r.code).toBe(65);
  expect(r.stdout.length).toBe(0);
  expect(r.stderr).toMatch(/^jobcompd: .*jobid/);
  const env = runCliBytes(['convert', '--from', 'script'], Buffer.from('JOBID=12\nUID=root\n'));
  expect(env.code).toBe(65);
  expect(env.stderr).toContain('UID');
});

describe('--format: the layout of another Slurm release', () => {
  const LAYOUTS = join(__dirname, '../fixtures/kafka-layouts');
  const body = readFileSync(join(LAYOUTS, '26.05-send_comment.finish.json'));

  it.each([
    ['26.05', 'send_comment', '26.05-send_comment.finish.json'],
    ['25.11', '', '25.05-25.11.finish.json'],
    ['23.11.7', '', '23.11.7-23.11.8.finish.json'],
  ])('--format %s --params %j prints that release\'s record', (format, params, name) => {
    const r = runCliBytes(['convert', '--from', 'elasticsearch', '--format', format, '--params', params], body);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const expected = readFileSync(join(LAYOUTS, name)).toString('latin1').replace(/"script":"[^"]*",/, '');
    expect(r.stdout.toString('latin1')).toBe(expected);
  });

  it('defaults to 26.05', () => {
    expect(runCliBytes(['convert', '--from', 'elasticsearch'], body).stdout.toString('latin1')).toBe(readFileSync(join(LAYOUTS, '26.05.finish.json')).toString('latin1'));
  });

  it('refuses a release it does not know with exit 78, and a start record under a release without them with exit 65', () => {
    const bad = runCliBytes(['convert', '--from', 'elasticsearch', '--format', '23.11'], body);
    expect(bad.code).toBe(78);
    expect(bad.stderr).toMatch(/^jobcompd: --format: "23.11" is ambiguous/);
    const { input } = fixture(SCRIPT, 'prolog_ctld.1.');
    const start = runCliBytes(['convert', '--from', 'prolog', '--format', '24.11'], input);
    expect(start.code).toBe(65);
    expect(start.stdout.length).toBe(0);
    expect(start.stderr).toContain('Slurm added them in 25.05');
  });
});
