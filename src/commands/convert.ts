// `jobcompd convert --from FORMAT`: stdin (one input record) -> stdout (the exact
// jobcomp/kafka payload bytes). For admins checking a mapping, and for tests.
//   elasticsearch  the JSON body jobcomp/elasticsearch POSTs
//   script         a jobcomp/script environment, KEY=VALUE lines (as `env` prints them)
//   prolog         a PrologSlurmctld environment, KEY=VALUE lines; @start comes from
//                  SLURM_JOB_START_TIME (24.11+), else JOBCOMPD_HOOK_TIME (the hook
//                  stamps it), left out if neither is there
// --format RELEASE picks the record layout as RecordFormat does (default: the newest).

import { parseJobCompParams } from '../config/jobcomp-params';
import { RecordCodes, RecordError } from '../errors';
import { DEFAULT_RECORD_FORMAT, parseRecordFormat } from '../record/record-format';
import { payloadOptionsOf, toPayload, type RecordInput } from '../record/to-payload';

export const INPUT_FORMATS = ['elasticsearch', 'script', 'prolog'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

export interface ConvertOptions {
  from: InputFormat;
  /** JobCompParams */
  params: string;
  /** a Slurm release, as RecordFormat takes it; undefined: the newest */
  format: string | undefined;
  newline: boolean;
}

export async function runConvert(opts: ConvertOptions): Promise<number> {
  const { params, warnings } = parseJobCompParams(opts.params, { file: '--params' });
  for (const w of warnings) process.stderr.write(`jobcompd: warning: ${w}\n`);
  const format = opts.format === undefined ? DEFAULT_RECORD_FORMAT : parseRecordFormat(opts.format, { file: '--format' });
  const input = await readAll(process.stdin);
  const mapped = toPayload(inputOf(opts.from, input), payloadOptionsOf(params, format));
  // an EpilogSlurmctld environment publishes nothing, nor a start record in a layout without them
  if (mapped.kind !== 'record') throw new RecordError(RecordCodes.notPublished, `no record is published for this input: ${mapped.reason}`);
  const { payload } = mapped;
  await write(opts.newline ? Buffer.concat([payload, Buffer.from('\n')]) : payload);
  return 0;
}

function inputOf(from: InputFormat, input: Buffer): RecordInput {
  switch (from) {
    case 'elasticsearch':
      return { kind: 'elasticsearch', body: input };
    case 'script':
      return { kind: 'env-dump', context: 'jobcomp', text: input };
    case 'prolog':
      return { kind: 'env-dump', context: 'prolog', text: input };
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

function write(data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(data, (err) => (err ? reject(err) : resolve())));
}
