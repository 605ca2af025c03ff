// `jobcompd convert --from elasticsearch`: stdin (one input record) -> stdout (the exact
// jobcomp/kafka payload bytes). For admins checking a mapping, and for tests.

import { parseJobCompParams } from '../config/jobcomp-params';
import { parseElasticsearchBody } from '../record/from-elasticsearch';
import { serialize } from '../record/serialize';

export async function runConvert(from: 'elasticsearch', paramsText: string, newline: boolean): Promise<number> {
  const { params, warnings } = parseJobCompParams(paramsText, { file: '--params' });
  for (const w of warnings) process.stderr.write(`jobcompd: warning: ${w}\n`);
  const input = await readAll(process.stdin);
  const record = from === 'elasticsearch' ? parseElasticsearchBody(input, { sendScript: params.sendScript }) : undefined;
  if (!record) throw new Error(`unsupported input format ${from as string}`);
  const payload = serialize(record);
  await write(newline ? Buffer.concat([payload, Buffer.from('\n')]) : payload);
  return 0;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

function write(data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(data, (err) => (err ? reject(err) : resolve())));
}
