// The hook socket's listener in C, on a thread of its own: see hook-listener.c.

/** A hook listener; opaque. */
export interface HookListenerHandle {
  readonly __hookListener: unique symbol;
}

/** The hook journal the listener writes to (src/sources/hook-journal.ts owns the file). */
export interface HookJournalFile {
  fd: number;
  bytes: number;
  epoch: number;
  nextSeq: number;
  /** false only under the test-only switch of src/outbox/sync.ts */
  sync: boolean;
  /**
   * Hold the entries answered from the journal until take(); onHeld hears of the first held
   * and of every `batch`-th. Absent: each goes to onInput at once.
   */
  batch?: number;
}

export interface HookListenerOptions {
  maxMessageBytes: number;
  timeoutMs: number;
  maxConnections: number;
  allowedUids: number[];
  journal?: HookJournalFile;
}

/** Binds and listens on `path` (throws an Error whose code is libuv's: EADDRINUSE, EACCES...). */
export function listen(
  path: string,
  opts: HookListenerOptions,
  /** seq > 0: answered already, at `answeredAt` (ms since the epoch), from the journal entry `seq` that ends at offset `end` */
  onInput: (id: number, bytes: Buffer, ended: boolean, seq: number, end: number, answeredAt: number) => void,
  onRefused: (id: number, uid: number, gid: number, pid: number, error: string | undefined) => void,
  onJournalError: (message: string) => void,
  /** with journal.batch: `count` answered entries are held for take() */
  onHeld?: (count: number) => void,
): HookListenerHandle;
/** A connection gone meanwhile is left alone. */
export function answer(listener: HookListenerHandle, id: number, bytes: Buffer, drain: boolean): void;
/** The state file holds every journal entry up to `seq`, synced: their space may be written again. */
export function applied(listener: HookListenerHandle, seq: number): void;
export function arriving(listener: HookListenerHandle): number;
/** The entries held (journal.batch) go to onInput now, in order, before this returns. */
export function take(listener: HookListenerHandle): void;
export function close(listener: HookListenerHandle, done: () => void): void;
