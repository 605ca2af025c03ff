// Moves records from the outbox to Kafka: the worker of the data path.
//
// At-least-once, bullmq style: a row is read from SQLite ("claimed": held in memory, in
// id order), produced with its row id as opaque, and deleted only when its delivery
// report says delivered. Failed rows are retried with exponential backoff or, when Kafka
// refuses them for good, moved to the quarantine table. Nothing is ever dropped.
//
// At most `maxInFlight` rows are held in memory (buffered + in flight + waiting to
// retry), so a long outage with a million-row backlog costs disk, not memory. The rows
// in flight when the process dies, and delivered ones whose deletion was not committed
// yet, are produced again at the next start: that is the whole duplicate window, at most
// MaxInFlight rows (docs/delivery-guarantees.md).

import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { eventName, type JobEvent } from '../record/job-record';
import type { RowFilter } from '../outbox/filter';
import type { Outbox, OutboxRow } from '../outbox/outbox';
import { decodeHeaders } from '../outbox/message-headers';
import { dispositionOf, errorCodeName, type Disposition } from './delivery-errors';
import type { DeliveryOutcome, KafkaProducer, ProduceFailure } from './kafka-producer';
import { InFlightRows, type ClaimedRow } from './in-flight';

export interface DispatcherOptions {
  /** jobcompd.conf MaxInFlight: rows held in memory at once (buffered, in flight, waiting to retry) */
  maxInFlight: number;
  retryBackoffMinMs: number;
  retryBackoffMaxMs: number;
  /** The topic for an event, looked up at produce time (so a reload applies at once). */
  topicFor: (event: JobEvent) => string;
  /** Only rows that match (a filtered replay); the daemon takes every row. */
  filter?: RowFilter;
}

export interface DispatcherCounters {
  produced: number;
  delivered: number;
  retried: number;
  quarantined: number;
}

interface RetryEntry {
  row: ClaimedRow;
  dueAt: number;
}

/**
 * Rows are read in pages of up to MaxInFlight, and only once this many slots are free (or
 * nothing in flight will free more): refilling one slot per delivery report read the
 * backlog back a row or two per query (docs/benchmarks.md, backlog). Also librdkafka's
 * batch.num.messages unless rdkafka.conf sets it (librdkafka-settings.ts).
 */
export const MIN_REFILL = 250;
const QUEUE_FULL_RECHECK_MS = 50;
/**
 * Once the window has been full, serve delivery reports this soon instead of at the next
 * poll_interval, until nothing is in flight: waiting up to 2 s with a full window capped a
 * drain at MaxInFlight / poll_interval (500 records/s with the defaults), and waiting for
 * the last rows of a backlog added up to 2 s to every drain (bench/backlog.ts).
 */
export const FAST_POLL_MS = 1;
const RETRY_SUMMARY_INTERVAL_MS = 10_000;

/**
 * Events: 'drained' (nothing stored, nothing claimed), 'producer-fatal', 'delivered'
 * (row, seconds from receipt to the delivery report).
 */
export class Dispatcher extends EventEmitter {
  private producer: KafkaProducer | undefined;
  private cursor = 0;
  private readonly buffer: OutboxRow[] = [];
  /** grows with the window: a large MaxInFlight costs memory only once that many rows are in flight */
  private readonly inFlight = new InFlightRows();
  private retries: RetryEntry[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private queueFullTimer: NodeJS.Timeout | undefined;
  private fastPollTimer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  /** the last read found no row after the cursor (reset when new rows are committed) */
  private exhausted = false;
  private pumping = false;
  /** the window is full of delivered rows whose deletion is not committed yet */
  private waitingForDeletions = false;
  private stopped = false;
  private paused = false;
  private readonly retrySummary = { count: 0, lastError: '', since: 0 };
  readonly counters: DispatcherCounters = { produced: 0, delivered: 0, retried: 0, quarantined: 0 };
  private readonly onDelivery = (d: DeliveryOutcome): void => this.handleDelivery(d);
  private readonly onReady = (): void => this.schedulePump();
  private readonly onFatal = (): void => {
    this.emit('producer-fatal');
  };

  constructor(
    private readonly outbox: Outbox,
    private readonly opts: DispatcherOptions,
    private readonly log: Logger,
  ) {
    super();
    outbox.on('committed', () => {
      this.exhausted = false;
      this.schedulePump();
    });
    outbox.on('flushed', () => {
      if (!this.waitingForDeletions) return;
      this.waitingForDeletions = false;
      this.schedulePump();
    });
  }

  /** Start (or, after replaceProducer, continue) with this producer. */
  attach(producer: KafkaProducer): void {
    this.producer = producer;
    producer.on('delivery', this.onDelivery);
    producer.on('ready', this.onReady);
    producer.on('fatal', this.onFatal);
    if (producer.state === 'ready') this.schedulePump();
  }

  get claimed(): number {
    return this.buffer.length + this.inFlight.size + this.retries.length;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * A delivered row keeps its MaxInFlight slot until its deletion is committed: then at no
   * moment are more than MaxInFlight rows both produced and still stored, which is the
   * bound on what a kill -9 can duplicate.
   */
  private get occupiedSlots(): number {
    return this.inFlight.size + this.outbox.acksNotCommitted;
  }

  get retryingCount(): number {
    return this.retries.length;
  }

  /**
   * Hand over to a new producer (reload of rdkafka.conf, or a fatal librdkafka error):
   * the old one gets `flushMs` to finish what it has in flight, then whatever is still
   * undelivered is produced again through the new one.
   */
  async replaceProducer(next: KafkaProducer, flushMs: number): Promise<void> {
    const old = this.producer;
    this.paused = true;
    if (old) {
      await old.flush(flushMs);
      await settle();
      this.detach(old);
      await old.close();
    }
    this.requeueInFlight();
    this.paused = false;
    this.attach(next);
    next.start();
  }

  /** Stop producing; give in-flight records `flushMs` to be confirmed; close the producer. */
  async stop(flushMs: number): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.queueFullTimer) clearTimeout(this.queueFullTimer);
    if (this.fastPollTimer) clearTimeout(this.fastPollTimer);
    const producer = this.producer;
    if (!producer) return;
    await producer.flush(flushMs);
    await settle();
    this.detach(producer);
    await producer.close();
  }

  private detach(producer: KafkaProducer): void {
    producer.off('delivery', this.onDelivery);
    producer.off('ready', this.onReady);
    producer.off('fatal', this.onFatal);
    if (this.producer === producer) this.producer = undefined;
  }

  private requeueInFlight(): void {
    const rows = this.readAgain(this.inFlight.takeAll());
    this.buffer.unshift(...rows);
  }

  /** The stored rows of these claimed ones, in id order, with the attempts counted here. */
  private readAgain(claimed: ClaimedRow[]): OutboxRow[] {
    const rows: OutboxRow[] = [];
    for (const c of [...claimed].sort((a, b) => a.id - b.id)) {
      const row = this.outbox.get(c.id);
      // a claimed row leaves the outbox only through this dispatcher's ack or quarantine
      if (row) rows.push({ ...row, attempts: c.attempts });
    }
    return rows;
  }

  schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const producer = this.producer;
    if (this.pumping || this.stopped || this.paused || this.queueFullTimer || !producer || producer.state !== 'ready') return;
    this.pumping = true;
    try {
      while (this.occupiedSlots < this.opts.maxInFlight) {
        const row = this.nextRow();
        if (!row) break;
        const failure = producer.produce(row.topic ?? this.opts.topicFor(row.event), row.payload, row.id, row.key, decodeHeaders(row.headers));
        if (!failure) {
          this.inFlight.add(row);
          this.counters.produced += 1;
          continue;
        }
        const disposition = dispositionOf(failure.code);
        if (disposition === 'backpressure') {
          this.buffer.unshift(row);
          this.waitForRoom(producer);
          break;
        }
        this.handleFailure(row, failure, disposition);
      }
    } finally {
      this.pumping = false;
    }
    if (this.windowFull && this.inFlight.size > 0) this.pollUntilConfirmed(producer);
    if (this.occupiedSlots >= this.opts.maxInFlight) this.waitingForDeletions = true;
    this.checkDrained();
  }

  /** Fewer slots are free than a page is worth reading for. */
  private get windowFull(): boolean {
    return this.opts.maxInFlight - this.claimed < Math.min(MIN_REFILL, this.opts.maxInFlight);
  }

  /** The window is full: serve delivery reports soon, and keep doing so until none is in flight. */
  private pollUntilConfirmed(producer: KafkaProducer): void {
    if (this.fastPollTimer) return;
    this.fastPollTimer = setTimeout(() => {
      this.fastPollTimer = undefined;
      if (this.stopped) return;
      producer.poll();
      if (this.inFlight.size > 0) this.pollUntilConfirmed(producer);
    }, FAST_POLL_MS);
  }

  private nextRow(): OutboxRow | undefined {
    if (this.buffer.length === 0) {
      const room = this.opts.maxInFlight - this.claimed;
      // each delivery report pumps again, so with rows in flight a small room can wait
      if (room > 0 && (!this.windowFull || this.inFlight.size === 0)) {
        const rows = this.outbox.pendingAfter(this.cursor, room, this.opts.filter);
        this.exhausted = rows.length === 0;
        const last = rows[rows.length - 1];
        if (last) this.cursor = last.id;
        this.buffer.push(...rows);
      }
    }
    return this.buffer.shift();
  }

  /** librdkafka's queue is full: serve delivery reports, then try again. Never a drop. */
  private waitForRoom(producer: KafkaProducer): void {
    this.log.debug({ logEvent: 'producer.queue-full', inFlight: this.inFlight.size }, 'librdkafka queue full; waiting for deliveries');
    producer.poll();
    this.queueFullTimer = setTimeout(() => {
      this.queueFullTimer = undefined;
      this.pump();
    }, QUEUE_FULL_RECHECK_MS);
  }

  private handleDelivery({ id, error }: DeliveryOutcome): void {
    const row = this.inFlight.take(id);
    if (!row) {
      this.log.warn({ logEvent: 'delivery.unexpected-report', rowId: id }, 'delivery report for a record that is not in flight; ignored');
      return;
    }
    if (!error) {
      this.outbox.ack(id);
      this.counters.delivered += 1;
      this.emit('delivered', row, (Date.now() - row.receivedAt) / 1000);
      if (this.log.isLevelEnabled('debug')) this.log.debug({ logEvent: 'record.delivered', ...recordFields(row) }, 'delivered');
    } else {
      this.handleFailure(row, error, dispositionOf(error.code));
    }
    this.schedulePump();
  }

  private handleFailure(row: ClaimedRow, failure: ProduceFailure, disposition: Disposition): void {
    const reason = `${errorCodeName(failure.code)}: ${failure.message}`;
    if (disposition === 'quarantine') {
      this.outbox.quarantineRow(row.id, errorCodeName(failure.code), failure.message);
      this.counters.quarantined += 1;
      this.log.error({ logEvent: 'record.refused', ...recordFields(row), err: reason }, 'Kafka refused the record for good; moved to quarantine (jobcompd replay --quarantined resends it)');
      return;
    }
    if (disposition === 'restart-producer') this.emit('producer-fatal');
    this.outbox.noteFailure(row.id, reason);
    row.attempts += 1;
    this.counters.retried += 1;
    const delay = Math.min(this.opts.retryBackoffMaxMs, this.opts.retryBackoffMinMs * 2 ** Math.min(row.attempts - 1, 20));
    this.retries.push({ row: claimedOf(row), dueAt: Date.now() + delay });
    this.log.debug({ logEvent: 'delivery.failed', ...recordFields(row), err: reason, retryInMs: delay }, 'delivery failed; will retry');
    this.summarizeRetry(reason);
    this.armRetryTimer();
  }

  /** One warning per interval instead of one per record during an outage. */
  private summarizeRetry(reason: string): void {
    const s = this.retrySummary;
    const now = Date.now();
    s.count += 1;
    s.lastError = reason;
    if (now - s.since < RETRY_SUMMARY_INTERVAL_MS) return;
    this.log.warn({ logEvent: 'delivery.retry-summary', failedAttempts: s.count, lastError: s.lastError, retrying: this.retries.length }, 'delivery attempts failed; records are kept and retried');
    s.count = 0;
    s.since = now;
  }

  private armRetryTimer(): void {
    if (this.retryTimer || this.stopped) return;
    const next = this.retries.reduce((min, r) => Math.min(min, r.dueAt), Infinity);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.releaseDueRetries();
    }, Math.max(0, next - Date.now()));
  }

  private releaseDueRetries(): void {
    const now = Date.now();
    const due = this.retries.filter((r) => r.dueAt <= now);
    this.retries = this.retries.filter((r) => r.dueAt > now);
    this.buffer.unshift(...this.readAgain(due.map((r) => r.row)));
    if (this.retries.length > 0) this.armRetryTimer();
    this.schedulePump();
  }

  /** Nothing (matching) is left to send: every row read was delivered or quarantined. */
  private checkDrained(): void {
    if (this.claimed === 0 && this.exhausted) this.emit('drained');
  }

  get isDrained(): boolean {
    return this.claimed === 0 && this.exhausted;
  }
}

function claimedOf(row: ClaimedRow): ClaimedRow {
  return { id: row.id, event: row.event, jobId: row.jobId, receivedAt: row.receivedAt, attempts: row.attempts };
}

/** The fields every log line about a record carries. */
export function recordFields(row: { id: number; jobId: number; event: JobEvent }): { jobId: number; event: string; rowId: number } {
  return { jobId: row.jobId, event: eventName(row.event), rowId: row.id };
}

/** Let callbacks already queued on the event loop (delivery reports) run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
