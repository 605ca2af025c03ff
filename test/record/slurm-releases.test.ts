// `jobcompd convert --format <release>` against what real Slurm 24.11, 25.11 and 26.05 printed
// (test/fixtures/slurm-<release>/, captured by `make conformance`, README there): the
// elasticsearch body of a job converts to the real jobcomp/kafka payload of the same job, byte
// for byte after normalising run-dependent values (the two come from two runs of the suite);
// a script or prolog environment converts to the plugin's record except in the fields that
// path cannot know (listed by the run in unknowable.json).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCliBytes } from '../helpers/cli';
import { deriveTresRaw } from '../../src/record/tres';
import { compareFields, normalised, parsePayload, type Payload } from '../helpers/payload';

const FIXTURES = join(__dirname, '..', 'fixtures');
const PARAMS = 'send_script,send_comment';
const releases = readdirSync(FIXTURES).filter((d) => /^slurm-\d\d\.\d\d$/.test(d)).map((d) => d.slice('slurm-'.length));

function files(format: string, kind: string): Map<string, Buffer> {
  const dir = join(FIXTURES, `slurm-${format}`, kind);
  if (!existsSync(dir)) return new Map();
  return new Map(readdirSync(dir).map((f) => [f.replace(/\.[a-z]+$/, ''), readFileSync(join(dir, f))]));
}

function convert(format: string, from: 'elasticsearch' | 'script' | 'prolog', input: Buffer): Payload {
  const r = runCliBytes(['convert', '--from', from, '--format', format, '--params', PARAMS], input);
  if (r.code !== 0) throw new Error(`convert --from ${from} --format ${format} exited ${String(r.code)}: ${r.stderr}`);
  return parsePayload(r.stdout);
}

/** job id -> job name over a release's plugin records, for the ids inside orig_dependency. */
function ids(payloads: Payload[]): Map<number, string> {
  return new Map(payloads.map((p) => [Number(p.value['jobid']), String(p.value['job_name'])]));
}

it('has the captures of every release the conformance suite runs', () => {
  expect(releases).toEqual(['24.11', '25.11', '26.05']);
});

describe.each(releases)('Slurm %s', (format) => {
  const plugin = files(format, 'kafka');
  const pluginStart = files(format, 'kafka-start');
  const pluginIds = ids([...plugin.values()].map(parsePayload));
  const unknowable = JSON.parse(readFileSync(join(FIXTURES, `slurm-${format}`, 'unknowable.json'), 'utf8')) as { script: string[]; start: string[] };

  it('converts each elasticsearch body to the plugin payload of the same job, byte for byte', () => {
    const bodies = files(format, 'elasticsearch');
    expect([...bodies.keys()].sort()).toEqual([...plugin.keys()].sort());
    const bodyIds = ids([...bodies.values()].map(parsePayload));
    for (const [job, body] of bodies) {
      const ours = convert(format, 'elasticsearch', body);
      const theirs = parsePayload(plugin.get(job) as Buffer);
      expect({ job, bytes: normalised(ours, bodyIds) }).toEqual({ job, bytes: normalised(theirs, pluginIds) });
    }
  });

  /** Every (formatted, raw) pair of `key` the release printed, with the 22.05 inference of the raw list. */
  function tresPairs(key: 'tres_req' | 'tres_alloc'): { formatted: string; printed: unknown; inferred: string | undefined }[] {
    return [...plugin.values(), ...pluginStart.values()]
      .map((bytes) => parsePayload(bytes).value)
      .filter((v) => typeof v[key] === 'string')
      .map((v) => ({ formatted: v[key] as string, printed: v[`${key}_raw`], inferred: deriveTresRaw(v[key] as string, key === 'tres_req' ? 'requested' : 'allocated') }));
  }

  it('infers tres_req_raw from tres_req (what 22.05 bodies lack) as the release printed it', () => {
    const pairs = tresPairs('tres_req');
    expect(pairs.length).toBeGreaterThan(0);
    for (const p of pairs) expect(p.inferred).toBe(p.printed);
  });

  // the formatted list never shows energy; the releases print it at NO_VAL64 (docs/record-mapping.md)
  it('infers tres_alloc_raw from tres_alloc as the release printed it', () => {
    const pairs = tresPairs('tres_alloc');
    expect(pairs.length).toBeGreaterThan(0);
    for (const p of pairs) expect(p.inferred).toBe(p.printed);
  });

  it.each([
    ['script', 'script', plugin],
    ['prolog', 'start', pluginStart],
  ] as const)('converts each %s environment to the plugin record except where the path cannot know', (kind, list, reference) => {
    const envs = files(format, kind);
    if (list === 'start' && reference.size === 0) {
      // 24.11 has no start records: nothing to publish (EX_DATAERR), as its plugin publishes none.
      expect(envs.size).toBeGreaterThan(0);
      for (const env of envs.values()) expect(runCliBytes(['convert', '--from', 'prolog', '--format', format], env).code).toBe(65);
      return;
    }
    expect(envs.size).toBe(reference.size);
    // The hook stamps the prolog's start time (JOBCOMPD_HOOK_TIME); the capture was taken before it.
    const stamp = kind === 'prolog' ? Buffer.from('JOBCOMPD_HOOK_TIME=1796400000\n') : Buffer.alloc(0);
    const converted = new Map([...envs].map(([job, env]) => [job, convert(format, kind, Buffer.concat([env, stamp]))]));
    const ourIds = ids([...converted.values()]);
    for (const [job, ours] of converted) {
      const theirs = parsePayload(reference.get(job) as Buffer);
      const wrong = compareFields(theirs, ours, pluginIds, ourIds).filter((f) => f.verdict !== 'same' && !unknowable[list].includes(f.key));
      expect({ job, wrong }).toEqual({ job, wrong: [] });
    }
  });
});
