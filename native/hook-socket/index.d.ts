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
  /** seq > 0: answered already, from the journal entry `seq` that ends at offset `end` */
  onInput: (id: number, bytes: Buffer, ended: boolean, seq: number, end: number) => void,
  onRefused: (id: number, uid: number, gid: number, pid: number, error: string | undefined) => void,
  onJournalError: (message: string) => void,
): HookListenerHandle;
/** A connection gone meanwhile is left alone. */
export function answer(listener: HookListenerHandle, id: number, bytes: Buffer, drain: boolean): void;
/** The state file holds every journal entry up to `seq`, synced: their space may be written again. */
export function applied(listener: HookListenerHandle, seq: number): void;
export function arriving(listener: HookListenerHandle): number;
export function close(listener: HookListenerHandle, done: () => void): void;
