// The one entry point of the data path for every source: map the input to a record,
// serialize it, and commit it to the outbox. Resolves only once the record (or, for
// input that cannot be mapped, the raw input in quarantine) is on disk; rejects with a
// StateError when nothing could be committed, and then the source must answer "retry".

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { JobCompParams } from './config/jobcomp-params';
import { QuarantineCodes, RecordError, StateCodes, StateError } from './errors';
import { encodeHeaders, unpublishableHeader, type MessageHeader } from './outbox/message-headers';
import { EVENT_TOPIC, type Destination, type JournalMark, type Outbox } from './outbox/outbox';
import { identifyPluginRecord } from './record/plugin-record';
import { recordFields } from './producer/dispatcher';
import { eventName, JobEvent } from './record/job-record';
import { startRecordsOff, type RecordFormat } from './record/record-format';
import { payloadOptionsOf, toPayload, type Mapped, type RecordInput } from './record/to-payload';

/**
 * Identical records (same event, same bytes; for the Kafka listener also the same topic,
 * key and headers) share this key: the outbox stores them once within DedupWindow.
 */
export function dedupKeyOf(event: JobEvent, payload: Buffer, destination: Destination = EVENT_TOPIC): Buffer {
  const hash = createHash('sha256').update(Buffer.from([event])).update(payload);
  if (destination.topic !== null) {
    for (const part of [Buffer.from(destination.topic), destination.key, destination.headers]) {
      hash.update(part === null ? '\u0000-1' : `\u0000${part.length}\u0000`);
      if (part !== null) hash.update(part);
    }
  }
  return hash.digest();
}

export type SourceName = 'http' | 'socket' | 'spool' | 'replay' | 'kafka';

/** A record as a Kafka producer sent it to the listener. */
export interface ProducedMessage {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: readonly MessageHeader[];
}

export type AcceptResult =
  | { kind: 'stored'; id: number; jobId: number; event: JobEvent }
  | { kind: 'duplicate'; id: number; jobId: number; event: JobEvent }
  | { kind: 'quarantined'; id: number; code: string; reason: string }
  | { kind: 'ignored'; jobId: number | undefined; reason: string };

export interface IngestCounters {
  received: Record<SourceName, number>;
  ignored: number;
}

/**
 * Hook records answered from the hook journal are durable already. They wait, unmapped,
 * up to JOURNALED_WAIT_MS or until JOURNALED_BATCH of them wait, and are then mapped and
 * committed together: one at a time, their mapping and commit ran beside the next hook that
 * slurmctld starts, and cost it about 0.1-0.2 ms (docs/benchmark-rounds.md, seventeenth
 * session). They wait here, or in the hook listener until this takes them (holdJournaled:
 * then a lone hook wakes no JavaScript, eighteenth session). Any other input sends them on
 * first, so records reach the outbox in the order they arrived
 * (docs/delivery-guarantees.md#the-hook-journal).
 */
export const JOURNALED_WAIT_MS = 25;
export const JOURNALED_BATCH = 64;

interface JournaledInput {
  environment: Buffer;
  mark: JournalMark;
  receivedAt: number;
  resolve: (r: AcceptResult) => void;
  reject: (err: unknown) => void;
}

/** Events: 'accepted' (AcceptResult, SourceName, seconds from receipt to commit). */
export class Ingest extends EventEmitter {
  readonly counters: IngestCounters = { received: { http: 0, socket: 0, spool: 0, replay: 0, kafka: 0 }, ignored: 0 };

  /** what the quarantine table held at the last look, plus the inputs quarantined since */
  private quarantinedBytes: number | undefined;
  /** each source's count of records it has begun to receive (countArriving) */
  private readonly arrivingCounts: (() => number)[] = [];
  /** hook records answered from the journal, waiting to be mapped and committed together */
  private journaled: JournaledInput[] = [];
  private journaledTimer: NodeJS.Timeout | undefined;
  /** sources that hold such records until they are taken (holdJournaled) */
  private readonly journaledTakers: (() => void)[] = [];

  constructor(
    private readonly outbox: Outbox,
    private readonly params: () => JobCompParams,
    private readonly format: RecordFormat,
    private readonly log: Logger,
    /** [jobcompd] MaxQuarantineBytes */
    private readonly maxQuarantineBytes: number = Number.POSITIVE_INFINITY,
  ) {
    super();
    outbox.gatherArriving(() => {
      let n = 0;
      for (const count of this.arrivingCounts) n += count();
      return n;
    });
  }

  /**
   * `count()` says how many records a source has begun to receive and not handed over yet
   * (hook connections accepted whose message is not whole): the outbox's next transaction
   * waits a few turns for them. Returns the function that stops counting them.
   */
  countArriving(count: () => number): () => void {
    this.arrivingCounts.push(count);
    return () => {
      const at = this.arrivingCounts.indexOf(count);
      if (at >= 0) this.arrivingCounts.splice(at, 1);
    };
  }

  private accepted(result: AcceptResult, source: SourceName, receivedAt: number): AcceptResult {
    this.emit('accepted', result, source, (Date.now() - receivedAt) / 1000);
    return result;
  }

  /** A body POSTed by jobcomp/elasticsearch: always a job end record. */
  acceptElasticsearch(body: Buffer, source: SourceName): Promise<AcceptResult> {
    this.flushJournaled();
    return this.accept({ kind: 'elasticsearch', body }, body, source);
  }

  /**
   * The environment the native hook forwards (jobcomp/script, PrologSlurmctld, EpilogSlurmctld).
   * `journal`: the hook journal entry that holds it, answered from there already
   * (src/sources/hook-journal.ts): whatever becomes of the input, its transaction records
   * the entry as applied, and it is tried again until it commits.
   */
  acceptHookEnvironment(environment: Buffer, source: SourceName, journal?: JournalMark): Promise<AcceptResult> {
    this.flushJournaled();
    return this.accept({ kind: 'hook', environment }, environment, source, journal);
  }

  /**
   * A hook environment answered from the hook journal entry `journal` (at `receivedAt`) as it
   * arrived on the socket: it waits with others before it is mapped and committed
   * (JOURNALED_WAIT_MS).
   */
  acceptJournaledHook(environment: Buffer, journal: JournalMark, receivedAt = Date.now()): Promise<AcceptResult> {
    return new Promise((resolve, reject) => {
      this.journaled.push({ environment, mark: journal, receivedAt, resolve, reject });
      this.journaledWaiting(0);
    });
  }

  /**
   * `take()` hands the journaled records a source holds to acceptJournaledHook, in order:
   * flushJournaled() calls it first. Returns the function that stops taking from it.
   */
  holdJournaled(take: () => void): () => void {
    this.journaledTakers.push(take);
    return () => {
      const at = this.journaledTakers.indexOf(take);
      if (at >= 0) this.journaledTakers.splice(at, 1);
    };
  }

  /** `held` more journaled records wait in a source (holdJournaled), besides those here. */
  journaledWaiting(held: number): void {
    if (this.journaled.length + held >= JOURNALED_BATCH) this.flushJournaled();
    else this.journaledTimer ??= setTimeout(() => this.flushJournaled(), JOURNALED_WAIT_MS);
  }

  /**
   * Map and commit the journaled hook records waiting, here and in sources, now: before any
   * other input, before a reload changes the configuration they are mapped with, and when
   * the socket closes.
   */
  flushJournaled(): void {
    // taken first: the records a source hands over would otherwise start a wait of their own
    for (const take of this.journaledTakers) take();
    if (this.journaledTimer !== undefined) clearTimeout(this.journaledTimer);
    this.journaledTimer = undefined;
    const waiting = this.journaled;
    if (waiting.length === 0) return;
    this.journaled = [];
    for (const j of waiting) {
      try {
        this.accept({ kind: 'hook', environment: j.environment }, j.environment, 'socket', j.mark, j.receivedAt).then(j.resolve, j.reject);
      } catch (err) {
        j.reject(err);
      }
    }
  }

  private accept(input: RecordInput, raw: Buffer, source: SourceName, journal?: JournalMark, receivedAt = Date.now()): Promise<AcceptResult> {
    this.counters.received[source] += 1;
    let mapped: Mapped;
    try {
      mapped = toPayload(input, payloadOptionsOf(this.params(), this.format));
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      // an elasticsearch body is always a job end record, a hook environment may be either
      const event = input.kind === 'elasticsearch' ? JobEvent.finish : undefined;
      return this.quarantine(raw, source, receivedAt, { code: err.code, reason: err.message, jobId: err.jobId, event }, journal);
    }
    const startOff = mapped.event === JobEvent.start ? startRecordsOff(this.format.layout, this.params().enableJobStart) : undefined;
    if (mapped.kind === 'not-published' || startOff !== undefined) {
      if (journal !== undefined) this.outbox.noteJournaled(journal);
      return Promise.resolve(this.ignore(mapped.jobId, mapped.event, mapped.kind === 'not-published' ? mapped.reason : (startOff as string), source, receivedAt));
    }
    return this.storePayload(mapped.event, mapped.jobId, mapped.payload, source, receivedAt, EVENT_TOPIC, journal);
  }

  /**
   * A record produced to the Kafka listener: published unchanged to its own topic, with its
   * key and headers. The job id and event come from the plugin's JSON; a value that is not
   * a plugin record is published all the same, as job 0 (docs/kafka-listener.md#records).
   */
  acceptProduced(message: ProducedMessage): Promise<AcceptResult> {
    this.flushJournaled();
    const receivedAt = Date.now();
    this.counters.received.kafka += 1;
    const identity = message.value === null ? undefined : identifyPluginRecord(message.value);
    const unpublishable = message.value === null ? 'the record has a null value (a tombstone)' : unpublishableHeader(message.headers);
    const headers = encodeHeaders(message.headers);
    if (message.value === null || unpublishable !== undefined) {
      return this.quarantine(message.value ?? Buffer.alloc(0), 'kafka', receivedAt, {
        code: QuarantineCodes.kafkaUnpublishable,
        reason: `${unpublishable ?? ''}: node-rdkafka cannot publish it unchanged`,
        jobId: identity?.jobId,
        event: identity?.event,
        destination: { topic: message.topic, key: message.key, headers },
      });
    }
    const destination = { topic: message.topic, key: message.key, headers };
    return this.storePayload(identity?.event ?? JobEvent.finish, identity?.jobId ?? 0, message.value, 'kafka', receivedAt, destination);
  }

  /** A record that is already a jobcomp/kafka payload (migrated from Slurm's own state file). */
  acceptSerialized(record: { event: JobEvent; jobId: number; payload: Buffer }, source: SourceName): Promise<AcceptResult> {
    this.flushJournaled();
    this.counters.received[source] += 1;
    return this.storePayload(record.event, record.jobId, record.payload, source, Date.now());
  }

  private async storePayload(
    event: JobEvent,
    jobId: number,
    payload: Buffer,
    source: SourceName,
    receivedAt: number,
    destination: Destination = EVENT_TOPIC,
    journal?: JournalMark,
  ): Promise<AcceptResult> {
    // a SHA-256 per record is wasted when the outbox would not look at it
    const dedupKey = this.outbox.deduplicates ? dedupKeyOf(event, payload, destination) : undefined;
    let appended: Awaited<ReturnType<Outbox['append']>>;
    try {
      appended = await this.outbox.append({ event, jobId, payload, source, receivedAt, dedupKey, ...destination, journal });
    } catch (err) {
      if (err instanceof StateError) err.record = { jobId, event: eventName(event) };
      throw err;
    }
    const { id, duplicate } = appended;
    const fields = (): Record<string, unknown> => ({ ...recordFields({ id, jobId, event }), source, bytes: payload.length });
    if (duplicate) {
      this.log.info({ logEvent: 'record.duplicate', ...fields() }, 'duplicate of a record already accepted; not published again');
      return this.accepted({ kind: 'duplicate', id, jobId, event }, source, receivedAt);
    }
    // built only when written: this runs for every record, and debug is off by default
    if (this.log.isLevelEnabled('debug')) this.log.debug({ logEvent: 'record.committed', ...fields() }, 'record committed');
    return this.accepted({ kind: 'stored', id, jobId, event }, source, receivedAt);
  }

  private ignore(jobId: number | undefined, event: JobEvent | undefined, reason: string, source: SourceName, receivedAt: number): AcceptResult {
    this.counters.ignored += 1;
    this.log.debug({ logEvent: 'record.ignored', jobId, event: event === undefined ? 'job end (epilog)' : eventName(event), reason }, 'record not published');
    return this.accepted({ kind: 'ignored', jobId, reason }, source, receivedAt);
  }

  /** Input that is not even a message (malformed hook frame, unreadable spool file). */
  quarantineInput(raw: Buffer, source: SourceName, code: string, reason: string, journal?: JournalMark): Promise<AcceptResult> {
    this.flushJournaled();
    this.counters.received[source] += 1;
    return this.quarantine(raw, source, Date.now(), { code, reason, jobId: undefined, event: undefined }, journal);
  }

  private async quarantine(
    raw: Buffer,
    source: SourceName,
    receivedAt: number,
    why: { code: string; reason: string; jobId: number | undefined; event: JobEvent | undefined; destination?: Destination },
    journal?: JournalMark,
  ): Promise<AcceptResult> {
    // one answered from the hook journal was acknowledged already: kept even over the quota
    if (journal === undefined) this.takeQuarantineQuota(raw.length, why.jobId, why.event);
    else if (this.quarantinedBytes !== undefined) this.quarantinedBytes += raw.length;
    let id: number;
    try {
      id = await this.outbox.quarantineInput({
        ...why.destination,
        event: why.event ?? null,
        jobId: why.jobId ?? null,
        payload: null,
        raw,
        source,
        receivedAt,
        reasonCode: why.code,
        reason: why.reason,
      }, journal);
    } catch (err) {
      this.quarantinedBytes = (this.quarantinedBytes ?? 0) - raw.length;
      throw err;
    }
    this.log.error(
      { logEvent: 'record.quarantined', jobId: why.jobId, event: why.event === undefined ? 'unknown' : eventName(why.event), quarantineId: id, source, code: why.code, err: why.reason, bytes: raw.length },
      'input cannot be mapped to a job record; kept raw in quarantine',
    );
    return this.accepted({ kind: 'quarantined', id, code: why.code, reason: why.reason }, source, receivedAt);
  }

  /**
   * Bad inputs must not fill the disk that holds acknowledged records: over the quota they
   * are not committed (a StateError: the sender keeps them and retries, the hook spools).
   * The running total is looked up again when it says "over", as a replay may have emptied
   * the quarantine since. The bytes are counted before the commit, so that concurrent
   * inputs cannot all pass the check.
   */
  private takeQuarantineQuota(bytes: number, jobId: number | undefined, event: JobEvent | undefined): void {
    if (!Number.isFinite(this.maxQuarantineBytes)) return;
    const over = (): boolean => (this.quarantinedBytes ?? 0) + bytes > this.maxQuarantineBytes;
    if (this.quarantinedBytes === undefined || over()) this.quarantinedBytes = this.outbox.quarantinedBytes();
    if (!over()) {
      this.quarantinedBytes = (this.quarantinedBytes ?? 0) + bytes;
      return;
    }
    const err = new StateError(StateCodes.quarantineFull, `the quarantine holds ${this.quarantinedBytes} bytes; ${bytes} more would pass [jobcompd] MaxQuarantineBytes=${this.maxQuarantineBytes}: not committed (replay or remove quarantined inputs)`);
    if (jobId !== undefined && event !== undefined) err.record = { jobId, event: eventName(event) };
    throw err;
  }
}
