// The spool directory: where the native hook leaves a record (atomically: temporary file,
// fsync, rename) when jobcompd did not answer in time. jobcompd imports the spool at start
// and continuously (on directory events, and by a periodic scan in case an event is
// missed), and removes a file only once its record is committed.

import { watch, type FSWatcher } from 'node:fs';
import { mkdir, open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { QuarantineCodes, StateError, errorMessage, failedRecord } from '../errors';
import type { Ingest } from '../ingest';
import { decodeMessage, HEADER_BYTES } from './hook-protocol';

interface SpoolFile {
  /** the first bytes, at most a header plus MaxMessageBytes */
  buf: Buffer;
  /** the file's size */
  size: number;
}

export interface SpoolSourceOptions {
  dir: string;
  scanIntervalMs: number;
  maxMessageBytes: number;
}

/** Files the hook writes: "<kind>.<jobid>.<sec>.<nsec>.<pid>.jch" (temporary ones start with "."). */
const SPOOL_FILE = /^[a-z]+\.[^/]+\.jch$/;
const CONCURRENCY = 32;

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

  /** true when the file's record is committed (or kept in quarantine) and the file removed. */
  private async importFile(path: string): Promise<boolean> {
    let file: SpoolFile;
    try {
      file = await this.readBounded(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.error({ logEvent: 'spool.unreadable-file', err: errorMessage(err), file: path }, 'cannot read a spool file');
      return false;
    }
    try {
      const { buf, size } = file;
      const message: ReturnType<typeof decodeMessage> =
        size > buf.length
          ? { ok: false, reason: `the file is ${size} bytes, more than a message of MaxMessageBytes (${this.opts.maxMessageBytes}) can be; its first ${buf.length} bytes are kept` }
          : decodeMessage(buf, this.opts.maxMessageBytes);
      if (message.ok) await this.ingest.acceptHookEnvironment(message.environment, 'spool');
      else await this.ingest.quarantineInput(buf.subarray(0, this.opts.maxMessageBytes), 'spool', QuarantineCodes.hookBadMessage, `${path}: ${message.reason}`);
    } catch (err) {
      // Not committed (disk full...): the file stays and is tried again at the next scan.
      if (err instanceof StateError) this.log.error({ logEvent: 'spool.commit-failed', ...failedRecord(err), err: err.message, file: path }, 'spooled record not committed yet; will retry');
      else throw err;
      return false;
    }
    await unlink(path).catch(() => undefined);
    this.imported += 1;
    return true;
  }

  /**
   * At most one message's worth of the file (header + MaxMessageBytes): a file that is
   * larger (a stray or sparse multi-GiB file) must not be read into memory whole.
   */
  private async readBounded(path: string): Promise<SpoolFile> {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      const buf = Buffer.alloc(Math.min(size, HEADER_BYTES + this.opts.maxMessageBytes));
      let filled = 0;
      while (filled < buf.length) {
        const { bytesRead } = await handle.read(buf, filled, buf.length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return { buf: buf.subarray(0, filled), size };
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
