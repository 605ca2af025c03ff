// `jobcompd repair-state`: the way out of a damaged state file that loses nothing SQLite
// can still read. The damaged file is copied, read row by row (a lookup by row id walks the
// b-tree from its root, so a damaged page costs only the rows behind it), and every row
// that can be read goes into a fresh state file, in order. The damaged file is kept beside
// it, renamed, never deleted.

import { copyFileSync, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { EXIT_TEMPFAIL, QuarantineCodes, StateCodes, StateError, errorMessage } from '../errors';
import { columnsPresentIn, OUTBOX_RECOVERABLE, QUARANTINE_ROW } from './columns';
import { giveToStateDirOwner, isLocked, STATE_FILE_NAME } from './open';
import { Outbox, readJournalMark, type QuarantineEntry, type RecoveredRecord } from './outbox';
import { isJobEvent } from '../record/job-record';

export interface RepairReport {
  damagedKeptAs: string;
  outbox: { read: number; unreadable: number };
  quarantine: { read: number; unreadable: number };
  /** whether the hook journal's mark could be read and kept (none: a damaged page, or never a journal) */
  hookJournalMark: 'kept' | 'none';
}

interface Rows<T> {
  rows: T[];
  unreadable: number;
}

export function repairStateFile(stateDir: string, now = new Date()): RepairReport {
  const file = join(stateDir, STATE_FILE_NAME);
  if (!existsSync(file)) throw new StateError(StateCodes.io, `no state file at ${file}`);
  assertNotInUse(file);

  const work = mkdtempSync(join(dirname(file), '.repair-'));
  try {
    for (const suffix of ['', '-wal']) if (existsSync(file + suffix)) copyFileSync(file + suffix, join(work, STATE_FILE_NAME + suffix));
    const damaged = new Database(join(work, STATE_FILE_NAME));
    // Read past schema entries SQLite would otherwise refuse to load: a damaged page behind
    // one table must not hide the others.
    damaged.unsafeMode(true);
    damaged.pragma('writable_schema = ON');
    const outboxRows = readRows(damaged, 'outbox', columnsPresentIn(OUTBOX_RECOVERABLE, tableColumns(damaged, 'outbox')));
    const quarantineRows = readRows(damaged, 'quarantine', columnsPresentIn(QUARANTINE_ROW, tableColumns(damaged, 'quarantine')));
    // without it the next start cannot tell which hook journal entries the state file holds
    const journalMark = readableJournalMark(damaged);
    damaged.close();

    const freshDir = join(work, 'fresh');
    const fresh = Outbox.open(freshDir);
    const records = outboxRows.rows.map(asRecord).filter((r): r is RecoveredRecord => r !== undefined);
    const quarantine = quarantineRows.rows.map(asQuarantine).filter((q): q is QuarantineEntry => q !== undefined);
    fresh.insertRecovered(records, quarantine);
    if (journalMark !== undefined) fresh.setJournalMark(journalMark);
    fresh.close();

    const keptAs = `${file}.damaged-${now.toISOString().replace(/[:.]/g, '')}`;
    renameSync(file, keptAs);
    if (existsSync(`${file}-wal`)) renameSync(`${file}-wal`, `${keptAs}-wal`);
    renameSync(join(freshDir, STATE_FILE_NAME), file);
    giveToStateDirOwner(file, stateDir);
    return {
      damagedKeptAs: keptAs,
      outbox: { read: records.length, unreadable: outboxRows.unreadable + outboxRows.rows.length - records.length },
      quarantine: { read: quarantine.length, unreadable: quarantineRows.unreadable + quarantineRows.rows.length - quarantine.length },
      hookJournalMark: journalMark === undefined ? 'none' : 'kept',
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function readableJournalMark(db: Database.Database): ReturnType<typeof readJournalMark> {
  try {
    return readJournalMark(db);
  } catch {
    return undefined;
  }
}

function asRecord(r: Record<string, unknown>): RecoveredRecord | undefined {
  const { event, jobId, payload, source, receivedAt, topic, key, headers } = r;
  if (typeof event !== 'number' || !isJobEvent(event) || typeof jobId !== 'number' || !Buffer.isBuffer(payload)) return undefined;
  return {
    event,
    jobId,
    payload,
    source: typeof source === 'string' ? source : 'repair',
    receivedAt: typeof receivedAt === 'number' ? receivedAt : Date.now(),
    topic: typeof topic === 'string' ? topic : null,
    key: Buffer.isBuffer(key) ? key : null,
    headers: Buffer.isBuffer(headers) ? headers : null,
  };
}

function asQuarantine(q: Record<string, unknown>): QuarantineEntry | undefined {
  const blob = (v: unknown): Buffer | null => (Buffer.isBuffer(v) ? v : null);
  const payload = blob(q.payload);
  const raw = blob(q.raw);
  if (!payload && !raw) return undefined;
  const event = typeof q.event === 'number' && isJobEvent(q.event) ? q.event : null;
  return {
    event,
    jobId: typeof q.jobId === 'number' ? q.jobId : null,
    payload,
    raw,
    source: typeof q.source === 'string' ? q.source : 'repair',
    receivedAt: typeof q.receivedAt === 'number' ? q.receivedAt : Date.now(),
    reasonCode: typeof q.reasonCode === 'string' ? q.reasonCode : QuarantineCodes.unknown,
    reason: typeof q.reason === 'string' ? q.reason : 'recovered from a damaged state file',
    topic: typeof q.topic === 'string' ? q.topic : null,
    key: blob(q.key),
    headers: blob(q.headers),
  };
}

/** The same exclusive lock a daemon holds: if we can take it, nobody is using the file. */
function assertNotInUse(file: string): void {
  const db = new Database(file, { fileMustExist: true, timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (err) {
    if (isLocked(err)) {
      throw new StateError(StateCodes.locked, `state file ${file} is in use by another jobcompd process; stop it first`, EXIT_TEMPFAIL);
    }
    // anything else is the damage itself: reading row by row will find out what is left
  } finally {
    db.close();
  }
}

/** The columns a table of the file has (fewer in a file of an older schema). */
function tableColumns(db: Database.Database, table: string): Set<string> {
  try {
    return new Set((db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name));
  } catch {
    return new Set();
  }
}

/** Every readable row of a table, by row id, from 1 to the largest id SQLite still knows of. */
function readRows(db: Database.Database, table: string, columns: string): Rows<Record<string, unknown>> {
  const maxId = largestId(db, table);
  const out: Rows<Record<string, unknown>> = { rows: [], unreadable: 0 };
  if (maxId === 0) return out;
  const byId = db.prepare(`SELECT ${columns} FROM ${table} WHERE id = ?`);
  for (let id = 1; id <= maxId; id++) {
    try {
      const row = byId.get(id) as Record<string, unknown> | undefined;
      if (row) out.rows.push(row);
    } catch {
      out.unreadable += 1; // a row behind a damaged page (or a gap: ids are not all used)
    }
  }
  return out;
}

/** From sqlite_sequence (AUTOINCREMENT's record of the largest id ever given), else max(id). */
function largestId(db: Database.Database, table: string): number {
  const attempts = [`SELECT seq AS n FROM sqlite_sequence WHERE name = '${table}'`, `SELECT max(id) AS n FROM ${table}`];
  let best = 0;
  for (const sql of attempts) {
    try {
      best = Math.max(best, Number((db.prepare(sql).get() as { n: number | null } | undefined)?.n ?? 0));
    } catch (err) {
      if (errorMessage(err).includes('no such table')) return best;
    }
  }
  return best;
}
