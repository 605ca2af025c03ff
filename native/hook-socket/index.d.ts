// The hook socket's listener in C on Node's event loop: see hook-listener.c.

/** A hook listener; opaque. */
export interface HookListenerHandle {
  readonly __hookListener: unique symbol;
}

export interface HookListenerOptions {
  maxMessageBytes: number;
  timeoutMs: number;
  maxConnections: number;
  allowedUids: number[];
}

/** Binds and listens on `path` (throws an Error whose code is libuv's: EADDRINUSE, EACCES...). */
export function listen(
  path: string,
  opts: HookListenerOptions,
  onInput: (id: number, bytes: Buffer, ended: boolean) => void,
  onRefused: (id: number, uid: number, gid: number, pid: number, error: string | undefined) => void,
): HookListenerHandle;
/** false when the connection is gone already */
export function answer(listener: HookListenerHandle, id: number, bytes: Buffer, drain: boolean): boolean;
export function arriving(listener: HookListenerHandle): number;
export function close(listener: HookListenerHandle, done: () => void): void;
