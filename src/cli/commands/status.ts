// `jobcompd status`: asks the running daemon; when none runs, reads the state file.

import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { loadDaemonConfig, type DaemonConfig, type LoadOptions } from '../../config/daemon-conf';
import { EXIT_NOPERM, StateCodes, StateError } from '../../errors';
import { STATE_FILE_NAME } from '../../outbox/open';
import { Outbox } from '../../outbox/outbox';
import { buildStatus, formatStatus, type StatusReport } from '../../app/status';

export async function runStatus(opts: LoadOptions, json: boolean): Promise<number> {
  const cfg = loadDaemonConfig(opts);
  const report = await readStatus(cfg);
  process.stdout.write(json ? `${JSON.stringify(report)}\n` : `${formatStatus(report)}\n`);
  return 0;
}

export async function readStatus(cfg: DaemonConfig): Promise<StatusReport> {
  const file = join(cfg.stateDir, STATE_FILE_NAME);
  const access = stateFileAccess(file);
  if (access === 'missing') {
    return buildStatus(file, { backlog: 0, oldestReceivedAt: undefined, delivered: 0, quarantined: 0, deduplicated: 0 }, null);
  }
  if (access === 'denied') {
    // The state dir is SlurmUser's (0700): whoever else asks can only learn the numbers
    // from the daemon, if one runs.
    return askDaemon(
      cfg,
      new StateError(
        StateCodes.permission,
        `cannot read the state file ${file}: permission denied; run jobcompd status as SlurmUser or root (e.g. runuser -u slurm -- jobcompd status)`,
        EXIT_NOPERM,
      ),
    );
  }
  try {
    const outbox = Outbox.open(cfg.stateDir, { mustExist: true });
    try {
      return buildStatus(outbox.file, outbox.stats(), null, Date.now(), outbox.recordedErrors());
    } finally {
      outbox.close();
    }
  } catch (err) {
    if (err instanceof StateError && err.code === StateCodes.locked) return askDaemon(cfg, err);
    throw err;
  }
}

/** Read and write access (a WAL database cannot be read without writing), told apart from absence. */
function stateFileAccess(file: string): 'ok' | 'missing' | 'denied' {
  try {
    accessSync(file, constants.R_OK | constants.W_OK);
    return 'ok';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    if (code === 'EACCES' || code === 'EPERM') return 'denied';
    throw new StateError(StateCodes.io, `cannot access the state file ${file}: ${(err as Error).message}`);
  }
}

/** The daemon's own status; when it cannot be asked, `why` (the reason the file could not be read) with how asking failed. */
async function askDaemon(cfg: DaemonConfig, why: StateError): Promise<StatusReport> {
  const listen = cfg.adminListen;
  if (!listen) throw new StateError(why.code, `${why.message}; no running daemon could be asked ([admin] Listen=off)`, why.exitCode);
  const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}/status`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return (await res.json()) as StatusReport;
  } catch (err) {
    // fetch() says only "fetch failed"; the cause says e.g. ECONNREFUSED (no daemon runs)
    const cause = (err as Error).cause;
    const detail = cause instanceof Error ? `${(err as Error).message} (${cause.message})` : (err as Error).message;
    throw new StateError(why.code, `${why.message}; asking the daemon at ${url} failed: ${detail}`, why.exitCode);
  }
}
