// The daemon: sources -> ingest -> outbox -> dispatcher -> producer, plus its lifecycle:
// start, reload (SIGHUP), graceful stop, and what it tells systemd and operators.

import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadVerifiedConfig, sameProducerSettings, type LoadedConfig } from './config';
import { errorMessage, StateCodes, type ConfigError, type StateError } from '../errors';
import { Ingest } from '../ingest';
import { Publisher } from './publisher';
import { fsyncSkipped, SKIP_FSYNC_VARIABLE } from '../outbox/sync';
import { AdminServer, type Health } from './service/admin-server';
import { createMetrics } from './service/metrics';
import { ServiceNotifier } from './service/systemd';
import { HttpSource } from '../sources/http-source';
import { KafkaListener } from '../sources/kafka-listener';
import { JOURNAL_FILE } from '../sources/hook-journal';
import { SocketSource, type JournalStateFile } from '../sources/socket-source';
import { SpoolSource } from '../sources/spool-source';

/** Records waiting longer than this make /healthz say "degraded". */
const DEGRADED_AFTER_MS = 5 * 60_000;

/**
 * Events: 'fatal' (error with exitCode): the daemon cannot go on and has shut down, or (the
 * state file failed to sync) must exit at once, answering nothing more.
 */
export class Daemon extends EventEmitter {
  private stopping: Promise<void> | undefined;
  private reloading: Promise<void> = Promise.resolve();

  private constructor(
    private cfg: LoadedConfig,
    private readonly publisher: Publisher,
    private readonly ingest: Ingest,
    private readonly sources: Sources,
    private readonly notifier: ServiceNotifier,
    private readonly log: Logger,
  ) {
    super();
    publisher.on('config-error', (err: ConfigError) => {
      this.log.fatal({ logEvent: 'config.refused-by-librdkafka', err: err.message, code: err.code }, 'librdkafka refused the configuration');
      void this.shutdown().then(() => this.emit('fatal', err));
    });
    // No graceful stop: it would commit, and flush to Kafka, on a file whose state is unknown.
    publisher.outbox.once('fatal', (err: StateError) => {
      const damaged = err.code === StateCodes.corrupt;
      this.log.fatal(
        { logEvent: damaged ? 'state.damaged' : 'state.sync-failed', code: err.code, err: err.message },
        damaged ? 'the state file is damaged: exiting (jobcompd repair-state)' : 'the state file failed to sync or commit: exiting without answering another record',
      );
      this.emit('fatal', err);
    });
  }

  static async start(cfg: LoadedConfig, log: Logger): Promise<Daemon> {
    // Wait a little for a `jobcompd status` that may hold the file for a moment.
    const publisher = new Publisher(cfg, log, { busyTimeoutMs: 5000 });
    const ingest = new Ingest(publisher.outbox, () => publisher.currentParams, cfg.daemon.recordFormat, log, cfg.daemon.maxQuarantineBytes);
    const notifier = new ServiceNotifier();
    if (fsyncSkipped) log.warn({ logEvent: 'state.fsync-skipped', variable: SKIP_FSYNC_VARIABLE }, 'the state file is never synced (a test-only switch): acknowledged records are lost in a power cut');
    let daemon: Daemon | undefined;
    let sources: Sources | undefined;
    try {
      sources = await startSources(cfg, ingest, publisher.outbox, log);
      if (cfg.daemon.adminListen) {
        sources.admin = await AdminServer.listen(cfg.daemon.adminListen, {
          status: () => publisher.status(),
          health: () => daemon?.health() ?? { status: 'failing', reason: 'starting' },
          metrics: createMetrics(publisher, ingest, sources.kafka, sources.socket),
        }, cfg.daemon.http.requestTimeoutMs);
      }
    } catch (err) {
      publisher.outbox.close();
      throw err;
    }
    daemon = new Daemon(cfg, publisher, ingest, sources, notifier, log);
    publisher.start();
    notifier.ready(daemon.statusLine());
    log.info(
      {
        logEvent: 'daemon.ready',
        http: sources.http?.address ?? null,
        kafka: sources.kafka ? { host: cfg.daemon.kafka.listen?.host, port: sources.kafka.port } : null,
        admin: sources.admin?.address ?? null,
        hookSocket: cfg.daemon.hook.socket ?? null,
        spool: cfg.daemon.hook.spool ?? null,
        stateDir: cfg.daemon.stateDir,
        clusterName: cfg.daemon.clusterName,
      },
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

  health(): Health {
    if (this.stopping) return { status: 'failing', reason: 'stopping' };
    if (this.publisher.outbox.lastCommitFailed) return { status: 'failing', reason: 'the state file cannot be written; sources are told to retry' };
    const oldest = this.publisher.outbox.stats().oldestReceivedAt;
    if (this.publisher.producerState !== 'ready') return { status: 'degraded', reason: 'not connected to Kafka; records are kept' };
    if (oldest !== undefined && Date.now() - oldest > DEGRADED_AFTER_MS) return { status: 'degraded', reason: 'records have waited for Kafka for more than 5 minutes' };
    return { status: 'ok' };
  }

  private statusLine(): string {
    const s = this.publisher.status();
    return `backlog ${s.backlog}, delivered ${s.delivered}, quarantined ${s.quarantined}`;
  }

  /**
   * SIGHUP: re-read the configuration. JobCompParams apply to every record produced from now
   * on; a changed rdkafka.conf replaces the producer (records in flight are flushed or
   * produced again: none is lost). An invalid new configuration is logged and the running
   * one stays. Reloads run one after the other.
   */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.doReload());
    return this.reloading;
  }

  private async doReload(): Promise<void> {
    if (this.stopping) return;
    this.notifier.reloading();
    try {
      const next = await loadVerifiedConfig(this.cfg.options, this.cfg);
      for (const w of next.warnings) this.log.warn({ logEvent: 'config.warning' }, w);
      warnAboutRestartOnlyChanges(this.cfg, next, this.log);
      const rdkafkaChanged = !sameProducerSettings(this.cfg.producer, next.producer);
      if (rdkafkaChanged) {
        // The old producer flushes for the flush_timeout in effect; the new params apply only
        // once the swap succeeded, so a failed one leaves the previous configuration whole.
        await this.publisher.replaceSettings(next.producer);
      }
      // records received before the reload are mapped with the configuration they came under
      this.ingest.flushJournaled();
      this.publisher.setParams(next.params);
      this.cfg = { ...this.cfg, params: next.params, producer: next.producer };
      this.log.info({ logEvent: 'config.reloaded', topics: this.publisher.topics(), rdkafkaConfReloaded: rdkafkaChanged }, 'configuration reloaded');
    } catch (err) {
      this.log.error({ logEvent: 'config.reload-failed', err: errorMessage(err) }, 'reload failed; the previous configuration stays in effect');
    } finally {
      this.notifier.ready(this.statusLine());
    }
  }

  /** Stop accepting, give Kafka flush_timeout, keep everything undelivered in SQLite. */
  shutdown(): Promise<void> {
    this.stopping ??= this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<void> {
    this.notifier.stopping();
    const backlogBefore = this.publisher.outbox.backlogSize;
    this.log.info({ logEvent: 'daemon.stopping', backlog: backlogBefore, flushTimeoutMs: this.publisher.currentParams.flushTimeoutMs }, 'shutting down');
    await this.reloading;
    await closeSources(this.sources);
    const { remaining } = await this.publisher.stop();
    await this.sources.admin?.close();
    this.log.info({ logEvent: 'daemon.stopped', undelivered: remaining }, 'stopped; undelivered records stay in the state file and go out at the next start');
  }
}

/** Settings that only a restart applies: say so instead of silently ignoring them. */
function warnAboutRestartOnlyChanges(current: LoadedConfig, next: LoadedConfig, log: Logger): void {
  const pick = (c: LoadedConfig): Record<string, unknown> => ({
    ClusterName: c.daemon.clusterName,
    StateDir: c.daemon.stateDir,
    DedupWindow: c.daemon.dedupWindowMs,
    RecordFormat: c.daemon.recordFormat.layout.name,
    LogLevel: c.daemon.logLevel,
    '[admin]': c.daemon.adminListen,
    '[http]': c.daemon.http,
    '[hook]': c.daemon.hook,
    '[kafka]': c.daemon.kafka,
    '[producer]': c.daemon.producer,
  });
  const before = pick(current);
  const after = pick(next);
  const changed = Object.keys(before).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
  if (changed.length > 0) log.warn({ logEvent: 'config.restart-needed', settings: changed }, 'these settings changed but apply only after a restart');
}

interface Sources {
  http: HttpSource | undefined;
  socket: SocketSource | undefined;
  spool: SpoolSource | undefined;
  kafka: KafkaListener | undefined;
  admin: AdminServer | undefined;
}

async function startSources(cfg: LoadedConfig, ingest: Ingest, state: JournalStateFile, log: Logger): Promise<Sources> {
  const sources: Sources = { http: undefined, socket: undefined, spool: undefined, kafka: undefined, admin: undefined };
  const { http, hook, kafka } = cfg.daemon;
  try {
    if (http.listen) sources.http = await HttpSource.listen(ingest, { ...http, listen: http.listen }, log);
    if (hook.socket) {
      sources.socket = await SocketSource.listen(
        ingest,
        {
          path: hook.socket,
          mode: hook.socketMode,
          group: hook.socketGroup,
          allowedUids: new Set(hook.allowedUids ?? [0, process.getuid?.() ?? 0]),
          timeoutMs: hook.timeoutMs,
          maxMessageBytes: hook.maxMessageBytes,
          maxConnections: hook.maxConnections,
          journal: hook.journalBytes > 0 ? { file: join(cfg.daemon.stateDir, JOURNAL_FILE), bytes: hook.journalBytes } : undefined,
        },
        log,
        state,
      );
    }
    if (kafka.listen) {
      sources.kafka = await KafkaListener.forIngest(ingest, { ...kafka.listen, maxConnections: kafka.maxConnections, maxRequestBytes: kafka.maxRequestBytes }, cfg.daemon.clusterName, kafka.sasl, log);
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
  await Promise.all([s.http?.close(), s.socket?.close(), s.spool?.close(), s.kafka?.close()]);
}
