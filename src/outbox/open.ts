// Opening the state file: created private (0600, owned by the state directory's owner),
// locked for this process (locking_mode=EXCLUSIVE), in WAL mode, migrated and checked, with
// SQLite's errors translated into StateErrors a user can act on (docs/errors.md).

import { chmodSync, chownSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EXIT_TEMPFAIL, StateCodes, StateError, errorMessage } from '../errors';
import { OUTBOX_ROW } from './columns';
import { migrate } from './schema';
import { sqliteSynchronous, syncDataNow } from './sync';
import { committedWalPages } from './wal-pages';

export const STATE_FILE_NAME = 'jobcompd.sqlite';

export interface OpenOptions {
  /** How long to wait for another process's lock before giving up. */
  busyTimeoutMs?: number;
  /** Do not create a state file (for inspection). */
  mustExist?: boolean;
  /** Window of the duplicate check for records with a dedupKey; 0 disables it. */
  dedupWindowMs?: number;
}

export interface OpenStateFile {
  file: string;
  db: Database.Database;
  /** the write-ahead log, synced before each answer */
  walFd: number;
  /** the database file, synced after each checkpoint */
  dbFd: number;
}

/** SQLite's default page cache: 2000 KiB (a negative cache_size counts KiB, a positive one pages) */
const PAGE_CACHE_SIZE = -2000;

export function openStateFile(stateDir: string, opts: OpenOptions): OpenStateFile {
  const file = join(stateDir, STATE_FILE_NAME);
  if (!opts.mustExist) createPrivate(stateDir, file);
  let db: Database.Database;
  try {
    // Never read-only: a WAL database cannot be read without a writable -wal file.
    db = new Database(file, { fileMustExist: opts.mustExist ?? false, timeout: opts.busyTimeoutMs ?? 0 });
  } catch (err) {
    throw new StateError(StateCodes.io, `cannot open state file ${file}: ${errorMessage(err)}`);
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
    if (mode !== 'wal') throw new StateError(StateCodes.io, `cannot put state file ${file} in WAL mode (SQLite answered journal_mode=${mode})`);
    // Commit durability comes from syncing the WAL before answering (outbox.ts).
    db.pragma(`synchronous = ${sqliteSynchronous}`);
    // Checkpoints are jobcompd's (outbox.ts): never inside a commit, their fdatasync in libuv's pool.
    db.pragma('wal_autocheckpoint = 0');
    // SQLite's own default page cache (2 MB); better-sqlite3 raises it to 16 MB, which a
    // drain filled with outbox pages it reads once (docs/benchmarks.md, memory).
    db.pragma(`cache_size = ${PAGE_CACHE_SIZE}`);
    // Take the write lock now and keep it: a second process fails here, clearly.
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (err) {
    db.close();
    throw translateOpenError(err, file);
  }
  let walFd: number;
  let dbFd: number;
  try {
    walFd = openSync(`${file}-wal`, 'r');
  } catch (err) {
    db.close();
    throw new StateError(StateCodes.io, `cannot open the write-ahead log of state file ${file}: ${errorMessage(err)}`);
  }
  try {
    dbFd = openSync(file, 'r');
  } catch (err) {
    db.close();
    closeSync(walFd);
    throw new StateError(StateCodes.io, `cannot open state file ${file}: ${errorMessage(err)}`);
  }
  try {
    migrate(db, file);
    syncDataNow(walFd);
    checkAtStart(db, file, dbFd);
    return { file, db, walFd, dbFd };
  } catch (err) {
    db.close();
    closeSync(walFd);
    closeSync(dbFd);
    throw translateOpenError(err, file);
  }
}

/**
 * Refuse a damaged file at start rather than fail on it later (or worse, start afresh), in
 * a time that does not grow with the backlog: a full quick_check reads every page (1.6 s
 * for a million records). Checked: the file's length against its header (a truncated
 * file), every table but the outbox in full (quick_check of each), and the outbox's B-tree
 * from its root to its first and last rows. A damaged page inside the outbox is found when
 * a row on it is read: the read fails with the same E_STATE_CORRUPT and the daemon stops
 * (docs/operations.md "Damaged state file").
 */
function checkAtStart(db: Database.Database, file: string, dbFd: number): void {
  checkLength(file, dbFd);
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'outbox'").pluck().all() as string[];
  for (const table of tables) {
    const problems = db.pragma(`quick_check('${table.replaceAll("'", "''")}')`, { simple: false }) as { quick_check: string }[];
    if (problems[0]?.quick_check !== 'ok') throw corruptStateFile(file, `(${problems.slice(0, 5).map((p) => p.quick_check).join('; ')})`);
  }
  db.prepare(`SELECT ${OUTBOX_ROW} FROM outbox ORDER BY id LIMIT 1`).get();
  db.prepare(`SELECT ${OUTBOX_ROW} FROM outbox ORDER BY id DESC LIMIT 1`).get();
}

/**
 * The database header's page count (when valid) against the file's length: a truncated
 * file, unless every page past its end is in the write-ahead log (a checkpoint cut short by
 * kill -9 writes the header first: wal-pages.ts).
 */
function checkLength(file: string, dbFd: number): void {
  const header = Buffer.alloc(100);
  if (readSync(dbFd, header, 0, 100, 0) < 100) return; // a new file: SQLite writes the header at the first commit
  const pageSize = header.readUInt16BE(16) === 1 ? 65536 : header.readUInt16BE(16);
  const pages = header.readUInt32BE(28);
  const sizeIsValid = header.readUInt32BE(92) === header.readUInt32BE(24) && pages > 0;
  const length = fstatSync(dbFd).size;
  if (sizeIsValid && length < pages * pageSize && !walHoldsPages(`${file}-wal`, pageSize, Math.floor(length / pageSize) + 1, pages)) {
    throw corruptStateFile(file, `(the file is ${length} bytes long, its header says ${pages * pageSize}: truncated)`);
  }
}

/** Whether the committed part of the log holds pages `first` to `last`. */
function walHoldsPages(walFile: string, pageSize: number, first: number, last: number): boolean {
  const wal = committedWalPages(walFile);
  if (wal === undefined || wal.pageSize !== pageSize) return false;
  for (let page = first; page <= last; page++) if (!wal.pages.has(page)) return false;
  return true;
}

/** E_STATE_CORRUPT, with the way out; at start and when a damaged page is read later. */
export function corruptStateFile(file: string, what: string): StateError {
  return new StateError(
    StateCodes.corrupt,
    `state file ${file} is damaged ${what}; jobcompd will not start on it. ` +
      'Run `jobcompd repair-state` to rebuild it from what can still be read (docs/operations.md "Damaged state file").',
  );
}

function createPrivate(stateDir: string, file: string): void {
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const existed = existsSync(file);
    closeSync(openSync(file, 'a', 0o600));
    if (!existed) giveToStateDirOwner(file, stateDir);
  } catch (err) {
    throw new StateError(StateCodes.io, `cannot create state file ${file}: ${errorMessage(err)}`);
  }
  try {
    chmodSync(file, 0o600);
  } catch {
    // not ours to change (e.g. a read-only bind mount): SQLite will say so if it matters
  }
}

/**
 * A state file root creates (`replay`, `repair-state` run as root) goes to the state
 * directory's owner, SlurmUser: a root-owned 0600 file would lock the daemon out. SQLite
 * itself gives the -wal of a database it opens as root to the database file's owner.
 */
export function giveToStateDirOwner(file: string, stateDir: string): void {
  if (process.geteuid?.() !== 0) return;
  const dir = statSync(stateDir);
  if (dir.uid !== 0 || dir.gid !== 0) chownSync(file, dir.uid, dir.gid);
}

export function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** Another process holds the file's lock. */
export function isLocked(err: unknown): boolean {
  const code = sqliteCode(err) ?? '';
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

/** SQLite found a damaged page (or no database at all). */
export function isCorrupt(err: unknown): boolean {
  const code = sqliteCode(err) ?? '';
  return code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT');
}

export function isDiskFull(err: unknown): boolean {
  return sqliteCode(err) === 'SQLITE_FULL';
}

function translateOpenError(err: unknown, file: string): Error {
  if (err instanceof StateError) return err;
  const code = sqliteCode(err) ?? '';
  if (isLocked(err)) {
    return new StateError(
      StateCodes.locked,
      `state file ${file} is in use by another jobcompd process (the daemon or a replay); ` +
        'stop it first, or ask the running daemon with `jobcompd status`',
      EXIT_TEMPFAIL,
    );
  }
  if (isCorrupt(err)) return corruptStateFile(file, `or not a database (${code})`);
  return new StateError(StateCodes.io, `cannot open state file ${file}: ${errorMessage(err)}`);
}
