// `jobcompd run`: the daemon, with its signal handling.
//   SIGTERM / SIGINT: graceful stop (stop accepting, flush for flush_timeout, exit 0);
//                     a second one kills the process at once (by that signal): every
//                     record is safe in SQLite anyway.
//   SIGHUP:           reload JobCompParams and the rdkafka.conf (a new producer, nothing lost).

import type { LoadOptions } from '../config/daemon-conf';
import { loadConfig } from '../config/load';
import { Daemon } from '../daemon';
import type { JobcompdError } from '../errors';
import { createLogger } from '../log';

export async function runDaemon(opts: LoadOptions): Promise<number> {
  const cfg = loadConfig(opts);
  const log = createLogger(cfg.daemon.logLevel);
  for (const w of cfg.warnings) log.warn(w);
  const daemon = await Daemon.start(cfg, log);

  const stopped = new Promise<number>((resolve) => {
    let signalled = false;
    const onStop = (signal: NodeJS.Signals): void => {
      if (signalled) {
        log.warn({ signal }, 'second signal: exiting now; undelivered records stay in the state file');
        // Die by the signal itself: process.exit() would wait for librdkafka work running on
        // libuv's thread pool (a flush with flush_timeout=-1 never ends).
        process.removeAllListeners(signal);
        process.kill(process.pid, signal);
        return;
      }
      signalled = true;
      log.info({ signal }, 'stop requested');
      void daemon.shutdown().then(() => resolve(0));
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', () => void daemon.reload());
    daemon.once('fatal', (err: JobcompdError) => resolve(err.exitCode));
  });
  return stopped;
}
