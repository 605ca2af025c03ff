// The command line without a broker: `--help` on every command, and `replay --dry-run` of
// the elasticsearch_state a real Slurm 22.05 left, which shows the records as they would be
// produced.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/cli';
import { encodeElasticsearchState, parseSlurmState } from '../../src/migrate/slurm-state';
import { runCli, runCliBytes, tempDir, writeFiles } from '../helpers/cli';
import { expectedPayload } from '../helpers/records';

jest.setTimeout(60_000);

const ES_STATE = join(__dirname, '../fixtures/slurm-state/elasticsearch_state.2jobs.bin');

describe('--help', () => {
  const program = buildProgram();
  const commands = program.commands.map((c) => c.name());
  // the commands that run something: `topics create` and `topics describe`, not `topics`
  const leaves = (cmd: Command, path: string[]): [string, Command][] =>
    cmd.commands.length === 0 ? [[path.join(' '), cmd]] : cmd.commands.flatMap((c) => leaves(c, [...path, c.name()]));
  const runnable = program.commands.flatMap((c) => leaves(c, [c.name()]));

  it('jobcompd --help lists every command', () => {
    const r = runCli(['--help']);
    expect(r.code).toBe(0);
    expect(commands.sort()).toEqual(['check-config', 'convert', 'repair-state', 'replay', 'run', 'status', 'tail', 'topics']);
    for (const name of commands) expect(r.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
  });

  it.each(runnable)('jobcompd %s --help exits 0 and documents each of its options', (name, cmd) => {
    const r = runCli([...name.split(' '), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: jobcompd ${name}`);
    const unwrapped = r.stdout.replace(/\s+/g, ' '); // commander wraps long descriptions
    expect(unwrapped).toContain(cmd.description());
    expect(cmd.options.length).toBeGreaterThan(0);
    for (const opt of cmd.options) {
      expect(opt.description.length).toBeGreaterThan(0);
      expect(unwrapped).toContain(`${opt.flags} ${opt.description}`);
    }
  });
});

describe('replay --dry-run --from-slurm-state on an elasticsearch_state', () => {
  const dir = tempDir();
  const { 'jobcompd.conf': conf } = writeFiles(dir, {
    'rdkafka.conf': 'bootstrap.servers=127.0.0.1:1\n', // never contacted
    'jobcompd.conf': 'ClusterName=dry\nStateDir=state\nJobCompLoc=rdkafka.conf\n',
  });
  const bodies = parseSlurmState(readFileSync(ES_STATE)).records.map((r) => r.payload);
  const dryRun = (...args: string[]): ReturnType<typeof runCli> => runCli(['replay', '-c', conf as string, '--dry-run', ...args]);

  it('prints the mapped jobcomp/kafka payloads, exactly, not the 22.05 bodies', () => {
    expect(bodies).toHaveLength(2);
    const r = runCliBytes(['replay', '-c', conf as string, '--dry-run', '--from-slurm-state', ES_STATE], Buffer.alloc(0));
    expect(r.code).toBe(0);
    expect(r.stdout.equals(Buffer.concat(bodies.flatMap((b) => [expectedPayload(b), Buffer.from('\n')])))).toBe(true);
    expect(r.stdout.toString('utf8')).toContain('"container":null'); // a field 22.05 did not send
  });

  it('applies the filters', () => {
    const json = dryRun('--from-slurm-state', ES_STATE, '--json', '--job', '22');
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { from: 'elasticsearch_state.2jobs.bin', rowId: null, jobId: 22, event: 'job finish', topic: 'dry', receivedAt: null, payload: expectedPayload(bodies[1] as Buffer).toString('utf8') },
    ]);
    expect(dryRun('--from-slurm-state', ES_STATE, '--event', 'start').stdout).toBe('');
    // imported records are received at the time of the import
    expect(dryRun('--from-slurm-state', ES_STATE, '--until', '2000-01-01T00:00:00').stdout).toBe('');
    expect(dryRun('--from-slurm-state', ES_STATE, '--since', String(Date.now() / 1000 - 60)).stdout.split('\n')).toHaveLength(3);
  });

  it('leaves out what the import would deduplicate or quarantine, and says why on stderr', () => {
    const file = join(tempDir(), 'elasticsearch_state');
    writeFileSync(file, encodeElasticsearchState([bodies[0] as Buffer, bodies[0] as Buffer, Buffer.from('{"jobid":23}')]));
    const r = dryRun('--from-slurm-state', file);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${expectedPayload(bodies[0] as Buffer).toString('utf8')}\n`);
    expect(r.stderr).toMatch(/^jobcompd: elasticsearch_state record 3 \(job 23\) would be quarantined: .+\n$/);
  });
});
