// The back half of the data path, shared by the daemon and `jobcompd replay`:
// outbox -> dispatcher -> producer, with the configuration that can change at run time.

import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { topicsOf, type LoadedConfig } from './config';
import type { JobCompParams } from '../config/jobcomp-params';
import type { ConfigError } from '../errors';
import type { RowFilter } from '../outbox/filter';
import { Outbox } from '../outbox/outbox';
import { Dispatcher } from '../producer/dispatcher';
import { KafkaProducer, type ProducerStats } from '../producer/kafka-producer';
import type { ProducerSettings } from '../producer/librdkafka-settings';
import { JobEvent } from '../record/job-record';
import { buildStatus, type StatusReport } from './status';

/**
 * The longest a producer swap waits for the old producer: production is paused meanwhile,
 * so flush_timeout=-1 (wait for ever) or a long flush_timeout must not hold it, nor a
 * SIGTERM that waits for the swap. What the old producer did not confirm is produced
 * again by the new one (docs/configuration.md, flush_timeout).
 */
export const MAX_SWAP_FLUSH_MS = 10_000;

export function swapFlushMs(flushTimeoutMs: number): number {
  return flushTimeoutMs < 0 ? MAX_SWAP_FLUSH_MS : Math.min(flushTimeoutMs, MAX_SWAP_FLUSH_MS);
}

export interface PublisherOptions {
  /** how long to wait for another process that holds the state file */
  busyTimeoutMs?: number;
  /** only rows that match (a filtered replay) */
  filter?: RowFilter;
}

/** Events: 'config-error' (ConfigError): librdkafka cannot create a producer from the settings. */
export class Publisher extends EventEmitter {
  readonly outbox: Outbox;
  readonly dispatcher: Dispatcher;
  private producer: KafkaProducer;
  private params: JobCompParams;
  private settings: ProducerSettings;
  private replacing: Promise<void> = Promise.resolve();
  private fatalReplacementPending = false;
  private stopping = false;

  constructor(
    private readonly cfg: LoadedConfig,
    private readonly log: Logger,
    private readonly opts: PublisherOptions = {},
  ) {
    super();
    const busyTimeoutMs = opts.busyTimeoutMs ?? 0;
    this.params = cfg.params;
    this.settings = cfg.producer;
    this.outbox = Outbox.open(cfg.daemon.stateDir, { busyTimeoutMs, dedupWindowMs: cfg.daemon.dedupWindowMs });
    this.dispatcher = new Dispatcher(
      this.outbox,
      {
        maxInFlight: cfg.daemon.producer.maxInFlight,
        retryBackoffMinMs: cfg.daemon.producer.retryBackoffMinMs,
        retryBackoffMaxMs: cfg.daemon.producer.retryBackoffMaxMs,
        filter: opts.filter,
        topicFor: (event) => {
          const topics = topicsOf(this.params, this.cfg.daemon.clusterName);
          return event === JobEvent.start ? topics.start : topics.finish;
        },
      },
      log,
    );
    this.dispatcher.on('producer-fatal', () => this.replaceAfterFatal());
    this.outbox.on('commit-error', (err: Error) => this.log.error({ logEvent: 'state.commit-failed', err: err.message }, 'state file commit failed'));
    this.outbox.on('checkpointed', (pages: number, seconds: number) => this.log.debug({ logEvent: 'state.checkpointed', pages, seconds }, 'state file checkpointed'));
    this.producer = this.newProducer(cfg.producer);
  }

  get currentParams(): JobCompParams {
    return this.params;
  }

  get producerState(): KafkaProducer['state'] {
    return this.producer.state;
  }

  get producerStats(): ProducerStats | undefined {
    return this.producer.stats;
  }

  start(): void {
    this.log.info({ logEvent: 'publisher.starting', stateFile: this.outbox.file, backlog: this.outbox.backlogSize, topics: this.topics() }, 'publisher starting');
    this.dispatcher.attach(this.producer);
    this.producer.start();
  }

  /** JobCompParams take effect for every record produced from now on. */
  setParams(params: JobCompParams): void {
    this.params = params;
    this.producer.setPollInterval(params.pollIntervalMs);
  }

  topics(): { finish: string; start: string } {
    return topicsOf(this.params, this.cfg.daemon.clusterName);
  }

  status(): StatusReport {
    return buildStatus(this.outbox.file, this.outbox.stats(), {
      state: this.producer.state,
      lastError: this.producer.lastError ?? null,
      inFlight: this.dispatcher.inFlightCount,
      retrying: this.dispatcher.retryingCount,
      topics: this.topics(),
      brokers: this.producer.stats?.brokers ?? null,
    });
  }

  /** Resolves when nothing is stored and nothing is claimed. */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      const nothingLeft = this.dispatcher.claimed === 0 && this.outbox.count(this.opts.filter) === 0;
      if (nothingLeft || this.dispatcher.isDrained) resolve();
      else this.dispatcher.once('drained', () => resolve());
    });
  }

  /**
   * Flush for flush_timeout, close the producer, commit what is pending, close the file.
   * Resolves with the number of (matching) records still saved.
   */
  async stop(): Promise<{ remaining: number }> {
    // a swap in progress (reload, fatal error) ends first: it is bounded by MAX_SWAP_FLUSH_MS
    this.stopping = true;
    await this.replacing;
    await this.dispatcher.stop(this.params.flushTimeoutMs);
    this.outbox.flush();
    const remaining = this.outbox.count(this.opts.filter);
    this.outbox.close();
    return { remaining };
  }

  private newProducer(settings: ProducerSettings): KafkaProducer {
    const producer = new KafkaProducer(settings, this.log.child({ component: 'kafka' }), this.params.pollIntervalMs);
    producer.on('config-error', (err: ConfigError) => this.emit('config-error', err));
    return producer;
  }

  /**
   * A new librdkafka producer (changed rdkafka.conf, or after a fatal error): the old one
   * gets flush_timeout to finish, and what it did not confirm is produced again.
   * Replacements run one after the other.
   */
  replaceSettings(settings: ProducerSettings): Promise<void> {
    const run = this.replacing.then(async () => {
      if (this.stopping) return;
      const flushMs = swapFlushMs(this.params.flushTimeoutMs);
      this.log.info({ logEvent: 'producer.replacing', flushMs }, 'replacing the producer; the old one flushes first');
      const next = this.newProducer(settings);
      await this.dispatcher.replaceProducer(next, flushMs);
      this.producer = next;
      this.settings = settings;
      this.log.info({ logEvent: 'producer.replaced' }, 'producer replaced');
    });
    this.replacing = run.catch(() => undefined);
    return run;
  }

  /** A fatal librdkafka error: one replacement, however many reports say so. */
  private replaceAfterFatal(): void {
    if (this.fatalReplacementPending) return;
    this.fatalReplacementPending = true;
    void this.replaceSettings(this.settings).finally(() => {
      this.fatalReplacementPending = false;
    });
  }
}
