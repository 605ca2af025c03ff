// Logs: each daemon's stdout/stderr (slurmctld -D and slurmd -D copy their log
// there; munged --foreground prints to stderr) feeds an in-memory tail and line
// watchers. The daemons also write their own log files under <dir>/log and
// <dir>/munge; harness notes go to <dir>/log/harness.log.

import * as fs from 'node:fs';
import * as readline from 'node:readline';

export type SlurmDaemonName = 'munged' | 'slurmctld' | 'slurmd';

const LOG_TAIL_LINES = 60;
/** Once a second with bf_interval=1 and SlurmctldDebug=debug: kept in the log file, not in tails. */
const TAIL_NOISE = /_attempt_backfill: (beginning|no jobs to backfill)/;

export type LogSource = SlurmDaemonName | 'harness';

export class ClusterLog {
  private readonly recent = new Map<LogSource, string[]>();
  private readonly watchers = new Set<{ source: LogSource; pattern: RegExp; fn: (line: string) => void }>();

  constructor(private readonly notesFile: string) {}

  write(source: LogSource, line: string): void {
    if (!TAIL_NOISE.test(line)) {
      let lines = this.recent.get(source);
      if (lines === undefined) this.recent.set(source, (lines = []));
      lines.push(line);
      if (lines.length > LOG_TAIL_LINES) lines.shift();
    }
    for (const w of this.watchers) if (w.source === source && w.pattern.test(line)) w.fn(line);
  }

  note(source: LogSource, message: string): void {
    const line = `[harness ${new Date().toISOString()}] ${message}`;
    try {
      fs.appendFileSync(this.notesFile, `${line}\n`);
    } catch {
      // the directory may be gone (destroy())
    }
    this.write(source, line);
    if (source !== 'harness') this.write('harness', `${source}: ${message}`);
  }

  follow(source: LogSource, stream: NodeJS.ReadableStream): void {
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => this.write(source, line));
  }

  /** Calls `fn` for every later line of `source` matching `pattern`; returns the unsubscribe function. */
  watch(source: LogSource, pattern: RegExp, fn: (line: string) => void): () => void {
    const w = { source, pattern, fn };
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  tail(source: LogSource): string {
    return (this.recent.get(source) ?? []).join('\n');
  }

  /** The tails of the given sources, labelled, for error messages. */
  tails(...sources: LogSource[]): string {
    return sources.map((s) => `--- last ${s} log lines ---\n${this.tail(s) || '(none)'}`).join('\n');
  }
}

/** A promise that settles when `ring()` is called or `ms` pass, whichever is first. */
export class Doorbell {
  private pending: (() => void) | undefined;
  private rang = false;

  ring(): void {
    this.rang = true;
    this.pending?.();
  }

  /** Resolves at the next ring (or at once if it rang since the last wait), after `ms`, or on abort. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.rang || signal?.aborted === true) {
      this.rang = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.pending = undefined;
        this.rang = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.pending = done;
    });
  }
}
