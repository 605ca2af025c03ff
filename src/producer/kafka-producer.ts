// jobcompd's one long-lived librdkafka producer (node-rdkafka). It produces exactly what
// the plugin produces (topic, value; no key, no headers, no timestamp, partitioner's
// choice), with the outbox row id as the numeric opaque, and serves delivery reports by
// polling every poll_interval; the successful ones arrive in batches (batched-reports.ts).
//
// node-rdkafka only lets a producer produce after a successful first metadata request,
// so while the brokers are unreachable at start-up this keeps trying to connect; records
// wait in SQLite meanwhile. After the first connection librdkafka reconnects by itself.

import { EventEmitter } from 'node:events';
import { CODES, Producer, type DeliveryReport, type LibrdKafkaError, type ProducerGlobalConfig } from 'node-rdkafka';
import type { Logger } from 'pino';
import { redactSecrets } from '../config/jobcomploc-file';
import type { MessageHeader } from '../outbox/message-headers';
import { batchedOpaques, requestBatchedReports } from './batched-reports';
import { creationError, producerConfigs, type ProducerSettings } from './librdkafka-settings';
import { errorCodeName, librdkafkaCode } from './delivery-errors';

export interface ProduceFailure {
  code: number;
  message: string;
}

export interface DeliveryOutcome {
  id: number;
  /** undefined when delivered */
  error: ProduceFailure | undefined;
}

export type ProducerState = 'connecting' | 'ready' | 'closed';

export interface BrokerState {
  name: string;
  /** librdkafka's connection state: UP, DOWN, CONNECT, AUTH... */
  state: string;
  rttMs: number | undefined;
}

/** From librdkafka's statistics (statistics.interval.ms). */
export interface ProducerStats {
  at: number;
  brokers: BrokerState[];
  /** messages in librdkafka's queues, not yet delivered */
  queuedMessages: number;
}

// Also bounds how long an exit waits for a connection attempt in progress (node-rdkafka
// cannot abort one).
const CONNECT_METADATA_TIMEOUT_MS = 5000;
const CONNECT_RETRY_MIN_MS = 1000;
const CONNECT_RETRY_MAX_MS = 30_000;

// syslog severities librdkafka uses -> pino levels
const LOG_LEVEL_BY_SEVERITY = ['fatal', 'fatal', 'fatal', 'error', 'warn', 'info', 'info', 'debug'] as const;

/**
 * Events: 'ready' (connected, can produce), 'delivery' (DeliveryOutcome),
 * 'fatal' (the instance must be replaced), 'config-error' (ConfigError from rd_kafka_new).
 */
export class KafkaProducer extends EventEmitter {
  private readonly producer: Producer;
  private stateValue: ProducerState = 'connecting';
  private connectAttempts = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  lastError: string | undefined;
  /**
   * librdkafka's latest error-level log line since the connection attempt began: a failed
   * attempt itself only says "broker transport failure", the log line says why (e.g. "SASL
   * authentication error: ... invalid credentials").
   */
  private attemptLogError: string | undefined;
  stats: ProducerStats | undefined;

  constructor(
    private readonly settings: ProducerSettings,
    private readonly log: Logger,
    private pollIntervalMs: number,
  ) {
    super();
    const { global, topic } = producerConfigs(settings);
    this.producer = new Producer({ ...global, event_cb: true } as ProducerGlobalConfig, topic);
    requestBatchedReports(this.producer);
    this.producer.on('delivery-report', (err: LibrdKafkaError | null, report: DeliveryReport) => this.onDeliveryReport(err, report));
    this.producer.on('event.log', (e: { severity: number; fac: string; message: string }) => this.onLibrdkafkaLog(e));
    this.producer.on('event.error', (err: LibrdKafkaError) => this.onClientError(err));
    this.producer.on('event.stats', (e: { message: string }) => this.onStats(e.message));
  }

  get state(): ProducerState {
    return this.stateValue;
  }

  start(): void {
    this.connect();
  }

  private connect(): void {
    if (this.stateValue !== 'connecting') return;
    this.connectAttempts += 1;
    this.attemptLogError = undefined;
    this.producer.connect({ timeout: CONNECT_METADATA_TIMEOUT_MS }, (err) => {
      if (this.stateValue !== 'connecting') return;
      if (!err) {
        this.stateValue = 'ready';
        this.log.info({ logEvent: 'kafka.connected', attempts: this.connectAttempts }, 'connected to Kafka');
        this.startPolling();
        this.emit('ready');
        return;
      }
      if (err.code === CODES.ERRORS.ERR__STATE) {
        // rd_kafka_new refused the configuration: retrying cannot help.
        this.emit('config-error', creationError(this.settings, err.message));
        return;
      }
      const why = this.attemptLogError === undefined ? '' : ` (librdkafka: ${this.attemptLogError})`;
      this.lastError = this.redact(`${errorCodeName(err.code)}: ${err.message}${why}`);
      const delay = Math.min(CONNECT_RETRY_MAX_MS, CONNECT_RETRY_MIN_MS * 2 ** Math.min(this.connectAttempts - 1, 10));
      this.log.warn({ logEvent: 'kafka.unreachable', err: this.lastError, retryInMs: delay }, 'cannot reach Kafka yet; records are kept in the state file');
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  /** Produce one record. Returns undefined when librdkafka took it. */
  produce(topic: string, payload: Buffer, id: number, key: Buffer | null = null, headers: readonly MessageHeader[] = []): ProduceFailure | undefined {
    try {
      // partition null: the configured partitioner decides; no timestamp. Key and headers
      // only for records of the Kafka listener (their values are UTF-8 text: ingest.ts).
      const rdHeaders = headers.length === 0 ? undefined : headers.map((h) => ({ [h.key]: h.value?.toString('utf8') ?? '' }));
      this.producer.produce(topic, null, payload, key ?? undefined, null, id, rdHeaders);
      return undefined;
    } catch (err) {
      const e = err as Partial<LibrdKafkaError> & Error;
      return { code: typeof e.code === 'number' ? e.code : CODES.ERRORS.ERR__FAIL, message: this.redact(e.message) };
    }
  }

  /** Serve delivery reports now (they are also served every poll interval). */
  poll(): void {
    if (this.stateValue !== 'ready') return;
    try {
      this.producer.poll();
    } catch {
      // not connected any more: nothing to serve
    }
  }

  setPollInterval(ms: number): void {
    this.pollIntervalMs = ms;
    if (this.pollTimer) this.startPolling();
  }

  private startPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    // poll_interval=0 means "as often as possible" (the plugin's loop without a wait).
    this.pollTimer = setInterval(() => this.poll(), Math.max(1, this.pollIntervalMs));
    this.pollTimer.unref();
  }

  /** rd_kafka_flush: wait up to timeoutMs (-1: forever) for outstanding deliveries. */
  flush(timeoutMs: number): Promise<void> {
    if (this.stateValue !== 'ready') return Promise.resolve();
    return new Promise((resolve) => {
      this.producer.flush(timeoutMs, (err) => {
        if (err) this.log.info({ logEvent: 'producer.flush-incomplete', err: this.redact(err.message), timeoutMs }, 'flush ended with records still outstanding; they stay in the state file');
        resolve();
      });
    });
  }

  /** Destroy the librdkafka handle without waiting: undelivered records stay in SQLite. */
  close(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    const wasConnected = this.stateValue === 'ready';
    this.stateValue = 'closed';
    if (!wasConnected) return Promise.resolve();
    return new Promise((resolve) => this.producer.disconnect(0, () => resolve()));
  }

  private onDeliveryReport(err: LibrdKafkaError | null, report: DeliveryReport): void {
    const delivered = batchedOpaques(report);
    if (delivered !== undefined) {
      for (const id of delivered) this.emit('delivery', { id: id as number, error: undefined } satisfies DeliveryOutcome);
      return;
    }
    const id = report.opaque as number;
    const error = err ? { code: librdkafkaCode(err), message: this.redact(err.message) } : undefined;
    this.emit('delivery', { id, error } satisfies DeliveryOutcome);
  }

  private onStats(json: string): void {
    try {
      const raw = JSON.parse(json) as LibrdkafkaStatistics;
      const brokers = Object.values(raw.brokers ?? {})
        .filter((b) => (b.nodeid ?? -1) >= 0)
        .map((b) => ({ name: b.name, state: b.state, rttMs: b.rtt?.avg === undefined || b.rtt.avg === 0 ? undefined : b.rtt.avg / 1000 }));
      this.stats = { at: Date.now(), brokers, queuedMessages: raw.msg_cnt ?? 0 };
      this.emit('stats', this.stats);
    } catch (err) {
      this.log.debug({ logEvent: 'producer.bad-statistics', err: (err as Error).message }, 'unreadable librdkafka statistics');
    }
  }

  private onLibrdkafkaLog(e: { severity: number; fac: string; message: string }): void {
    const level = LOG_LEVEL_BY_SEVERITY[e.severity] ?? 'debug';
    // librdkafka redacts the properties it knows to be sensitive; this also covers
    // anything it echoes otherwise (a debug=all dump, an error quoting a value).
    this.log[level]({ logEvent: 'librdkafka.log', fac: e.fac, librdkafka: true }, this.redact(e.message));
    if (e.severity <= 3 && this.stateValue === 'connecting') this.attemptLogError = e.message;
  }

  /** Every librdkafka text this class keeps or hands on (lastError shows in status) goes through here. */
  private redact(text: string): string {
    return redactSecrets(text, this.settings.properties.values());
  }

  private onClientError(err: LibrdKafkaError): void {
    const code = librdkafkaCode(err);
    this.lastError = this.redact(code === CODES.ERRORS.ERR_UNKNOWN ? err.message : `${errorCodeName(code)}: ${err.message}`);
    if (err.isFatal || code === CODES.ERRORS.ERR__FATAL) {
      this.log.error({ logEvent: 'producer.fatal', err: this.lastError }, 'librdkafka reported a fatal error; the producer will be replaced');
      this.emit('fatal', err);
      return;
    }
    this.log.warn({ logEvent: 'kafka.client-error', err: this.lastError }, 'Kafka client error (librdkafka retries by itself)');
  }
}

/** The parts of librdkafka's STATISTICS.md JSON that jobcompd reads. */
interface LibrdkafkaStatistics {
  msg_cnt?: number;
  brokers?: Record<string, { name: string; nodeid?: number; state: string; rtt?: { avg?: number } }>;
}
