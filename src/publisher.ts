// The back half of the data path, shared by the daemon and `jobcompd replay`:
// outbox -> dispatcher -> producer, with the configuration that can change at run time.

import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { topicsOf, type LoadedConfig } from './config/load';
import type { JobCompParams } from './config/jobcomp-params';
import type { ConfigError } from './errors';
import { Outbox } from './outbox/outbox';
import { Dispatcher } from './producer/dispatcher';
import { KafkaProducer } from './producer/kafka-producer';
import type { ProducerSettings } from './producer/rdkafka-config';
import { JobEvent } from './record/job-record';
import { buildStatus, type StatusReport } from './status';

/** Events: 'config-error' (ConfigError): librdkafka cannot create a producer from the settings. */
export class Publisher extends EventEmitter {
  readonly outbox: Outbox;
  readonly dispatcher: Dispatcher;
  private producer: KafkaProducer;
  private params: JobCompParams;
  private replacing = false;

  /** busyTimeoutMs: how long to wait for another process that holds the state file. */
  constructor(
    private readonly cfg: LoadedConfig,
    private readonly log: Logger,
    busyTimeoutMs = 0,
  ) {
    super();
    this.params = cfg.params;
    this.outbox = Outbox.open(cfg.daemon.stateDir, { busyTimeoutMs, dedupWindowMs: cfg.daemon.dedupWindowMs });
    this.dispatcher = new Dispatcher(
      this.outbox,
      {
        maxClaimed: cfg.daemon.producer.maxInFlight,
        retryBackoffMinMs: cfg.daemon.producer.retryBackoffMinMs,
        retryBackoffMaxMs: cfg.daemon.producer.retryBackoffMaxMs,
        topicFor: (event) => {
          const topics = topicsOf(this.params, this.cfg.daemon.clusterName);
          return event === JobEvent.start ? topics.start : topics.finish;
        },
      },
      log,
    );
    this.dispatcher.on('producer-fatal', () => void this.replaceProducer(this.cfg.producer));
    this.outbox.on('commit-error', (err: Error) => this.log.error({ err: err.message }, 'state file commit failed'));
    this.producer = this.newProducer(cfg.producer);
  }

  get currentParams(): JobCompParams {
    return this.params;
  }

  start(): void {
    this.log.info({ stateFile: this.outbox.file, backlog: this.outbox.backlogSize, topics: this.topics() }, 'publisher starting');
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
    });
  }

  /** Resolves when nothing is stored and nothing is claimed. */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      if (this.outbox.backlogSize === 0 && this.dispatcher.claimed === 0) resolve();
      else this.dispatcher.once('drained', () => resolve());
    });
  }

  /** Flush for flush_timeout, close the producer, commit what is pending, close the file. */
  async stop(): Promise<void> {
    await this.dispatcher.stop(this.params.flushTimeoutMs);
    this.outbox.close();
  }

  private newProducer(settings: ProducerSettings): KafkaProducer {
    const producer = new KafkaProducer(settings, this.log.child({ component: 'kafka' }), this.params.pollIntervalMs);
    producer.on('config-error', (err: ConfigError) => this.emit('config-error', err));
    return producer;
  }

  private async replaceProducer(settings: ProducerSettings): Promise<void> {
    if (this.replacing) return;
    this.replacing = true;
    try {
      const next = this.newProducer(settings);
      await this.dispatcher.replaceProducer(next, this.params.flushTimeoutMs);
      this.producer = next;
      this.log.info('producer replaced');
    } finally {
      this.replacing = false;
    }
  }
}
