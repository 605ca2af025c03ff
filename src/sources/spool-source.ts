// The spool directory: where the native hook leaves a record (atomically: temporary file,
// fsync, rename) when jobcompd did not answer in time. jobcompd imports the spool at start
// and continuously (on directory events, and by a periodic scan in case an event is
// missed), and removes a file only once its record is committed. A file it cannot import
// is moved whole to rejected/ (docs/delivery-guarantees.md): nothing here is ever cut
// short or deleted unimported.

import { constants, watch, type FSWatcher } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import { QuarantineCodes, SourceCodes, errorMessage, failedRecord } from '../errors';
import type { Ingest } from '../ingest';
import { eventName, JobEvent } from '../record/job-record';
import { decodeMessage, HEADER_BYTES } from './hook-protocol';

type SpoolFile = { kind: 'read'; buf: Buffer } | { kind: 'reject'; reason: string };

export interface SpoolSourceOptions {
  dir: string;
  scanIntervalMs: number;
  maxMessageBytes: number;
}

/** Files the hook writes: "<kind>.<jobid>.<host>.<sec>.<nsec>.<random>.jch" (temporary ones start with "."). */
const SPOOL_FILE = /^[a-z]+\.[^/]+\.jch$/;
const CONCURRENCY = 32;
/** Where files that cannot be imported go, inside the spool directory. */
export const REJECTED_DIR = 'rejected';

export class SpoolSource {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescan = false;
  private closed = false;
  imported = 0;

  private constructor(
    private readonly ingest: Ingest,
    private readonly opts: SpoolSourceOptions,
    private readonly log: Logger,
  ) {}

  static async start(ingest: Ingest, opts: SpoolSourceOptions, log: Logger): Promise<SpoolSource> {
    await mkdir(opts.dir, { recursive: true, mode: 0o700 });
    const source = new SpoolSource(ingest, opts, log);
    source.watcher = watch(opts.dir, () => source.scan());
    source.watcher.on('error', (err) => log.warn({ logEvent: 'spool.watch-failed', err: err.message, dir: opts.dir }, 'cannot watch the spool directory; relying on the periodic scan'));
    source.timer = setInterval(() => source.scan(), opts.scanIntervalMs);
    source.timer.unref();
    await source.scan();
    return source;
  }

  /** Import everything in the directory now. Concurrent calls coalesce into one more pass. */
  scan(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.scanning) {
      this.rescan = true;
      return this.scanning;
    }
    this.scanning = this.scanLoop().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    await this.scanning;
  }

  private async scanLoop(): Promise<void> {
    do {
      this.rescan = false;
      let names: string[];
      try {
        names = (await readdir(this.opts.dir)).filter((n) => SPOOL_FILE.test(n)).sort();
      } catch (err) {
        this.log.error({ logEvent: 'spool.unreadable-dir', err: errorMessage(err), dir: this.opts.dir }, 'cannot read the spool directory');
        return;
      }
      let removed = 0;
      for (let i = 0; i < names.length && !this.closed; i += CONCURRENCY) {
        const batch = names.slice(i, i + CONCURRENCY);
        const done = await Promise.all(batch.map((n) => this.importFile(join(this.opts.dir, n))));
        removed += done.filter(Boolean).length;
      }
      if (removed > 0) {
        await this.syncDirectory();
        this.log.info({ logEvent: 'spool.imported', files: removed, dir: this.opts.dir }, 'spooled records imported');
      }
    } while (this.rescan && !this.closed);
  }

  /** true when the file was taken out of the spool: its record committed (or quarantined), or the file moved to rejected/. */
  private async importFile(path: string): Promise<boolean> {
    let file: SpoolFile;
    try {
      file = await this.readBounded(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return false;
      // ELOOP: a symbolic link (O_NOFOLLOW); EACCES: a file jobcompd may not read
      if (code === 'ELOOP' || code === 'EACCES' || code === 'EPERM') return this.reject(path, code === 'ELOOP' ? 'a symbolic link, not a file the hook wrote' : `unreadable: ${errorMessage(err)}`);
      this.log.error({ logEvent: 'spool.unreadable-file', err: errorMessage(err), file: path, ...recordOfName(path) }, 'cannot read a spool file; will retry');
      return false;
    }
    if (file.kind === 'reject') return this.reject(path, file.reason);
    try {
      const message = decodeMessage(file.buf, this.opts.maxMessageBytes);
      if (message.ok) await this.ingest.acceptHookEnvironment(message.environment, 'spool');
      else await this.ingest.quarantineInput(file.buf, 'spool', QuarantineCodes.hookBadMessage, `${path}: ${message.reason}`);
    } catch (err) {
      // Not committed (disk full...): the file stays and is tried again at the next scan.
      this.log.error({ logEvent: 'spool.commit-failed', ...recordOfName(path), ...failedRecord(err), err: errorMessage(err), file: path }, 'spooled record not committed yet; will retry');
      return false;
    }
    await unlink(path).catch(() => undefined);
    this.imported += 1;
    return true;
  }

  /**
   * A file that cannot be imported is moved, whole, to rejected/ beside the spooled files
   * (never cut, never deleted): an operator can raise MaxMessageBytes and move it back.
   */
  private async reject(path: string, reason: string): Promise<boolean> {
    const dir = join(this.opts.dir, REJECTED_DIR);
    const name = basename(path);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const target = await freeName(dir, name);
      await rename(path, target);
      this.log.error({ logEvent: 'spool.rejected', code: SourceCodes.spoolRejected, ...recordOfName(path), file: path, movedTo: target, reason }, 'spool file cannot be imported; moved whole to rejected/');
      return true;
    } catch (err) {
      this.log.error({ logEvent: 'spool.reject-failed', ...recordOfName(path), file: path, reason, err: errorMessage(err) }, 'spool file cannot be imported nor moved to rejected/; will retry');
      return false;
    }
  }

  /**
   * The file's content, when it is a regular file of at most one message (header +
   * MaxMessageBytes). O_NOFOLLOW: a planted symbolic link is not followed; O_NONBLOCK: a
   * planted FIFO does not block a thread of the pool. A larger file (a stray or sparse
   * multi-GiB file) is never read into memory.
   */
  private async readBounded(path: string): Promise<SpoolFile> {
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) return { kind: 'reject', reason: 'not a regular file' };
      const limit = HEADER_BYTES + this.opts.maxMessageBytes;
      if (stat.size > limit) return { kind: 'reject', reason: `${stat.size} bytes, more than a message of [hook] MaxMessageBytes (${this.opts.maxMessageBytes}) can be` };
      const buf = Buffer.alloc(stat.size);
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return { kind: 'read', buf: buf.subarray(0, filled) };
    } finally {
      await handle.close();
    }
  }

  /** Make the removals durable; losing one would only re-import a record (deduplicated). */
  private async syncDirectory(): Promise<void> {
    const dir = await open(this.opts.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/** The job id and event a spool file's name shows ("<kind>.<jobid>...."), for log lines. */
function recordOfName(path: string): { jobId?: number; event?: string } {
  const [kind, id] = basename(path).split('.');
  const event = kind === 'jobcomp' ? eventName(JobEvent.finish) : kind === 'prolog' ? eventName(JobEvent.start) : undefined;
  return { ...(id !== undefined && /^\d+$/.test(id) ? { jobId: Number(id) } : {}), ...(event ? { event } : {}) };
}

/** `dir/name`, or with a numbered suffix when a file of that name was rejected before. */
async function freeName(dir: string, name: string): Promise<string> {
  for (let n = 0; ; n++) {
    const candidate = join(dir, n === 0 ? name : `${name}.${n}`);
    try {
      await lstat(candidate);
    } catch {
      return candidate;
    }
  }
}
