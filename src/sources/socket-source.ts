// The Unix socket the native hook (native/jobcompd-hook.c) talks to. One message per
// connection: the hook sends its environment, jobcompd answers once the record is
// committed. A hook that gets no answer in time spools the record instead, so an answer
// is never required for safety; it is what lets the hook exit in milliseconds.
// Access: the socket's mode and group, and the peer's uid (SO_PEERCRED, from the kernel)
// checked against an allow list (root and SlurmUser by default).

import { chmodSync, chownSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { peerCredentials } from 'jobcompd-peercred';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { QuarantineCodes, SourceCodes, StateCodes, StateError, errorMessage, failedRecord } from '../errors';
import type { AcceptResult, Ingest } from '../ingest';
import { HookMessageFramer } from './hook-framer';
import { Answer, encodeAnswer, type AnswerStatus } from './hook-protocol';

export interface SocketSourceOptions {
  path: string;
  mode: number;
  /** chown the socket to this group (the hook runs as SlurmUser) */
  group: number | undefined;
  /** peers (SO_PEERCRED uid) allowed to send records */
  allowedUids: ReadonlySet<number>;
  timeoutMs: number;
  maxMessageBytes: number;
  maxConnections: number;
}

export class SocketSource {
  private readonly connections = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly ingest: Ingest,
    private readonly opts: SocketSourceOptions,
    private readonly log: Logger,
  ) {}

  static async listen(ingest: Ingest, opts: SocketSourceOptions, log: Logger): Promise<SocketSource> {
    await removeStaleSocket(opts.path);
    mkdirSync(dirname(opts.path), { recursive: true, mode: 0o755 });
    const server = createServer({ allowHalfOpen: true });
    server.maxConnections = opts.maxConnections;
    const source = new SocketSource(server, ingest, opts, log);
    server.on('connection', (socket) => source.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (opts.group !== undefined) chownSync(opts.path, -1, opts.group);
    chmodSync(opts.path, opts.mode);
    return source;
  }

  /** Stop accepting; messages already received are answered first. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.connections) if (socket.bytesRead === 0) socket.destroy();
    await closed;
  }

  private serve(socket: Socket): void {
    this.connections.add(socket);
    socket.on('error', () => undefined); // the hook went away; it spools the record itself
    const refusal = this.checkPeer(socket);
    if (refusal !== undefined) {
      socket.on('close', () => this.connections.delete(socket));
      answer(socket, Answer.error, refusal);
      return;
    }
    // A deadline for the whole message, not an idle timeout: a client that trickles a
    // byte now and then must not hold a connection slot for ever.
    const deadline = setTimeout(() => socket.destroy(), this.opts.timeoutMs);
    const framer = new HookMessageFramer(this.opts.maxMessageBytes);
    const received = this.ingest.receiving();
    // one listener: this runs for every record
    socket.on('close', () => {
      this.connections.delete(socket);
      clearTimeout(deadline);
      received();
    });
    /** the message was answered or rejected: the client's end of stream changes nothing */
    let settled = false;
    const onData = (chunk: Buffer): void => {
      const framed = framer.push(chunk);
      if (framed.kind === 'incomplete') return;
      socket.off('data', onData);
      received();
      if (framed.kind !== 'too-large') clearTimeout(deadline);
      settled = true;
      if (framed.kind === 'too-large') this.refuseTooLarge(socket, framed.reason, deadline);
      else if (framed.kind === 'malformed') this.reject(socket, framed.raw, framed.reason);
      else this.accept(socket, framed.environment);
    };
    socket.on('data', onData);
    socket.on('end', () => {
      if (settled) return;
      settled = true;
      const truncated = framer.end();
      if (truncated) this.reject(socket, truncated.raw, truncated.reason);
      else socket.end();
    });
  }

  /** The kernel's word on who connected (SO_PEERCRED): only allowed users may send records. */
  private checkPeer(socket: Socket): string | undefined {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    let peer: { pid: number; uid: number; gid: number };
    try {
      if (fd === undefined || fd < 0) throw new Error('no file descriptor');
      peer = peerCredentials(fd);
    } catch (err) {
      this.log.error({ logEvent: 'hook.peer-unknown', err: errorMessage(err) }, 'cannot read the credentials of a hook connection; refused');
      return 'jobcompd cannot identify the peer';
    }
    if (this.opts.allowedUids.has(peer.uid)) return undefined;
    this.log.warn({ logEvent: 'hook.peer-refused', uid: peer.uid, gid: peer.gid, pid: peer.pid }, 'hook connection from a user not in [hook] AllowedUsers refused');
    return `uid ${peer.uid} may not send records to jobcompd ([hook] AllowedUsers)`;
  }

  private accept(socket: Socket, environment: Buffer): void {
    this.ingest.acceptHookEnvironment(environment, 'socket').then(
      (result) => answer(socket, ...answerFor(result)),
      (err: unknown) => {
        this.log.error({ logEvent: 'hook.commit-failed', ...failedRecord(err), err: errorMessage(err) }, 'hook record not committed; the hook spools it');
        answer(socket, Answer.error, err instanceof StateError ? err.message : `internal error: ${errorMessage(err)}`);
      },
    );
  }

  /**
   * Over MaxMessageBytes: nothing is kept here (a cut record must never be acknowledged).
   * The "not committed" answer makes the hook spool the whole message, which the spool
   * import then moves to rejected/ (docs/delivery-guarantees.md). The rest of the message
   * is read and dropped until the hook closes, or until the connection's deadline.
   */
  private refuseTooLarge(socket: Socket, reason: string, deadline: NodeJS.Timeout): void {
    this.log.warn({ logEvent: 'hook.too-large', code: SourceCodes.hookTooLarge, reason }, 'hook message over [hook] MaxMessageBytes; the hook spools it whole');
    socket.on('data', () => undefined);
    deadline.refresh();
    answer(socket, Answer.error, `${reason} ([hook] MaxMessageBytes): not committed, spool it`);
  }

  /** A malformed message: kept in quarantine as evidence, answered so the hook does not spool garbage. */
  private reject(socket: Socket, raw: Buffer, reason: string): void {
    this.log.error({ logEvent: 'hook.malformed', bytes: raw.length, reason }, 'malformed message on the hook socket');
    this.ingest.quarantineInput(raw, 'socket', QuarantineCodes.hookBadMessage, reason).then(
      () => answer(socket, Answer.quarantined, reason),
      () => answer(socket, Answer.error, reason),
    );
  }
}

function answerFor(result: AcceptResult): [AnswerStatus, string] {
  switch (result.kind) {
    case 'stored':
      return [Answer.stored, `committed as row ${result.id}`];
    case 'duplicate':
      return [Answer.duplicate, `duplicate of row ${result.id}`];
    case 'quarantined':
      return [Answer.quarantined, result.reason];
    case 'ignored':
      return [Answer.ignored, result.reason];
  }
}

function answer(socket: Socket, status: AnswerStatus, message: string): void {
  if (!socket.destroyed) socket.end(encodeAnswer(status, message));
}

/**
 * A socket file left by a daemon that died is removed; one a live daemon listens on is
 * not: that is a second daemon, and starting would steal its socket.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new StateError(StateCodes.socketPath, `${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new StateError(StateCodes.socketInUse, `another process is listening on ${path} (a second jobcompd?)`);
  unlinkSync(path);
}
