// Every fdatasync of the state file goes through here, so that one test-only switch can turn
// them all off: JOBCOMPD_TEST_SKIP_FSYNC=1 makes them no-ops (and SQLite's own, through
// synchronous=OFF), which the power-loss test uses to show that it can fail
// (docs/development.md "Power loss"). Never set it anywhere else: with it, every record
// acknowledged since the last checkpoint the kernel happened to write is lost in a power cut.

import { fdatasync, fdatasyncSync } from 'node:fs';

export const SKIP_FSYNC_VARIABLE = 'JOBCOMPD_TEST_SKIP_FSYNC';

/** Read once, at start. */
export const fsyncSkipped: boolean = process.env[SKIP_FSYNC_VARIABLE] === '1';

export function syncData(fd: number, done: (err: NodeJS.ErrnoException | null) => void): void {
  if (fsyncSkipped) setImmediate(() => done(null));
  else fdatasync(fd, done);
}

export function syncDataNow(fd: number): void {
  if (!fsyncSkipped) fdatasyncSync(fd);
}

/** SQLite's own syncs (checkpoints): NORMAL, or OFF under the test-only switch. */
export const sqliteSynchronous: 'NORMAL' | 'OFF' = fsyncSkipped ? 'OFF' : 'NORMAL';
