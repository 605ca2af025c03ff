// Issue 14, gap 1: a state file whose fdatasync, or a write inside a commit, fails for real
// (LazyFS kills itself just before that operation, so it and every later one on the mount
// fail). jobcompd must exit 74 (E_STATE_SYNC_FAILED) and acknowledge nothing after: Linux may
// report the next fsync as successful while the failed pages are gone.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_IOERR, StateCodes } from '../../src/errors';
import { tempDir } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { post } from '../helpers/daemon';
import { capture, installHook, runHook, withJobId } from '../helpers/hook';
import { numberedBodies } from '../helpers/records';
import { useLazyFs } from './helpers/lazyfs';

jest.setTimeout(120_000);

const suite = useBroker({ autoCreateTopics: true });
const lazyfs = useLazyFs();

/** How long a daemon that does not exit is given before the test says so. */
const EXIT_WAIT_MS = 30_000;

/** The daemon's exit, or 'still running' after EXIT_WAIT_MS (a timer that keeps no test waiting once it exits). */
function exitOf(d: { exited: Promise<unknown> }): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise((resolve) => (timer = setTimeout(() => resolve('still running'), EXIT_WAIT_MS)));
  return Promise.race([d.exited, late]).finally(() => clearTimeout(timer));
}

describe.each([
  ['fsync', 'the fdatasync after a commit'],
  ['write', 'a write of the write-ahead log inside a commit'],
] as const)('LazyFS fails %s', (op, what) => {
  it(`${what} fails: jobcompd exits ${EXIT_IOERR} and never acknowledges another record`, async () => {
    const dir = tempDir('jobcompd-syncfail-');
    const mount = await lazyfs.mount(join(dir, 'state'));
    const d = await suite.daemon({ dir, clusterName: `syncfail-${op}` });
    const [first, second, third] = numberedBodies(3, 71_000) as [Buffer, Buffer, Buffer];
    expect((await post(d.url, first)).status).toBe(201);

    await mount.crashBefore(op, 'jobcompd\\.sqlite-wal');
    const failed = await post(d.url, second).catch(() => undefined);
    expect(failed?.status).not.toBe(201);
    const late = await post(d.url, third).catch(() => undefined);
    expect(late?.status).not.toBe(201);

    const exit = await exitOf(d);
    expect(exit).toEqual({ code: EXIT_IOERR, signal: null });
    expect(d.logs.find((l) => l.logEvent === 'state.sync-failed')).toMatchObject({ level: 'fatal', code: StateCodes.syncFailed });
  });
});

describe('LazyFS fails the hook journal', () => {
  it(`its fdatasync fails: the hook is not answered and spools the record, and jobcompd exits ${EXIT_IOERR}`, async () => {
    const dir = tempDir('jobcompd-syncfail-journal-');
    const mount = await lazyfs.mount(join(dir, 'state'));
    const d = await suite.daemon({ dir, clusterName: 'syncfail-journal' });
    const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir }); // the spool is not on LazyFS

    await mount.crashBefore('fsync', 'hook-journal');
    expect((await runHook(hook, withJobId(capture('jobcomp.1.'), 'JOBID', 72_001))).code).toBe(0);
    expect(readdirSync(d.spoolDir).filter((f) => f.endsWith('.jch'))).toHaveLength(1);

    const exit = await exitOf(d);
    expect(exit).toEqual({ code: EXIT_IOERR, signal: null });
    expect(d.logs.find((l) => l.logEvent === 'state.sync-failed')).toMatchObject({ level: 'fatal', code: StateCodes.syncFailed });
  });
});
