// The daemon: sources -> ingest -> outbox -> dispatcher -> producer, plus its lifecycle.

import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { LoadedConfig } from './config/load';
import { parseJobCompParams } from './config/jobcomp-params';
import { loadDaemonConfig } from './config/daemon-conf';
import { errorMessage, type ConfigError } from './errors';
import { Ingest } from './ingest';
import { Publisher } from './publisher';
import { HttpSource } from './sources/http-source';
import { SocketSource } from './sources/socket-source';
import { SpoolSource } from './sources/spool-source';

/** Events: 'fatal' (error with exitCode): the daemon cannot go on and has shut down. */
export class Daemon extends EventEmitter {
  private stopping: Promise<void> | undefined;

  private constructor(
    private cfg: LoadedConfig,
    private readonly publisher: Publisher,
    private readonly sources: Sources,
    private readonly log: Logger,
  ) {
    super();
    publisher.on('config-error', (err: ConfigError) => {
      this.log.fatal({ err: err.message, code: err.code }, 'librdkafka refused the configuration');
      void this.shutdown().then(() => this.emit('fatal', err));
    });
  }

  static async start(cfg: LoadedConfig, log: Logger): Promise<Daemon> {
    // Wait a little for a `jobcompd status` that may hold the file for a moment.
    const publisher = new Publisher(cfg, log, 5000);
    const ingest = new Ingest(publisher.outbox, () => publisher.currentParams, log);
    let sources: Sources;
    try {
      sources = await startSources(cfg, ingest, publisher, log);
    } catch (err) {
      publisher.outbox.close();
      throw err;
    }
    const daemon = new Daemon(cfg, publisher, sources, log);
    publisher.start();
    log.info(
      { http: sources.http?.address ?? null, hookSocket: cfg.daemon.hook.socket ?? null, spool: cfg.daemon.hook.spool ?? null, stateDir: cfg.daemon.stateDir, clusterName: cfg.daemon.clusterName },
      'jobcompd ready',
    );
    return daemon;
  }

  get httpAddress(): { host: string; port: number } | undefined {
    return this.sources.http?.address;
  }

  status(): ReturnType<Publisher['status']> {
    return this.publisher.status();
  }

  /**
   * SIGHUP: re-read JobCompParams. An invalid new value is logged and the running
   * configuration stays.
   */
  reload(): void {
    try {
      const daemon = loadDaemonConfig(this.cfg.options);
      const { params, warnings } = parseJobCompParams(daemon.jobCompParams, daemon.jobCompParamsFrom);
      for (const w of warnings) this.log.warn(w);
      this.publisher.setParams(params);
      this.cfg = { ...this.cfg, params };
      this.log.info({ topics: this.publisher.topics() }, 'configuration reloaded');
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'reload failed; the previous configuration stays in effect');
    }
  }

  /** Stop accepting, give Kafka flush_timeout, keep everything undelivered in SQLite. */
  shutdown(): Promise<void> {
    this.stopping ??= this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<void> {
    const backlogBefore = this.publisher.outbox.backlogSize;
    this.log.info({ backlog: backlogBefore, flushTimeoutMs: this.publisher.currentParams.flushTimeoutMs }, 'shutting down');
    await closeSources(this.sources);
    await this.publisher.stop();
    this.log.info({ undelivered: this.publisher.outbox.backlogSize }, 'stopped; undelivered records stay in the state file and go out at the next start');
  }
}

interface Sources {
  http: HttpSource | undefined;
  socket: SocketSource | undefined;
  spool: SpoolSource | undefined;
}

async function startSources(cfg: LoadedConfig, ingest: Ingest, publisher: Publisher, log: Logger): Promise<Sources> {
  const sources: Sources = { http: undefined, socket: undefined, spool: undefined };
  const { http, hook } = cfg.daemon;
  try {
    if (http.listen) sources.http = await HttpSource.listen(ingest, { ...http, listen: http.listen }, { status: () => publisher.status() }, log);
    if (hook.socket) {
      sources.socket = await SocketSource.listen(ingest, { path: hook.socket, mode: hook.socketMode, timeoutMs: hook.timeoutMs, maxMessageBytes: hook.maxMessageBytes }, log);
    }
    if (hook.spool) {
      sources.spool = await SpoolSource.start(ingest, { dir: hook.spool, scanIntervalMs: hook.spoolScanIntervalMs, maxMessageBytes: hook.maxMessageBytes }, log);
    }
  } catch (err) {
    await closeSources(sources);
    throw err;
  }
  return sources;
}

/** Stop accepting input; what was received is committed and answered first. */
async function closeSources(s: Sources): Promise<void> {
  await Promise.all([s.http?.close(), s.socket?.close(), s.spool?.close()]);
}
