// `jobcompd tail`: the records on this configuration's topics, as they arrive
// (docs/operations.md "jobcompd tail").

import { fstatSync, fsyncSync } from 'node:fs';
import type { Message } from 'node-rdkafka';
import type { LoadOptions } from '../../config/daemon-conf';
import { loadVerifiedConfig, writtenTopics } from '../../app/config';
import { printerFor, isStartRecord, type OutputFormat, type TailRecord } from '../../tail/formats';
import { TailReader, type StartAt } from '../../tail/reader';

export interface TailOptions {
  startAt: StartAt;
  follow: boolean;
  event: 'start' | 'end' | undefined;
  jobIds: number[] | undefined;
  format: OutputFormat;
  header: boolean;
  group: string | undefined;
}

export async function runTail(loadOpts: LoadOptions, opts: TailOptions): Promise<number> {
  const cfg = await loadVerifiedConfig(loadOpts);
  const written = writtenTopics(cfg);
  // both events may share a topic (JobCompParams topic= and topic_job_start= alike): --event also filters by record
  const topics = [...new Set(opts.event === 'start' ? [written.start] : opts.event === 'end' ? [written.finish] : written.names)];
  const printer = printerFor(opts.format, cfg.daemon.recordFormat.layout);
  const toFile = fstatSync(1).isFile();
  let headerDue = opts.header && printer.header !== '';

  const reader = new TailReader(cfg.producer, {
    topics,
    startAt: opts.startAt,
    follow: opts.follow,
    group: opts.group,
    onMissingTopics: (names) => process.stderr.write(`jobcompd: warning: topic(s) ${names.join(', ')} not found; reading the others\n`),
    onBatch: async (messages) => {
      const lines: Buffer[] = [];
      for (const m of messages) {
        const r = toRecord(m);
        if (r === undefined) process.stderr.write(`jobcompd: warning: ${m.topic} partition ${m.partition} offset ${m.offset} is not a job record (not a JSON object); skipped\n`);
        else if (wanted(r, opts)) lines.push(printer.line(r));
      }
      if (lines.length === 0) return true;
      if (headerDue) lines.unshift(Buffer.from(printer.header));
      headerDue = false;
      if (!(await write(Buffer.concat(lines)))) return false;
      // a sink's file must hold the records before their offsets are committed
      if (toFile) fsyncSync(1);
      return true;
    },
  });
  const stop = (): void => reader.stop();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.on('error', () => undefined); // EPIPE and the like reach write()'s callback
  await reader.run();
  return 0;
}

/** false when stdout is gone (EPIPE: the reading end, e.g. head, has exited). */
function write(chunk: Buffer): Promise<boolean> {
  return new Promise((resolve, reject) => {
    process.stdout.write(chunk, (err) => {
      if (!err) resolve(true);
      else if ((err as NodeJS.ErrnoException).code === 'EPIPE') resolve(false);
      else reject(err);
    });
  });
}

/** The payload as published (a trailing NUL of 23.02-23.11.6 dropped); undefined when it is not a JSON object. */
function toRecord(m: Message): TailRecord | undefined {
  if (!m.value) return undefined;
  const json = m.value[m.value.length - 1] === 0 ? m.value.subarray(0, -1) : m.value;
  try {
    const fields: unknown = JSON.parse(json.toString('utf8'));
    return typeof fields === 'object' && fields !== null && !Array.isArray(fields) ? { json, fields: fields as Record<string, unknown> } : undefined;
  } catch {
    return undefined;
  }
}

function wanted(r: TailRecord, opts: TailOptions): boolean {
  if (opts.event !== undefined && isStartRecord(r.fields) !== (opts.event === 'start')) return false;
  return opts.jobIds === undefined || opts.jobIds.includes(Number(r.fields.jobid));
}
