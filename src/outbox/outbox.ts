// The durable outbox: every accepted record is a row in SQLite before its source is told
// "yes", and the row is deleted only after Kafka's delivery report says delivered.
//
// Writes are group-committed: everything requested since the last commit (new records,
// quarantined inputs, deletions after delivery, failure notes) goes into a single
// transaction, so N concurrent records cost one fsync, not N. The fsync runs off the event
// loop: SQLite commits without one (journal_mode=WAL, synchronous=NORMAL: the WAL stays
// consistent, and checkpoints sync as before), then jobcompd fdatasyncs the WAL file in
// libuv's thread pool and only then answers the transaction's waiters. That is what
// synchronous=FULL does inside COMMIT, moved to before the answer, and a committed
// transaction survives kill -9 and power loss as before. While one fdatasync is in flight,
// new requests wait and make up the next transaction, so the event loop keeps reading,
// mapping and serializing records instead of blocking in fsync.
//
// A transaction also waits, one event-loop turn at a time, for records a source has begun
// to receive (gatherArriving: hook connections accepted whose message is not read yet),
// up to GATHER_MAX_TURNS turns and GATHER_MAX_MS (2 ms): under load, records arrive over several
// turns (accept, then read), and without that wait each transaction held 4-5 of them and
// paid its writes and fdatasync for so few (docs/benchmarks.md). It also waits, up to
// GATHER_MAX_MS after the previous transaction was answered, for one record from each sender
// that transaction answered (on top of those already waiting then): senders that each wait
// for their answer before sending again (a load of them, over HTTP keep-alive or one hook
// after another) otherwise split into two groups that alternate, each paying for a
// transaction of its own. That wait is a timer, which the record that completes the count
// ends early, not turn after turn: the loop would spin until they came. A lone record, with
// nothing else on its way, is committed at once; so is the next record of a lone sender.
//
// Checkpoints (copying the WAL into the database file) are jobcompd's too
// (wal_autocheckpoint=0): SQLite's automatic ones run inside a commit on the event loop,
// with two fsyncs that freeze every timer on a stalling disk. After a synced transaction
// that brings the row writes since the last checkpoint to CHECKPOINT_AFTER_CHANGES, the
// pages are copied without SQLite's syncs (page-cache writes: the WAL is already synced),
// then the database file is fdatasync'd in libuv's pool; no transaction starts meanwhile,
// because the next one restarts the WAL over frames whose pages must be on disk first.
// That next transaction keeps the one sync left on the event loop: SQLite syncs the WAL's
// new header inside its commit before writing a frame after it (synchronous=NORMAL), so
// that a power cut cannot leave old frames valid behind a header that never reached the
// disk (SQLite's ticket ff5be73dee). It flushes the header's page and the file's inode
// (the frames before it were synced), once per CHECKPOINT_AFTER_CHANGES row writes:
// 0.2-0.4 ms on the bench's disk, and as long as a disk that stalls outright takes
// (docs/operations.md, "A disk that fails").
//
// The file is opened with locking_mode=EXCLUSIVE: one process (daemon or replay) owns it
// until it exits, and the kernel drops the lock if that process dies.
//
// A commit that fails for lack of space is rolled back by SQLite: its records are refused and
// the bookkeeping retried. A failed fdatasync, or an I/O error inside a commit, is fatal
// (E_STATE_SYNC_FAILED): after a failed fsync Linux may report the next one as successful
// while the earlier pages are gone, so the outbox answers nothing more, ever: every waiter
// is refused and the 'fatal' event tells the daemon to exit (docs/delivery-guarantees.md).
//
// Events: 'committed' (rows inserted), 'flushed' (seconds the transaction took),
// 'commit-error' (StateError), 'fatal' (StateError: the outbox is unusable), 'checkpointed'
// (WAL pages copied, seconds including the sync), 'journal-synced' (JournalMark: the hook
// journal's entries up to it are in the state file, synced).

import { EventEmitter } from 'node:events';
import { closeSync } from 'node:fs';
import Database from 'better-sqlite3';
import { EXIT_IOERR, StateCodes, StateError, errorMessage } from '../errors';
import type { JobEvent } from '../record/job-record';
import { OUTBOX_INSERT, OUTBOX_ROW, QUARANTINE_INSERT, QUARANTINE_ROW } from './columns';
import { whereClause, type RowFilter } from './filter';
import { corruptStateFile, isCorrupt, isDiskFull, openStateFile, sqliteCode, type OpenOptions, type OpenStateFile } from './open';
import { LEGACY_DEDUP_JOB_ID } from './schema';
import { sqliteSynchronous, syncData, syncDataNow } from './sync';


/**
 * Where a record taken by the Kafka listener goes: its own topic, key and headers
 * (message-headers.ts). Records of the other sources have none: the event's topic.
 */
export interface Destination {
  topic: string | null;
  key: Buffer | null;
  headers: Buffer | null;
}

export const EVENT_TOPIC: Destination = { topic: null, key: null, headers: null };

export interface NewRecord extends Partial<Destination> {
  event: JobEvent;
  jobId: number;
  /** never changed once appended: the dispatcher may produce this very buffer (pendingAfter) */
  payload: Buffer;
  source: string;
  receivedAt: number;
  /** Identical records (same key) within the dedup window are stored once. */
  dedupKey?: Buffer;
  /**
   * The hook journal's entry that holds this record's input, already acknowledged from there
   * (src/sources/hook-journal.ts): the transaction that commits it records the entry as
   * applied, and it is never refused for lack of space, only tried again.
   */
  journal?: JournalMark;
}

/** The last hook journal entry whose record the state file holds (counters rows). */
export interface JournalMark {
  seq: number;
  /** where the entry ends in the journal file: the next one begins there, or at the start */
  end: number;
}

export interface AppendResult {
  id: number;
  /** true when the same record was committed before, within the window: `id` is that copy's row */
  duplicate: boolean;
}

export interface OutboxRow extends Destination {
  id: number;
  event: JobEvent;
  jobId: number;
  payload: Buffer;
  receivedAt: number;
  attempts: number;
}

export interface QuarantineEntry extends Partial<Destination> {
  event: JobEvent | null;
  jobId: number | null;
  /** the record, when the input could be mapped */
  payload: Buffer | null;
  /** the input as received, when it could not */
  raw: Buffer | null;
  source: string;
  receivedAt: number;
  reasonCode: string;
  reason: string;
}

export interface QuarantineRow extends QuarantineEntry {
  id: number;
  quarantinedAt: number;
}

/** A record read back from a damaged state file (jobcompd repair-state). */
export interface RecoveredRecord extends Partial<Destination> {
  event: JobEvent;
  jobId: number;
  payload: Buffer;
  source: string;
  receivedAt: number;
}

/** Which rows a replay touches; every condition given must hold. */
export interface OutboxStats {
  backlog: number;
  oldestReceivedAt: number | undefined;
  delivered: number;
  quarantined: number;
  deduplicated: number;
}

/** The errors the state file remembers, for `status` when no daemon runs. */
export interface RecordedErrors {
  /** the delivery error of the oldest pending record that has one */
  pending: { jobId: number; event: JobEvent; attempts: number; error: string } | null;
  /** the newest quarantine entry */
  quarantine: { jobId: number | null; event: JobEvent | null; code: string; reason: string; at: number } | null;
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: Error) => void;
}

interface PendingWrites {
  inserts: { rec: NewRecord; waiter: Waiter<AppendResult> }[];
  /** `journal`: as NewRecord's, for an input answered from the hook journal before it could be mapped */
  quarantines: { entry: QuarantineEntry; waiter: Waiter<number>; journal?: JournalMark }[];
  acks: number[];
  failures: Map<number, string>;
  moves: Map<number, { code: string; reason: string }>;
  /** the newest hook journal entry applied by the records above (or by none: noteJournaled) */
  journal: JournalMark | undefined;
}

function emptyWrites(): PendingWrites {
  return { inserts: [], quarantines: [], acks: [], failures: new Map(), moves: new Map(), journal: undefined };
}

function later(a: JournalMark | undefined, b: JournalMark | undefined): JournalMark | undefined {
  return a === undefined || (b !== undefined && b.seq > a.seq) ? b : a;
}

/** A committed transaction whose waiters are answered once the WAL is synced. */
interface CommittedBatch {
  writes: PendingWrites;
  results: AppendResult[];
  qids: number[];
  inserted: number;
  /** the highest outbox row id it inserted (or the one before) */
  maxId: number;
  started: bigint;
  settled: boolean;
}

const RETRY_FLUSH_MS = 1000;
/**
 * Row writes between checkpoints. Each touches a few pages (the row, the dedup index), so the
 * WAL grows to a few thousand pages between checkpoints (up to about 20 MB measured in the
 * power-loss test), against SQLite's default of 1,000; fewer checkpoints mean fewer pauses of
 * the group commit for the database file's fdatasync.
 */
export const CHECKPOINT_AFTER_CHANGES = 1000;
const DEDUP_PRUNE_INTERVAL_MS = 60_000;
/** The most turns, and time, a transaction waits for records on their way (see the top). */
export const GATHER_MAX_TURNS = 64;
export const GATHER_MAX_MS = 2;
/** The most synced rows kept in memory for the dispatcher (see `recent`). */
const RECENT_MAX_ROWS = 4096;
/** The counters row holding the number of outbox rows (schema.ts, version 4). */
const BACKLOG_COUNTER = 'backlog';
/** The counters rows of the hook journal's mark (JournalMark) and of the file it belongs to. */
const JOURNAL_COUNTERS = { id: 'hook-journal-id', seq: 'hook-journal-seq', end: 'hook-journal-end' } as const;

export class Outbox extends EventEmitter {
  private pending = emptyWrites();
  private flushScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private backlog: number;
  private closed = false;
  private lastDedupPrune = 0;
  /** whether the duplicate check still holds rows of schema 4 (LEGACY_DEDUP_JOB_ID), which every lookup reads too */
  private legacyDedupRows: boolean;
  private readonly stmt: ReturnType<Outbox['prepare']>;
  /** write() in a transaction; made once: better-sqlite3 builds five functions for each db.transaction() */
  private readonly writeTransaction: (w: PendingWrites, now: number) => [AppendResult[], number[], number];
  /** the transaction whose fdatasync is in flight */
  private syncing: CommittedBatch | undefined;
  /** set once a sync or commit failed with an I/O error: nothing is committed or answered after */
  private failure: StateError | undefined;
  private changesSinceCheckpoint = 0;
  /** the database file's fdatasync after a checkpoint, while it is in libuv's pool */
  private checkpointSync: { durable: boolean } | undefined;
  readonly file: string;
  private readonly db: Database.Database;
  /** the WAL file, which SQLite keeps (same inode) until the connection closes */
  private readonly walFd: number;
  private readonly dbFd: number;
  /** every outbox row up to this id is on disk; pendingAfter reads no further */
  private syncedMaxId: number;
  /**
   * Rows this process synced that no read has returned yet, in id order: pendingAfter hands
   * them over without reading them back (docs/benchmarks.md). Holds every outbox row with an
   * id above `recentAfter`; undefined when off: at start (a backlog is read from the file),
   * after rows written another way (requeue, repair) or when more than RECENT_MAX_ROWS wait,
   * until a read from the file catches up with the last synced row.
   */
  private recent: OutboxRow[] = [];
  private recentAfter: number | undefined;
  /** records the sources have begun to receive (gatherArriving) */
  private arriving: () => number = () => 0;
  /** turns the next transaction has waited for them, since `gatherStarted` */
  private gatherTurns = 0;
  private gatherStarted = 0n;
  private gatherMaxNs = msToNs(GATHER_MAX_MS);
  /**
   * What the last answered transaction leads the next to expect: the records waiting when it
   * was answered, and one more from each sender it answered (see the top).
   */
  private expected = { records: 0, since: 0n };
  /** set while the next transaction waits for them */
  private returnTimer: NodeJS.Timeout | undefined;

  private constructor(
    opened: OpenStateFile,
    private readonly dedupWindowMs: number,
  ) {
    super();
    ({ file: this.file, db: this.db, walFd: this.walFd, dbFd: this.dbFd } = opened);
    this.stmt = this.prepare();
    this.writeTransaction = this.db.transaction((w: PendingWrites, now: number) => this.write(w, now));
    // kept by every transaction (schema.ts, version 4): a start never counts the backlog
    this.backlog = this.counter(BACKLOG_COUNTER);
    this.syncedMaxId = this.maxRowId();
    this.legacyDedupRows = this.stmt.dedupLegacyLeft.get() === 1;
  }

  static open(stateDir: string, opts: OpenOptions = {}): Outbox {
    return new Outbox(openStateFile(stateDir, opts), opts.dedupWindowMs ?? 0);
  }

  private prepare() {
    const db = this.db;
    return {
      insert: db.prepare(`INSERT INTO outbox (${OUTBOX_INSERT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      quarantineInput: db.prepare(
        `INSERT INTO quarantine (${QUARANTINE_INSERT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      quarantineRow: db.prepare(
        `INSERT INTO quarantine (${QUARANTINE_INSERT}) ` +
          'SELECT event, job_id, payload, NULL, source, received_at, ?, ?, ?, topic, msg_key, headers FROM outbox WHERE id = ?',
      ),
      delete: db.prepare('DELETE FROM outbox WHERE id = ?'),
      deleteRange: db.prepare('DELETE FROM outbox WHERE id BETWEEN ? AND ?'),
      noteFailure: db.prepare('UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?'),
      addCounter: db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value'),
      setCounter: db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value'),
      // LIMIT ? + 0, not LIMIT ?: SQLite re-prepares a statement whose bare LIMIT parameter
      // changes value, which doubled the cost of every page read (docs/benchmarks.md)
      pendingAfter: db.prepare(`SELECT ${OUTBOX_ROW} FROM outbox WHERE id > ? AND id <= ? ORDER BY id LIMIT ? + 0`),
      byId: db.prepare(`SELECT ${OUTBOX_ROW} FROM outbox WHERE id = ?`),
      oldest: db.prepare('SELECT received_at AS t FROM outbox ORDER BY id LIMIT 1'),
      counter: db.prepare('SELECT value FROM counters WHERE name = ?'),
      quarantineCount: db.prepare('SELECT count(*) AS n FROM quarantine'),
      dedupGet: db.prepare('SELECT row_id AS rowId, first_seen AS firstSeen FROM dedup WHERE job_id = ? AND hash = ?'),
      dedupPut: db.prepare('INSERT OR REPLACE INTO dedup (job_id, hash, row_id, first_seen) VALUES (?, ?, ?, ?)'),
      dedupPrune: db.prepare('DELETE FROM dedup WHERE first_seen < ?'),
      dedupLegacyLeft: db.prepare(`SELECT EXISTS (SELECT 1 FROM dedup WHERE job_id = ${LEGACY_DEDUP_JOB_ID}) AS left`).pluck(),
    };
  }

  private insertRow(r: { event: JobEvent; jobId: number; payload: Buffer } & Partial<Destination>, source: string, receivedAt: number): number | bigint {
    return this.stmt.insert.run(r.event, r.jobId, r.payload, source, receivedAt, r.topic ?? null, r.key ?? null, r.headers ?? null).lastInsertRowid;
  }

  /**
   * `count` says how many records the sources have begun to receive and not yet appended:
   * the next transaction waits a few turns for them, GATHER_MAX_TURNS turns and `maxWaitMs`
   * at most (see the top).
   */
  gatherArriving(count: () => number, maxWaitMs = GATHER_MAX_MS): void {
    this.arriving = count;
    this.gatherMaxNs = msToNs(maxWaitMs);
  }

  /** Resolves once the record is committed to disk (or found to be a duplicate). */
  append(rec: NewRecord): Promise<AppendResult> {
    return this.enqueue((waiter: Waiter<AppendResult>) => {
      this.pending.inserts.push({ rec, waiter });
      this.pending.journal = later(this.pending.journal, rec.journal);
    });
  }

  /** A hook journal entry that needs no row (its input is not published): the next transaction records it as applied. */
  noteJournaled(mark: JournalMark): void {
    if (this.failure !== undefined || this.closed) return;
    this.pending.journal = later(this.pending.journal, mark);
    this.scheduleFlush();
  }

  /** The hook journal's epoch, and the last entry the state file holds; undefined for a state file that never had a journal. */
  journalMark(): (JournalMark & { id: number }) | undefined {
    return readJournalMark(this.db);
  }

  /** A new hook journal file (at start, before any entry): synchronous and durable on return. */
  setJournalMark(mark: JournalMark & { id: number }): void {
    this.checkpointDurableNow();
    this.db.transaction(() => {
      this.stmt.setCounter.run(JOURNAL_COUNTERS.id, mark.id);
      this.stmt.setCounter.run(JOURNAL_COUNTERS.seq, mark.seq);
      this.stmt.setCounter.run(JOURNAL_COUNTERS.end, mark.end);
    })();
    this.syncNow();
  }

  /** Keep an input that cannot be published; resolves once committed. */
  quarantineInput(entry: QuarantineEntry, journal?: JournalMark): Promise<number> {
    return this.enqueue((waiter: Waiter<number>) => {
      this.pending.quarantines.push({ entry, waiter, journal });
      this.pending.journal = later(this.pending.journal, journal);
    });
  }

  /** Kafka confirmed delivery: the row goes at the next commit. */
  ack(id: number): void {
    this.pending.acks.push(id);
    this.scheduleFlush();
  }

  /** A delivery attempt failed and will be retried: remember why. */
  noteFailure(id: number, error: string): void {
    this.pending.failures.set(id, error);
    this.scheduleFlush();
  }

  /** Kafka refused the record for good: move it to the quarantine table. */
  quarantineRow(id: number, code: string, reason: string): void {
    this.pending.moves.set(id, { code, reason });
    this.scheduleFlush();
  }

  /**
   * Rows after `cursor`, in id order: only those already synced, so nothing is produced
   * before it is on disk. The dispatcher asks after every delivery report; when nothing
   * new is synced that costs no query.
   */
  pendingAfter(cursor: number, limit: number, filter?: RowFilter): OutboxRow[] {
    if (this.failure !== undefined) return [];
    if (!filter && this.recentAfter !== undefined && cursor >= this.recentAfter) return this.takeRecent(cursor, limit);
    if (cursor >= this.syncedMaxId) {
      if (!filter) this.keepRecentAfter(cursor);
      return [];
    }
    try {
      if (!filter) {
        const rows = this.stmt.pendingAfter.all(cursor, this.syncedMaxId, limit) as OutboxRow[];
        if (rows.length < limit) this.keepRecentAfter(this.syncedMaxId);
        return rows;
      }
      const where = whereClause(filter);
      return this.db
        .prepare(`SELECT ${OUTBOX_ROW} FROM outbox WHERE id > ? AND id <= ?${where.sql} ORDER BY id LIMIT ?`)
        .all(cursor, this.syncedMaxId, ...where.params, limit) as OutboxRow[];
    } catch (err) {
      if (this.failIfCorrupt(err, `reading the rows after id ${cursor}`) === undefined) throw err;
      return [];
    }
  }

  /** The reader has every synced row up to `id`: keep the next ones in memory. */
  private keepRecentAfter(id: number): void {
    if (this.recentAfter !== undefined || id < this.syncedMaxId) return;
    this.recent = [];
    this.recentAfter = id;
  }

  private takeRecent(cursor: number, limit: number): OutboxRow[] {
    let passed = 0;
    while (passed < this.recent.length && (this.recent[passed] as OutboxRow).id <= cursor) passed += 1;
    this.recent.splice(0, passed);
    const rows = this.recent.splice(0, limit);
    this.recentAfter = Math.max(cursor, rows[rows.length - 1]?.id ?? cursor);
    return rows;
  }

  /** Rows written outside the group commit: the reader goes back to the file. */
  private forgetRecent(): void {
    this.recent = [];
    this.recentAfter = undefined;
  }

  private maxRowId(): number {
    return (this.db.prepare('SELECT coalesce(max(id), 0) AS m FROM outbox').get() as { m: number }).m;
  }

  /** Rows waiting for Kafka that match the filter. Reads every page of the outbox. */
  count(filter?: RowFilter): number {
    const where = whereClause(filter);
    try {
      return (this.db.prepare(`SELECT count(*) AS n FROM outbox WHERE 1${where.sql}`).get(...where.params) as { n: number }).n;
    } catch (err) {
      throw this.failIfCorrupt(err, 'counting the rows waiting for Kafka') ?? err;
    }
  }

  get(id: number): OutboxRow | undefined {
    return this.stmt.byId.get(id) as OutboxRow | undefined;
  }

  /**
   * Delivered rows whose deletion is not in a transaction yet (it waits for the running
   * fdatasync): a kill now would produce them again, so they still count as in flight.
   */
  get acksNotCommitted(): number {
    return this.pending.acks.length;
  }

  get backlogSize(): number {
    return this.backlog;
  }

  stats(): OutboxStats {
    const oldest = this.stmt.oldest.get() as { t: number } | undefined;
    const counter = (name: string): number => this.counter(name);
    const quarantined = this.stmt.quarantineCount.get() as { n: number };
    return {
      backlog: this.backlog,
      oldestReceivedAt: oldest?.t,
      delivered: counter('delivered'),
      quarantined: quarantined.n,
      deduplicated: counter('deduplicated'),
    };
  }

  private counter(name: string): number {
    return (this.stmt.counter.get(name) as { value: number } | undefined)?.value ?? 0;
  }

  recordedErrors(): RecordedErrors {
    const pending = this.db
      .prepare('SELECT job_id AS jobId, event, attempts, last_error AS error FROM outbox WHERE last_error IS NOT NULL ORDER BY id LIMIT 1')
      .get() as RecordedErrors['pending'] | undefined;
    const quarantine = this.db
      .prepare('SELECT job_id AS jobId, event, reason_code AS code, reason, quarantined_at AS at FROM quarantine ORDER BY id DESC LIMIT 1')
      .get() as RecordedErrors['quarantine'] | undefined;
    return { pending: pending ?? null, quarantine: quarantine ?? null };
  }

  /** Bytes held by the quarantine table (its raw inputs and records). */
  quarantinedBytes(): number {
    const row = this.db.prepare('SELECT COALESCE(SUM(LENGTH(raw)), 0) + COALESCE(SUM(LENGTH(payload)), 0) AS n FROM quarantine').get() as { n: number };
    return row.n;
  }

  quarantineRows(filter?: RowFilter): QuarantineRow[] {
    const where = whereClause(filter);
    return this.db
      .prepare(
        `SELECT ${QUARANTINE_ROW} FROM quarantine WHERE 1${where.sql} ORDER BY id`,
      )
      .all(...where.params) as QuarantineRow[];
  }

  /**
   * Move a quarantined record back to the outbox, to be produced again (the cause was
   * fixed). `record` is the record to publish: the one stored, or one mapped again from the
   * raw input. Synchronous, atomic and durable on return: it is in one table or the other,
   * never both or none.
   */
  requeueQuarantined(id: number, record: { event: JobEvent; jobId: number; payload: Buffer } & Partial<Destination>, receivedAt: number): number {
    this.checkpointDurableNow();
    const rowId = this.db.transaction(() => {
      const inserted = Number(this.insertRow(record, 'replay', receivedAt));
      this.db.prepare('DELETE FROM quarantine WHERE id = ?').run(id);
      this.stmt.addCounter.run(BACKLOG_COUNTER, 1);
      this.backlog += 1;
      return inserted;
    })();
    this.syncNow();
    this.forgetRecent();
    this.syncedMaxId = Math.max(this.syncedMaxId, rowId);
    return rowId;
  }

  get lastCommitFailed(): boolean {
    return this.retryTimer !== undefined || this.failure !== undefined;
  }

  /** Fill a fresh state file with what repair-state could read, in one durable transaction. */
  insertRecovered(records: RecoveredRecord[], quarantine: QuarantineEntry[]): void {
    const now = Date.now();
    this.checkpointDurableNow();
    this.db.transaction(() => {
      for (const r of records) this.insertRow(r, r.source, r.receivedAt);
      this.stmt.addCounter.run(BACKLOG_COUNTER, records.length);
      for (const q of quarantine) {
        this.stmt.quarantineInput.run(q.event, q.jobId, q.payload, q.raw, q.source, q.receivedAt, now, q.reasonCode, q.reason, q.topic ?? null, q.key ?? null, q.headers ?? null);
      }
    })();
    this.syncNow();
    this.forgetRecent();
    this.syncedMaxId = this.maxRowId();
    this.backlog += records.length;
  }

  /**
   * Commit what is pending now and close the file. After a fatal failure nothing is written:
   * closing the connection would checkpoint the WAL into the database file.
   */
  close(): void {
    if (this.closed) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopWaitingForReturns();
    if (this.failure !== undefined) {
      this.closed = true;
      return;
    }
    this.flush();
    this.closed = true;
    this.db.close();
    // an fdatasync still in the thread pool closes the descriptor when it returns
    if (this.syncing === undefined) closeSync(this.walFd);
    if (this.checkpointSync === undefined) closeSync(this.dbFd);
  }

  private enqueue<T>(push: (w: Waiter<T>) => void): Promise<T> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new StateError(StateCodes.io, 'the state file is closed'));
    return new Promise<T>((resolve, reject) => {
      push({ resolve, reject });
      if (this.returnTimer !== undefined && this.timerWait(process.hrtime.bigint()) === undefined) {
        this.stopWaitingForReturns();
        setImmediate(() => this.groupCommit());
      }
      this.scheduleFlush();
    });
  }

  private stopWaitingForReturns(): void {
    clearTimeout(this.returnTimer);
    this.returnTimer = undefined;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed || this.failure !== undefined) return;
    this.flushScheduled = true;
    // during an fdatasync, its completion commits what has come in meanwhile
    if (this.syncing === undefined && this.checkpointSync === undefined) setImmediate(() => this.groupCommit());
  }

  /** One transaction for everything pending; its waiters are answered once it is synced. */
  private groupCommit(): void {
    if (this.closed || this.failure !== undefined || this.syncing !== undefined || this.checkpointSync !== undefined || !this.flushScheduled) return;
    const wait = this.gatherWait();
    if (wait === 'turn') {
      setImmediate(() => this.groupCommit());
      return;
    }
    if (wait !== undefined) {
      // not turn by turn: the loop would spin until they come; enqueue() ends the wait early
      this.returnTimer ??= setTimeout(() => {
        this.returnTimer = undefined;
        this.groupCommit();
      }, Math.ceil(Number(wait) / 1e6));
      return;
    }
    this.flushScheduled = false;
    const batch = this.commit();
    if (batch === undefined) return;
    this.syncing = batch;
    syncData(this.walFd, (err) => this.synced(batch, err));
  }

  /**
   * How the pending transaction waits for records on their way (see the top): one more turn
   * for records a source has begun to receive, the nanoseconds left for the senders the last
   * transaction answered, or undefined: it commits now.
   */
  private gatherWait(): 'turn' | bigint | undefined {
    const now = process.hrtime.bigint();
    if (this.arriving() > 0) {
      if (this.gatherTurns === 0) this.gatherStarted = now;
      if (this.gatherTurns < GATHER_MAX_TURNS && now - this.gatherStarted < this.gatherMaxNs) {
        this.gatherTurns += 1;
        return 'turn';
      }
    }
    this.gatherTurns = 0;
    return this.timerWait(now);
  }

  /**
   * The nanoseconds the pending transaction still waits on a timer for the senders the last
   * transaction answered (see the top); undefined: it commits now. Records answered from the
   * hook journal do not wait here: they come in batches already (ingest.ts).
   */
  private timerWait(now: bigint): bigint | undefined {
    const left = this.expected.since + this.gatherMaxNs - now;
    return this.pendingRecords() < this.expected.records && left > 0n ? left : undefined;
  }

  /** New records and quarantined inputs waiting for the next transaction: each has a sender waiting. */
  private pendingRecords(): number {
    return this.pending.inserts.length + this.pending.quarantines.length;
  }

  private synced(batch: CommittedBatch, err: NodeJS.ErrnoException | null): void {
    this.syncing = undefined;
    if (this.closed) {
      closeSync(this.walFd);
      return;
    }
    this.settle(batch, err ?? undefined);
    if (this.failure === undefined && this.changesSinceCheckpoint >= CHECKPOINT_AFTER_CHANGES) this.checkpoint();
    // the next transaction starts after this turn's other I/O callbacks, whose records join it
    else if (this.flushScheduled) setImmediate(() => this.groupCommit());
  }

  /** Copy the WAL into the database file, then sync that in libuv's pool (see the top). */
  private checkpoint(): void {
    this.changesSinceCheckpoint = 0;
    const started = process.hrtime.bigint();
    let pages: number;
    try {
      this.db.pragma('synchronous = OFF');
      const [result] = this.db.pragma('wal_checkpoint(PASSIVE)') as { checkpointed: number }[];
      pages = result?.checkpointed ?? 0;
    } catch (err) {
      // out of space: the WAL stays whole, and the next checkpoint tries again
      if (isDiskFull(err)) this.emit('commit-error', this.commitError(err));
      else this.fail(this.commitError(err));
      this.groupCommit();
      return;
    } finally {
      this.db.pragma(`synchronous = ${sqliteSynchronous}`);
    }
    const pending = { durable: false };
    this.checkpointSync = pending;
    syncData(this.dbFd, (err) => {
      this.checkpointSync = undefined;
      if (this.closed) {
        closeSync(this.dbFd);
        return;
      }
      if (err) {
        this.fail(this.syncError(err));
        return;
      }
      this.emit('checkpointed', pages, Number(process.hrtime.bigint() - started) / 1e9);
      this.groupCommit();
    });
  }

  /** Before a transaction outside the group commit: the running checkpoint's sync, now. */
  private checkpointDurableNow(): void {
    if (this.failure !== undefined) throw this.failure;
    const pending = this.checkpointSync;
    if (pending === undefined || pending.durable) return;
    try {
      syncDataNow(this.dbFd);
    } catch (err) {
      throw this.fail(this.syncError(err));
    }
    pending.durable = true;
  }

  /** Commit and sync everything pending now, synchronously (at shutdown). */
  flush(): void {
    if (this.failure !== undefined) return;
    try {
      this.checkpointDurableNow();
    } catch {
      return; // failed for good: the daemon exits
    }
    this.flushScheduled = false;
    const batch = this.commit();
    const inFlight = this.syncing;
    if (batch === undefined && inFlight === undefined) return;
    let error: unknown;
    try {
      syncDataNow(this.walFd);
    } catch (err) {
      error = err;
    }
    // this sync also covers the transaction whose own fdatasync has not returned yet
    if (inFlight !== undefined) this.settle(inFlight, error);
    if (batch !== undefined) this.settle(batch, error);
  }

  /** After a synchronous transaction: sync the WAL before returning. */
  private syncNow(): void {
    try {
      syncDataNow(this.walFd);
    } catch (err) {
      throw this.fail(this.syncError(err));
    }
  }

  private commit(): CommittedBatch | undefined {
    const w = this.pending;
    this.pending = emptyWrites();
    if (w.inserts.length + w.quarantines.length + w.acks.length + w.failures.size + w.moves.size === 0 && w.journal === undefined) return undefined;
    const now = Date.now();
    const started = process.hrtime.bigint();
    let results: AppendResult[];
    let qids: number[];
    let backlogChange: number;
    try {
      [results, qids, backlogChange] = this.writeTransaction(w, now);
    } catch (err) {
      if (isDiskFull(err)) this.failFlush(w, err);
      else this.failCommit(w, err);
      return undefined;
    }
    const fresh = results.filter((r) => !r.duplicate);
    this.backlog += backlogChange;
    this.changesSinceCheckpoint += w.inserts.length + w.quarantines.length + w.acks.length + w.failures.size + w.moves.size;
    return { writes: w, results, qids, inserted: fresh.length, maxId: fresh[fresh.length - 1]?.id ?? 0, started, settled: false };
  }

  /**
   * Answer a synced transaction's waiters. When the sync failed, its new records are
   * refused (the sources keep them and send them again) and the outbox fails for good.
   */
  private settle(b: CommittedBatch, err: unknown): void {
    if (b.settled) return;
    b.settled = true;
    const w = b.writes;
    if (err === undefined) {
      this.syncedMaxId = Math.max(this.syncedMaxId, b.maxId);
      this.keepRecent(b);
      w.inserts.forEach((x, i) => x.waiter.resolve(b.results[i] ?? { id: 0, duplicate: false }));
      w.quarantines.forEach((x, i) => x.waiter.resolve(b.qids[i] ?? 0));
      // senders answered from the hook journal were answered before: none of them is coming back now
      const answeredNow = w.inserts.filter((x) => x.rec.journal === undefined).length + w.quarantines.filter((x) => x.journal === undefined).length;
      this.expected = { records: this.pendingRecords() + answeredNow, since: process.hrtime.bigint() };
      this.emit('flushed', Number(process.hrtime.bigint() - b.started) / 1e9);
      if (b.inserted > 0) this.emit('committed', b.inserted);
      if (w.journal !== undefined) this.emit('journal-synced', w.journal);
    } else {
      const error = this.syncError(err);
      for (const x of w.inserts) x.waiter.reject(error);
      for (const x of w.quarantines) x.waiter.reject(error);
      this.fail(error);
    }
  }

  /** A synced transaction's new rows, for pendingAfter. */
  private keepRecent(b: CommittedBatch): void {
    if (this.recentAfter === undefined) return;
    if (this.recent.length + b.inserted > RECENT_MAX_ROWS) {
      this.forgetRecent();
      return;
    }
    b.writes.inserts.forEach(({ rec }, i) => {
      const result = b.results[i];
      if (result === undefined || result.duplicate) return;
      this.recent.push({
        id: result.id,
        event: rec.event,
        jobId: rec.jobId,
        payload: rec.payload,
        receivedAt: rec.receivedAt,
        attempts: 0,
        topic: rec.topic ?? null,
        key: rec.key ?? null,
        headers: rec.headers ?? null,
      });
    });
  }

  private syncError(err: unknown): StateError {
    const code = (err as NodeJS.ErrnoException).code;
    return new StateError(StateCodes.syncFailed, `cannot sync the state file ${this.file}: ${errorMessage(err)}${code ? ` (${code})` : ''}`, EXIT_IOERR);
  }

  /**
   * A damaged page the start-up check does not read (open.ts), met while `doing`: the outbox
   * fails for good, as at start. Returns that failure, or undefined for any other error.
   */
  private failIfCorrupt(err: unknown, doing: string): StateError | undefined {
    if (!isCorrupt(err)) return undefined;
    return this.fail(corruptStateFile(this.file, `(${sqliteCode(err) ?? 'SQLITE_CORRUPT'} ${doing})`));
  }

  /** Another file of the state directory failed to sync (the hook journal): as if this one had. */
  failForGood(error: StateError): void {
    this.fail(error);
  }

  /**
   * The outbox is unusable from now on: every waiter is refused with `error`, nothing is
   * committed or synced again, and 'fatal' tells the daemon to exit. Returns `error`.
   */
  private fail(error: StateError): StateError {
    if (this.failure !== undefined) return this.failure;
    this.failure = error;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const pending = this.pending;
    this.pending = emptyWrites();
    for (const x of pending.inserts) x.waiter.reject(error);
    for (const x of pending.quarantines) x.waiter.reject(error);
    this.emit('fatal', error);
    return error;
  }

  /** A commit that failed other than for lack of space (an I/O error): its records are refused, and the outbox fails. */
  private failCommit(w: PendingWrites, err: unknown): void {
    const error = this.commitError(err);
    for (const x of w.inserts) x.waiter.reject(error);
    for (const x of w.quarantines) x.waiter.reject(error);
    this.fail(error);
  }

  /** SQLITE_FULL: the disk is full (retryable); anything else: an I/O error (fatal). */
  private commitError(err: unknown): StateError {
    const code = sqliteCode(err);
    const what = `cannot commit to the state file ${this.file}: ${errorMessage(err)}${code ? ` (${code})` : ''}`;
    if (isCorrupt(err)) return corruptStateFile(this.file, `(${code ?? 'SQLITE_CORRUPT'} in a commit)`);
    return isDiskFull(err) ? new StateError(StateCodes.full, what) : new StateError(StateCodes.syncFailed, what, EXIT_IOERR);
  }

  /** The transaction's statements; returns its results and how many rows the outbox gained (or lost). */
  private write(w: PendingWrites, now: number): [AppendResult[], number[], number] {
    const s = this.stmt;
    const results = w.inserts.map(({ rec }) => this.insert(rec, now));
    const duplicates = results.filter((r) => r.duplicate).length;
    if (duplicates > 0) s.addCounter.run('deduplicated', duplicates);
    if (this.dedupWindowMs > 0 && now - this.lastDedupPrune > DEDUP_PRUNE_INTERVAL_MS) {
      s.dedupPrune.run(now - this.dedupWindowMs);
      if (this.legacyDedupRows) this.legacyDedupRows = s.dedupLegacyLeft.get() === 1;
      this.lastDedupPrune = now;
    }
    const qids = w.quarantines.map(({ entry: q }) =>
      Number(s.quarantineInput.run(q.event, q.jobId, q.payload, q.raw, q.source, q.receivedAt, now, q.reasonCode, q.reason, q.topic ?? null, q.key ?? null, q.headers ?? null).lastInsertRowid),
    );
    let backlogChange = results.length - duplicates;
    for (const [first, last] of consecutiveRuns(w.acks)) backlogChange -= s.deleteRange.run(first, last).changes;
    if (w.acks.length > 0) s.addCounter.run('delivered', w.acks.length);
    for (const [id, error] of w.failures) s.noteFailure.run(error, id);
    for (const [id, m] of w.moves) {
      s.quarantineRow.run(now, m.code, m.reason, id);
      backlogChange -= s.delete.run(id).changes;
    }
    if (backlogChange !== 0) s.addCounter.run(BACKLOG_COUNTER, backlogChange);
    if (w.journal !== undefined) {
      s.setCounter.run(JOURNAL_COUNTERS.seq, w.journal.seq);
      s.setCounter.run(JOURNAL_COUNTERS.end, w.journal.end);
    }
    return [results, qids, backlogChange];
  }

  /** The row id of a record of this job with this dedup key committed within the window, if any. */
  private recentCopy(jobId: number, dedupKey: Buffer, now: number): number | undefined {
    if (this.dedupWindowMs <= 0) return undefined;
    const seen = this.dedupRow(jobId, dedupKey) ?? (this.legacyDedupRows ? this.dedupRow(LEGACY_DEDUP_JOB_ID, dedupKey) : undefined);
    return seen && now - seen.firstSeen < this.dedupWindowMs ? seen.rowId : undefined;
  }

  private dedupRow(jobId: number, dedupKey: Buffer): { rowId: number; firstSeen: number } | undefined {
    return this.stmt.dedupGet.get(jobId, dedupKey) as { rowId: number; firstSeen: number } | undefined;
  }

  /** Whether append() looks at NewRecord.dedupKey at all (DedupWindow > 0). */
  get deduplicates(): boolean {
    return this.dedupWindowMs > 0;
  }

  /** Whether append() would now store a record with this key as a duplicate (replay --dry-run). */
  wouldDeduplicate(jobId: number, dedupKey: Buffer): boolean {
    return this.recentCopy(jobId, dedupKey, Date.now()) !== undefined;
  }

  /** One record, unless an identical one was committed within the window. */
  private insert(rec: NewRecord, now: number): AppendResult {
    const s = this.stmt;
    const key = this.dedupWindowMs > 0 ? rec.dedupKey : undefined;
    if (key) {
      const copy = this.recentCopy(rec.jobId, key, now);
      if (copy !== undefined) return { id: copy, duplicate: true };
    }
    const id = Number(this.insertRow(rec, rec.source, rec.receivedAt));
    if (key) s.dedupPut.run(rec.jobId, key, id, now);
    return { id, duplicate: false };
  }

  /**
   * The disk is full (SQLite rolled the transaction back): new records are refused (their
   * sources get an error and keep them); bookkeeping for rows already stored is kept and
   * tried again, since losing it only means a duplicate.
   */
  private failFlush(w: PendingWrites, err: unknown): void {
    const error = this.commitError(err);
    // acknowledged from the hook journal already: kept, first in line, and tried again
    const journaled = w.inserts.filter((x) => x.rec.journal !== undefined);
    const journaledQuarantines = w.quarantines.filter((x) => x.journal !== undefined);
    for (const x of w.inserts) if (x.rec.journal === undefined) x.waiter.reject(error);
    for (const x of w.quarantines) if (x.journal === undefined) x.waiter.reject(error);
    this.pending.inserts.unshift(...journaled);
    this.pending.quarantines.unshift(...journaledQuarantines);
    this.pending.journal = later(this.pending.journal, w.journal);
    this.pending.acks.unshift(...w.acks);
    for (const [id, e] of w.failures) if (!this.pending.failures.has(id)) this.pending.failures.set(id, e);
    for (const [id, m] of w.moves) this.pending.moves.set(id, m);
    this.emit('commit-error', error);
    if (!this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.scheduleFlush();
      }, RETRY_FLUSH_MS);
      this.retryTimer.unref();
    }
  }
}

/** The hook journal's mark in a state file (also read by repair-state from a damaged one). */
export function readJournalMark(db: Database.Database): (JournalMark & { id: number }) | undefined {
  const rows = db.prepare('SELECT name, value FROM counters WHERE name IN (?, ?, ?)').all(JOURNAL_COUNTERS.id, JOURNAL_COUNTERS.seq, JOURNAL_COUNTERS.end) as { name: string; value: number }[];
  const value = (name: string): number | undefined => rows.find((r) => r.name === name)?.value;
  const id = value(JOURNAL_COUNTERS.id);
  return id === undefined ? undefined : { id, seq: value(JOURNAL_COUNTERS.seq) ?? 0, end: value(JOURNAL_COUNTERS.end) ?? 0 };
}

function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1e6));
}

/**
 * Delivered row ids as runs of consecutive ids, [first, last] each: a backlog is delivered
 * in id order, so its deletions cost one statement per run instead of one per row. Only ids
 * that follow each other exactly are joined: a row between two delivered ones may still be
 * in flight.
 */
export function consecutiveRuns(ids: readonly number[]): [number, number][] {
  const sorted = Float64Array.from(ids).sort();
  const runs: [number, number][] = [];
  for (const id of sorted) {
    const run = runs[runs.length - 1];
    if (run !== undefined && id === run[1] + 1) run[1] = id;
    else runs.push([id, id]);
  }
  return runs;
}
