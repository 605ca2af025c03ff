// `jobcompd replay`: resend the saved state and exit once it is drained. Refuses while a
// daemon (or another replay) holds the state file.

import type { LoadOptions } from '../config/daemon-conf';
import { loadConfig } from '../config/load';
import { EXIT_TEMPFAIL, type ConfigError } from '../errors';
import { createLogger } from '../log';
import { Publisher } from '../publisher';

const PROGRESS_INTERVAL_MS = 2000;

export async function runReplay(opts: LoadOptions, timeoutSeconds: number | undefined): Promise<number> {
  const cfg = loadConfig(opts);
  const log = createLogger(cfg.daemon.logLevel === 'info' ? 'warn' : cfg.daemon.logLevel, 2);
  const publisher = new Publisher(cfg, log);
  const total = publisher.outbox.backlogSize;
  process.stdout.write(`replaying ${total} saved record(s) from ${publisher.outbox.file}\n`);
  publisher.start();
  const progress = setInterval(() => {
    process.stdout.write(`  ${publisher.outbox.backlogSize} left, ${publisher.dispatcher.counters.delivered} delivered\n`);
  }, PROGRESS_INTERVAL_MS);

  const outcome = await Promise.race([
    publisher.drained().then(() => 'drained' as const),
    new Promise<ConfigError>((resolve) => publisher.once('config-error', resolve)),
    new Promise<'timeout'>((resolve) => {
      if (timeoutSeconds !== undefined) setTimeout(() => resolve('timeout'), timeoutSeconds * 1000).unref();
    }),
  ]);
  clearInterval(progress);
  await publisher.stop();
  const { delivered, quarantined } = publisher.dispatcher.counters;
  process.stdout.write(`delivered ${delivered}, quarantined ${quarantined}, still saved ${publisher.outbox.backlogSize}\n`);
  if (outcome === 'drained') return 0;
  if (outcome === 'timeout') {
    process.stderr.write(`jobcompd: replay timed out after ${timeoutSeconds ?? 0} s; undelivered records stay saved\n`);
    return EXIT_TEMPFAIL;
  }
  throw outcome;
}
