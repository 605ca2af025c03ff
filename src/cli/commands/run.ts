// `jobcompd run`: the daemon, with its signal handling.
//   SIGTERM / SIGINT: graceful stop (stop accepting, flush for flush_timeout, exit 0);
//                     a second one kills the process at once (by that signal): every
//                     record is safe in SQLite anyway.
//   SIGHUP:           reload JobCompParams and the rdkafka.conf (a new producer, nothing lost).
// The handlers are installed before the daemon starts: a signal that arrives while it is
// starting is acted on as soon as it has started.

import type { LoadOptions } from '../../config/daemon-conf';
import { loadVerifiedConfig } from '../../app/config';
import { Daemon } from '../../app/daemon';
import type { JobcompdError } from '../../errors';
import { createLogger } from '../../log';

export async function runDaemon(opts: LoadOptions): Promise<number> {
  // before the state file is opened or READY is sent
  const cfg = await loadVerifiedConfig(opts);
  const log = createLogger(cfg.daemon.logLevel);
  for (const w of cfg.warnings) log.warn({ logEvent: 'config.warning' }, w);

  let daemon: Daemon | undefined;
  let stopRequested = false;
  let reloadRequested = false;
  let resolveExit: (code: number) => void = () => undefined;
  const exit = new Promise<number>((resolve) => (resolveExit = resolve));

  const onStop = (signal: NodeJS.Signals): void => {
    if (stopRequested) {
      log.warn({ logEvent: 'daemon.second-signal', signal }, 'second signal: exiting now; undelivered records stay in the state file');
      // Die by the signal itself: process.exit() would wait for librdkafka work running on
      // libuv's thread pool (a flush with flush_timeout=-1 never ends).
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
      return;
    }
    stopRequested = true;
    log.info({ logEvent: 'daemon.stop-requested', signal }, 'stop requested');
    if (daemon) void daemon.shutdown().then(() => resolveExit(0));
  };
  const onReload = (): void => {
    if (daemon) void daemon.reload();
    else reloadRequested = true;
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onReload);

  daemon = await Daemon.start(cfg, log);
  daemon.once('fatal', (err: JobcompdError) => resolveExit(err.exitCode));
  if (stopRequested) void daemon.shutdown().then(() => resolveExit(0));
  else if (reloadRequested) void daemon.reload();
  return exit;
}
