// The state file's schema and its versioning. The file identifies itself with
// PRAGMA application_id, so a foreign SQLite file is never mistaken for ours, and carries
// its schema version in PRAGMA user_version. Migrations only ever move forward; a file
// written by a newer jobcompd is refused rather than guessed at.

import type Database from 'better-sqlite3';
import { StateCodes, StateError, EXIT_SOFTWARE } from '../errors';

/** "JCMP" */
export const APPLICATION_ID = 0x4a434d50;
export const SCHEMA_VERSION = 5;

/** The job id the duplicate-check rows of schema 4, which had none, carry from version 5 on. */
export const LEGACY_DEDUP_JOB_ID = -1;

const MIGRATIONS: readonly string[] = [
  // 0 -> 1
  `
  -- AUTOINCREMENT: ids are never reused, so "id > cursor" reads every new row exactly once
  -- and a row id can serve as the Kafka message opaque.
  CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event       INTEGER NOT NULL,            -- 1 job finish, 2 job start
    job_id      INTEGER NOT NULL,
    payload     BLOB    NOT NULL,            -- the exact Kafka message value
    source      TEXT    NOT NULL,            -- which ingest path accepted it
    received_at INTEGER NOT NULL,            -- ms since the epoch
    attempts    INTEGER NOT NULL DEFAULT 0,  -- failed delivery attempts so far
    last_error  TEXT
  );
  CREATE TABLE quarantine (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    event          INTEGER,                  -- NULL when the input could not be mapped
    job_id         INTEGER,
    payload        BLOB,                     -- the record, when there was one
    raw            BLOB,                     -- the input as received, when it could not be mapped
    source         TEXT    NOT NULL,
    received_at    INTEGER NOT NULL,
    quarantined_at INTEGER NOT NULL,
    reason_code    TEXT    NOT NULL,
    reason         TEXT    NOT NULL
  );
  CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 1 -> 2
  `
  -- Records seen recently (hash of event + payload), to publish a record Slurm sends twice
  -- only once. Pruned to the configured window.
  CREATE TABLE dedup (
    hash       BLOB    PRIMARY KEY,
    row_id     INTEGER NOT NULL,             -- the outbox row of the first copy
    first_seen INTEGER NOT NULL              -- ms since the epoch
  ) WITHOUT ROWID;
  CREATE INDEX dedup_first_seen ON dedup (first_seen);
  `,
  // 2 -> 3
  `
  -- Records taken by the Kafka listener are published as they came: to their own topic,
  -- with their key and headers (message-headers.ts). NULL topic: the event's topic from
  -- JobCompParams, no key, no headers, as before.
  ALTER TABLE outbox ADD COLUMN topic TEXT;
  ALTER TABLE outbox ADD COLUMN msg_key BLOB;
  ALTER TABLE outbox ADD COLUMN headers BLOB;
  ALTER TABLE quarantine ADD COLUMN topic TEXT;
  ALTER TABLE quarantine ADD COLUMN msg_key BLOB;
  ALTER TABLE quarantine ADD COLUMN headers BLOB;
  `,
  // 3 -> 4
  `
  -- The number of outbox rows, kept by every transaction that inserts or deletes them, so
  -- that a start does not count a backlog of millions (counted once, here).
  INSERT INTO counters (name, value) SELECT 'backlog', count(*) FROM outbox WHERE 1
    ON CONFLICT(name) DO UPDATE SET value = excluded.value;
  `,
  // 4 -> 5
  `
  -- The duplicate check keyed by job id, then hash. Keyed by the hash alone, every record's
  -- row went to a random page of the table, and a transaction of 30 records wrote about 30
  -- pages; records that arrive together have job ids close together, so their rows now
  -- share a few pages (docs/benchmarks.md, fourteenth session). A record's job id comes
  -- from its payload, so two identical records have the same one. The rows of version 4
  -- carry no job id: they move under LEGACY_DEDUP_JOB_ID, which every lookup also reads
  -- (outbox.ts) until the window has pruned them.
  CREATE TABLE dedup_v5 (
    job_id     INTEGER NOT NULL,
    hash       BLOB    NOT NULL,
    row_id     INTEGER NOT NULL,             -- the outbox row of the first copy
    first_seen INTEGER NOT NULL,             -- ms since the epoch
    PRIMARY KEY (job_id, hash)
  ) WITHOUT ROWID;
  INSERT INTO dedup_v5 (job_id, hash, row_id, first_seen) SELECT ${LEGACY_DEDUP_JOB_ID}, hash, row_id, first_seen FROM dedup;
  DROP TABLE dedup;
  ALTER TABLE dedup_v5 RENAME TO dedup;
  CREATE INDEX dedup_first_seen ON dedup (first_seen);
  `,
];

/** Bring a freshly opened database to SCHEMA_VERSION, or refuse it. */
export function migrate(db: Database.Database, file: string): void {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };

  if (appId === 0 && version === 0 && tables.n === 0) {
    db.pragma(`application_id = ${APPLICATION_ID}`);
  } else if (appId !== APPLICATION_ID) {
    throw new StateError(
      StateCodes.foreign,
      `${file} is not a jobcompd state file (SQLite application_id 0x${appId.toString(16)}); refusing to use it. ` +
        'Point StateDir at an empty directory or at an existing jobcompd state.',
      EXIT_SOFTWARE,
    );
  }
  if (version > SCHEMA_VERSION) {
    throw new StateError(
      StateCodes.newerSchema,
      `${file} has schema version ${version}, written by a newer jobcompd (this one knows up to ${SCHEMA_VERSION}); ` +
        'run the newer jobcompd, or its `replay`, to drain it.',
    );
  }
  for (let v = version; v < SCHEMA_VERSION; v++) {
    const step = MIGRATIONS[v];
    if (step === undefined) throw new Error(`missing migration ${v} -> ${v + 1}`);
    db.transaction(() => {
      db.exec(step);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
