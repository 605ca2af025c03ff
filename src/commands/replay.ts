// `jobcompd replay`: resend saved state and exit once it is drained. Refuses while a daemon
// (or another replay) holds the state file.
//   --job/--event/--since/--until   only matching records (the others stay saved)
//   --quarantined                   first move quarantined records back (the cause was fixed)
//   --from-slurm-state FILE         first import jobcomp_kafka_state / elasticsearch_state
//   --dry-run [--json]              print what would be sent; change and send nothing

import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { LoadOptions } from '../config/daemon-conf';
import { loadConfig, topicsOf, type LoadedConfig } from '../config/load';
import { EXIT_NOINPUT, EXIT_TEMPFAIL, StateCodes, StateError, errorMessage, type ConfigError } from '../errors';
import { Ingest } from '../ingest';
import { createLogger } from '../log';
import { parseSlurmState } from '../migrate/slurm-state';
import { Outbox, STATE_FILE_NAME, type OutboxRow, type RowFilter } from '../outbox/outbox';
import { Publisher } from '../publisher';
import { eventName, JobEvent } from '../record/job-record';
import { importSlurmState, publishableFrom, requeueQuarantined } from '../replay/sources';

export interface ReplayOptions {
  filter: RowFilter;
  quarantined: boolean;
  fromSlurmState: string | undefined;
  dryRun: boolean;
  json: boolean;
  timeoutSeconds: number | undefined;
}

const PROGRESS_INTERVAL_MS = 2000;

export async function runReplay(loadOpts: LoadOptions, opts: ReplayOptions): Promise<number> {
  const cfg = loadConfig(loadOpts);
  const stateFile = opts.fromSlurmState === undefined ? undefined : readStateFile(opts.fromSlurmState);
  if (opts.dryRun) return dryRun(cfg, opts, stateFile);

  const log = createLogger(cfg.daemon.logLevel === 'info' ? 'warn' : cfg.daemon.logLevel, 2);
  const publisher = new Publisher(cfg, log, { filter: opts.filter });
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  if (stateFile) {
    const ingest = new Ingest(publisher.outbox, () => publisher.currentParams, log);
    const r = await importSlurmState(ingest, stateFile.buf, stateFile.name);
    say(`imported ${stateFile.name} (${r.kind}${r.slurmVersion ? `, Slurm ${r.slurmVersion}` : ''}): ${r.stored} new, ${r.duplicates} already known, ${r.quarantined} quarantined`);
  }
  if (opts.quarantined) {
    const r = requeueQuarantined(publisher.outbox, opts.filter, publisher.currentParams);
    say(`moved ${r.requeued} quarantined record(s) back to be sent; ${r.kept.length} kept in quarantine`);
    for (const k of r.kept) say(`  quarantine id ${k.id} kept: ${k.reason}`);
  }

  const total = publisher.outbox.count(opts.filter);
  say(`replaying ${total} saved record(s) from ${publisher.outbox.file}`);
  const progress = startProgress(publisher, total);
  publisher.start();
  const outcome = await Promise.race([
    publisher.drained().then(() => 'drained' as const),
    new Promise<ConfigError>((resolve) => publisher.once('config-error', resolve)),
    new Promise<'timeout'>((resolve) => {
      if (opts.timeoutSeconds !== undefined) setTimeout(() => resolve('timeout'), opts.timeoutSeconds * 1000).unref();
    }),
  ]);
  progress.stop();
  const { remaining } = await publisher.stop();
  const { delivered, quarantined } = publisher.dispatcher.counters;
  say(`delivered ${delivered}, quarantined ${quarantined}, still saved ${remaining}`);
  if (outcome === 'drained') return 0;
  if (outcome === 'timeout') {
    process.stderr.write(`jobcompd: replay timed out after ${opts.timeoutSeconds ?? 0} s; undelivered records stay saved\n`);
    return EXIT_TEMPFAIL;
  }
  throw outcome;
}

function readStateFile(path: string): { buf: Buffer; name: string } {
  try {
    return { buf: readFileSync(path), name: basename(path) };
  } catch (err) {
    throw new StateError(StateCodes.io, `cannot read ${path}: ${errorMessage(err)}`, EXIT_NOINPUT);
  }
}

/** A progress bar on a terminal, a plain line every few seconds otherwise. */
function startProgress(publisher: Publisher, total: number): { stop(): void } {
  const tty = process.stdout.isTTY === true;
  const render = (): string => {
    const { delivered, quarantined } = publisher.dispatcher.counters;
    const done = Math.min(total, delivered + quarantined);
    const line = `${done}/${total} sent (${delivered} delivered, ${quarantined} quarantined)`;
    if (!tty || total === 0) return `  ${line}\n`;
    const width = 30;
    const filled = Math.round((done / total) * width);
    return `\r  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}`;
  };
  const timer = setInterval(() => process.stdout.write(render()), tty ? 200 : PROGRESS_INTERVAL_MS);
  return {
    stop() {
      clearInterval(timer);
      if (tty) process.stdout.write(`${render()}\n`);
    },
  };
}

/** Print what would be sent, in order; the state file is not changed and Kafka not contacted. */
async function dryRun(cfg: LoadedConfig, opts: ReplayOptions, stateFile: { buf: Buffer; name: string } | undefined): Promise<number> {
  const topics = topicsOf(cfg.params, cfg.daemon.clusterName);
  const print = (r: { id: number | null; event: JobEvent; jobId: number; payload: Buffer; receivedAt: number | null; from: string }): void => {
    if (!opts.json) {
      process.stdout.write(Buffer.concat([r.payload, Buffer.from('\n')]));
      return;
    }
    const topic = r.event === JobEvent.start ? topics.start : topics.finish;
    const receivedAt = r.receivedAt === null ? null : new Date(r.receivedAt).toISOString();
    process.stdout.write(`${JSON.stringify({ from: r.from, rowId: r.id, jobId: r.jobId, event: eventName(r.event), topic, receivedAt, payload: r.payload.toString('utf8') })}\n`);
  };
  if (stateFile) {
    const state = parseSlurmState(stateFile.buf, stateFile.name);
    for (const rec of state.records) print({ id: null, event: rec.event, jobId: rec.jobId ?? 0, payload: rec.payload, receivedAt: null, from: stateFile.name });
  }
  if (!existsSync(join(cfg.daemon.stateDir, STATE_FILE_NAME))) return 0;
  const outbox = Outbox.open(cfg.daemon.stateDir, { mustExist: true });
  try {
    if (opts.quarantined) {
      for (const row of outbox.quarantineRows(opts.filter)) {
        const p = publishableFrom(row, cfg.params);
        if (typeof p !== 'string') print({ id: row.id, ...p, receivedAt: row.receivedAt, from: 'quarantine' });
      }
    }
    for (let cursor = 0, rows: OutboxRow[]; (rows = outbox.pendingAfter(cursor, 1000, opts.filter)).length > 0; cursor = rows[rows.length - 1]?.id ?? cursor) {
      for (const row of rows) print({ id: row.id, event: row.event, jobId: row.jobId, payload: row.payload, receivedAt: row.receivedAt, from: 'outbox' });
    }
  } finally {
    outbox.close();
  }
  return 0;
}
