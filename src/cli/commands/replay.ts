// `jobcompd replay`: resend saved state and exit once it is drained. Refuses while a daemon
// (or another replay) holds the state file.
//   --job/--event/--since/--until   only matching records (the others stay saved)
//   --quarantined                   first move quarantined records back (the cause was fixed)
//   --from-slurm-state FILE         first import jobcomp_kafka_state / elasticsearch_state
//   --dry-run [--json]              print what would be sent; change and send nothing
//   --json                          without --dry-run: one JSON summary at the end

import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { LoadOptions } from '../../config/daemon-conf';
import { loadConfig, topicsOf, type LoadedConfig } from '../../app/config';
import { EXIT_NOINPUT, EXIT_TEMPFAIL, StateCodes, StateError, errorMessage, type ConfigError } from '../../errors';
import { dedupKeyOf, Ingest } from '../../ingest';
import { createLogger } from '../../log';
import { matchesFilter, type RowFilter } from '../../outbox/filter';
import { STATE_FILE_NAME } from '../../outbox/open';
import { Outbox, type OutboxRow } from '../../outbox/outbox';
import { Publisher } from '../../app/publisher';
import { eventName, JobEvent } from '../../record/job-record';
import { payloadOptionsOf } from '../../record/to-payload';
import { importSlurmState, planSlurmStateImport, publishableFrom, requeueQuarantined, type Imported, type Requeued } from '../../replay/into-outbox';

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
  // With --json, stdout is one summary object at the end: no lines, no progress.
  const say = (line: string): void => {
    if (!opts.json) process.stdout.write(`${line}\n`);
  };
  const summary: ReplaySummary = { stateFile: publisher.outbox.file, imported: null, requeued: null, total: 0, delivered: 0, quarantined: 0, remaining: 0, outcome: 'drained' };
  if (stateFile) {
    const ingest = new Ingest(publisher.outbox, () => publisher.currentParams, cfg.daemon.recordFormat, log);
    const r = await importSlurmState(ingest, stateFile.buf, stateFile.name, payloadOptionsOf(publisher.currentParams, cfg.daemon.recordFormat));
    summary.imported = { file: stateFile.name, ...r };
    say(`imported ${stateFile.name} (${r.kind}${r.slurmVersion ? `, Slurm ${r.slurmVersion}` : ''}): ${r.stored} new, ${r.duplicates} already known, ${r.quarantined} quarantined`);
  }
  if (opts.quarantined) {
    const r = requeueQuarantined(publisher.outbox, opts.filter, payloadOptionsOf(publisher.currentParams, cfg.daemon.recordFormat));
    summary.requeued = r;
    say(`moved ${r.requeued} quarantined record(s) back to be sent; ${r.kept.length} kept in quarantine`);
    for (const k of r.kept) say(`  quarantine id ${k.id} kept: ${k.reason}`);
  }

  summary.total = publisher.outbox.count(opts.filter);
  say(`replaying ${summary.total} saved record(s) from ${publisher.outbox.file}`);
  const progress = opts.json ? { stop: () => undefined } : startProgress(publisher, summary.total);
  publisher.start();
  const outcome = await Promise.race([
    publisher.drained().then(() => 'drained' as const),
    new Promise<ConfigError>((resolve) => publisher.once('config-error', resolve)),
    // a damaged page the dispatcher reached (docs/operations.md): the state file is unusable
    new Promise<StateError>((resolve) => publisher.outbox.once('fatal', resolve)),
    new Promise<'timeout'>((resolve) => {
      if (opts.timeoutSeconds !== undefined) setTimeout(() => resolve('timeout'), opts.timeoutSeconds * 1000).unref();
    }),
  ]);
  progress.stop();
  if (outcome instanceof StateError) {
    // counting what is left would read the damaged file again
    await publisher.stop().catch(() => undefined);
    throw outcome;
  }
  const { remaining } = await publisher.stop();
  const { delivered, quarantined } = publisher.dispatcher.counters;
  say(`delivered ${delivered}, quarantined ${quarantined}, still saved ${remaining}`);
  if (typeof outcome !== 'string') throw outcome;
  Object.assign(summary, { delivered, quarantined, remaining, outcome });
  if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (outcome === 'drained') return 0;
  process.stderr.write(`jobcompd: replay timed out after ${opts.timeoutSeconds ?? 0} s; undelivered records stay saved\n`);
  return EXIT_TEMPFAIL;
}

/** `replay --json` (without --dry-run): what the replay did. */
interface ReplaySummary {
  stateFile: string;
  imported: ({ file: string } & Imported) | null;
  requeued: Requeued | null;
  /** matching records to send once import and requeue were done */
  total: number;
  delivered: number;
  quarantined: number;
  /** matching records still saved at the end */
  remaining: number;
  outcome: 'drained' | 'timeout';
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

interface Planned {
  from: string;
  id: number | null;
  event: JobEvent;
  jobId: number;
  payload: Buffer;
  receivedAt: number | null;
}

/**
 * Print what a replay with the same options would send, in the order it would: the saved
 * records, then those imported from --from-slurm-state (mapped and serialized as the import
 * stores them, duplicates left out), then those moved back from quarantine. The state file
 * is not changed and Kafka not contacted. What would go to quarantine is said on stderr.
 */
async function dryRun(cfg: LoadedConfig, opts: ReplayOptions, stateFile: { buf: Buffer; name: string } | undefined): Promise<number> {
  const topics = topicsOf(cfg.params, cfg.daemon.clusterName);
  const payloadOptions = payloadOptionsOf(cfg.params, cfg.daemon.recordFormat);
  const print = (r: Planned): void => {
    if (!opts.json) {
      process.stdout.write(Buffer.concat([r.payload, Buffer.from('\n')]));
      return;
    }
    const topic = r.event === JobEvent.start ? topics.start : topics.finish;
    const receivedAt = r.receivedAt === null ? null : new Date(r.receivedAt).toISOString();
    process.stdout.write(`${JSON.stringify({ from: r.from, rowId: r.id, jobId: r.jobId, event: eventName(r.event), topic, receivedAt, payload: r.payload.toString('utf8') })}\n`);
  };
  const plan = stateFile ? planSlurmStateImport(stateFile.buf, stateFile.name, payloadOptions) : undefined;
  const outbox = existsSync(join(cfg.daemon.stateDir, STATE_FILE_NAME))
    ? Outbox.open(cfg.daemon.stateDir, { mustExist: true, dedupWindowMs: cfg.daemon.dedupWindowMs })
    : undefined;
  try {
    for (let cursor = 0, rows: OutboxRow[]; outbox && (rows = outbox.pendingAfter(cursor, 1000, opts.filter)).length > 0; cursor = rows[rows.length - 1]?.id ?? cursor) {
      for (const row of rows) print({ from: 'outbox', ...row });
    }
    if (stateFile && plan) {
      // Imported records are received now: --since/--until apply to the time of the import.
      const now = Date.now();
      const seen = new Set<string>();
      for (const rec of plan.records) {
        if (rec.kind === 'quarantine') {
          process.stderr.write(`jobcompd: ${stateFile.name} record ${rec.index + 1} (job ${rec.jobId ?? 'unknown'}) would be quarantined: ${rec.reason}\n`);
          continue;
        }
        if (cfg.daemon.dedupWindowMs > 0) {
          const key = dedupKeyOf(rec.event, rec.payload);
          if (outbox?.wouldDeduplicate(rec.jobId, key) === true || seen.has(key.toString('hex'))) continue;
          seen.add(key.toString('hex'));
        }
        if (matchesFilter(opts.filter, { ...rec, receivedAt: now })) print({ from: stateFile.name, id: null, ...rec, receivedAt: null });
      }
    }
    if (outbox && opts.quarantined) {
      for (const row of outbox.quarantineRows(opts.filter)) {
        const p = publishableFrom(row, payloadOptions);
        if (typeof p !== 'string') print({ from: 'quarantine', id: row.id, ...p, receivedAt: row.receivedAt });
      }
    }
  } finally {
    outbox?.close();
  }
  return 0;
}
