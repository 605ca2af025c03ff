// Opening the state file: created private (0600, owned by the state directory's owner),
// locked for this process (locking_mode=EXCLUSIVE), in WAL mode, migrated and checked, with
// SQLite's errors translated into StateErrors a user can act on (docs/errors.md).

import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EXIT_TEMPFAIL, StateCodes, StateError, errorMessage } from '../errors';
import { migrate } from './schema';
import { sqliteSynchronous, syncDataNow } from './sync';

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
    // Checkpoints run off the event loop (outbox.ts), never inside a commit.
    db.pragma('wal_autocheckpoint = 0');
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
    checkIntegrity(db, file);
    return { file, db, walFd, dbFd };
  } catch (err) {
    db.close();
    closeSync(walFd);
    closeSync(dbFd);
    throw translateOpenError(err, file);
  }
}

/**
 * Refuse a damaged file at start rather than fail on it later (or worse, start afresh):
 * quick_check reads every page (about 0.3 s for 300 MB).
 */
function checkIntegrity(db: Database.Database, file: string): void {
  const problems = db.pragma('quick_check(5)', { simple: false }) as { quick_check: string }[];
  const first = problems[0]?.quick_check;
  if (first !== 'ok') {
    throw new StateError(
      StateCodes.corrupt,
      `state file ${file} is damaged (${problems.map((p) => p.quick_check).join('; ')}); jobcompd will not start on it. ` +
        'Run `jobcompd repair-state` to rebuild it from what can still be read (docs/operations.md "Damaged state file").',
    );
  }
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
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new StateError(
      StateCodes.corrupt,
      `state file ${file} is damaged or not a database (${code}); jobcompd will not start on it. ` +
        'Run `jobcompd repair-state` to rebuild it from what can still be read (docs/operations.md "Damaged state file").',
    );
  }
  return new StateError(StateCodes.io, `cannot open state file ${file}: ${errorMessage(err)}`);
}
