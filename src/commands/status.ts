// `jobcompd status`: asks the running daemon; when none runs, reads the state file.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadDaemonConfig, type DaemonConfig, type LoadOptions } from '../config/daemon-conf';
import { StateCodes, StateError } from '../errors';
import { Outbox, STATE_FILE_NAME } from '../outbox/outbox';
import { buildStatus, formatStatus, type StatusReport } from '../status';

export async function runStatus(opts: LoadOptions, json: boolean): Promise<number> {
  const cfg = loadDaemonConfig(opts);
  const report = await readStatus(cfg);
  process.stdout.write(json ? `${JSON.stringify(report)}\n` : `${formatStatus(report)}\n`);
  return 0;
}

export async function readStatus(cfg: DaemonConfig): Promise<StatusReport> {
  const file = join(cfg.stateDir, STATE_FILE_NAME);
  if (!existsSync(file)) {
    return buildStatus(file, { backlog: 0, oldestReceivedAt: undefined, delivered: 0, quarantined: 0, deduplicated: 0 }, null);
  }
  try {
    const outbox = Outbox.open(cfg.stateDir, { mustExist: true });
    try {
      return buildStatus(outbox.file, outbox.stats(), null);
    } finally {
      outbox.close();
    }
  } catch (err) {
    if (err instanceof StateError && err.code === StateCodes.locked) return askDaemon(cfg, err);
    throw err;
  }
}

async function askDaemon(cfg: DaemonConfig, lockError: StateError): Promise<StatusReport> {
  const listen = cfg.adminListen;
  if (!listen) throw new StateError(StateCodes.locked, `${lockError.message}; the daemon has no admin listener to ask ([admin] Listen=off)`, lockError.exitCode);
  const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${listen.port}/status`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return (await res.json()) as StatusReport;
  } catch (err) {
    throw new StateError(StateCodes.locked, `${lockError.message}; asking the daemon at ${url} failed: ${(err as Error).message}`, lockError.exitCode);
  }
}
