// The Unix socket the native hook (native/jobcompd-hook.c) talks to. One message per
// connection: the hook sends its environment, jobcompd answers once the record is
// committed. A hook that gets no answer in time spools the record instead, so an answer
// is never required for safety; it is what lets the hook exit in milliseconds.
// Access: the socket's mode and group, and the peer's uid (SO_PEERCRED, from the kernel)
// checked against an allow list (root and SlurmUser by default).
//
// The connections themselves are served in C on a thread of its own
// (native/hook-socket/hook-listener.c): accepting, the uid check, reading the message and
// writing the answer: a node:net socket per record cost about a fifth of the path's CPU
// (docs/benchmark-rounds.md, ninth session). What the bytes are is decided here, by the framer.
// A hook alone on the socket (slurmctld runs jobcomp/script one record after another) is
// answered by that thread from the hook journal (hook-journal.ts), once written and synced
// there, and held by that thread until the Ingest takes it with the others that come
// within JOURNALED_WAIT_MS (ingest.ts), so that it wakes no JavaScript of its own.

import { chmodSync, chownSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import * as hookListener from 'jobcompd-hook-socket';
import type { HookListenerHandle } from 'jobcompd-hook-socket';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { EXIT_IOERR, QuarantineCodes, SourceCodes, StateCodes, StateError, errorMessage, failedRecord } from '../errors';
import { JOURNALED_BATCH, type AcceptResult, type Ingest } from '../ingest';
import type { JournalMark } from '../outbox/outbox';
import { fsyncSkipped } from '../outbox/sync';
import { HookMessageFramer } from './hook-framer';
import { HookJournal, type JournalState } from './hook-journal';
import { Answer, encodeAnswer, type AnswerStatus } from './hook-protocol';

export interface SocketSourceOptions {
  path: string;
  mode: number;
  /** chown the socket to this group (the hook runs as SlurmUser) */
  group: number | undefined;
  /** peers (SO_PEERCRED uid) allowed to send records */
  allowedUids: ReadonlySet<number>;
  /** the whole message must arrive within this; a connection answered but not closed by the client is closed after it too */
  timeoutMs: number;
  maxMessageBytes: number;
  maxConnections: number;
  /** the hook journal's file and size; undefined: off */
  journal: { file: string; bytes: number } | undefined;
}

/** The state file's side of the hook journal: its mark, and word of each synced one. */
export interface JournalStateFile extends JournalState {
  on(event: 'journal-synced', listener: (mark: JournalMark) => void): unknown;
  off(event: 'journal-synced', listener: (mark: JournalMark) => void): unknown;
  /** the journal's disk failed: the state file answers nothing more either, and the daemon exits */
  failForGood(error: StateError): void;
}

/**
 * What happens once the answer is written. `close`: the whole message was read, nothing is
 * left unread, and the answer waits in the hook's receive queue (a client that sent more
 * after its message meanwhile is drained instead, hook-listener.c). `drain`: the client may
 * still be sending (a refusal, a malformed or too large message), so read and drop until it
 * closes: closing a Unix socket with unread bytes resets the client's end before it reads
 * the answer.
 */
type AfterAnswer = 'close' | 'drain';

export class SocketSource {
  /** records answered from the hook journal, and those an earlier run left there committed at start */
  readonly counters = { journalAnswered: 0, journalRecovered: 0 };
  private readonly onJournalSynced = (mark: JournalMark): void => hookListener.applied(this.listener, mark.seq);

  private constructor(
    private readonly listener: HookListenerHandle,
    private readonly ingest: Ingest,
    private readonly opts: SocketSourceOptions,
    private readonly log: Logger,
    private readonly stopCounting: () => void,
    private readonly stopTaking: () => void,
    private readonly journal: HookJournal | undefined,
    private readonly state: JournalStateFile,
  ) {
    state.on('journal-synced', this.onJournalSynced);
  }

  static async listen(ingest: Ingest, opts: SocketSourceOptions, log: Logger, state: JournalStateFile): Promise<SocketSource> {
    await removeStaleSocket(opts.path);
    mkdirSync(dirname(opts.path), { recursive: true, mode: 0o755 });
    const journal = opts.journal === undefined ? undefined : await openJournal(opts.journal, ingest, state, log);
    // the callbacks come through the event loop, never before `source` is set below
    let source: SocketSource | undefined;
    const file = journal?.journal;
    const listener = hookListener.listen(
      opts.path,
      {
        maxMessageBytes: opts.maxMessageBytes,
        timeoutMs: opts.timeoutMs,
        maxConnections: opts.maxConnections,
        allowedUids: [...opts.allowedUids],
        journal: file && { fd: file.fd, bytes: file.size, epoch: file.epoch, nextSeq: file.firstSeq, sync: !fsyncSkipped, batch: JOURNALED_BATCH },
      },
      (id, bytes, ended, seq, end, answeredAt) => (seq > 0 ? source?.receiveJournaled(bytes, { seq, end }, answeredAt) : source?.receive(id, bytes, ended)),
      (id, uid, gid, pid, error) => source?.refuse(id, uid, gid, pid, error),
      (message) => source?.journalError(message),
      (held) => ingest.journaledWaiting(held),
    );
    const stopCounting = ingest.countArriving(() => hookListener.arriving(listener));
    const stopTaking = ingest.holdJournaled(() => hookListener.take(listener));
    source = new SocketSource(listener, ingest, opts, log, stopCounting, stopTaking, file, state);
    source.counters.journalRecovered = journal?.recovered ?? 0;
    try {
      if (opts.group !== undefined) chownSync(opts.path, -1, opts.group);
      chmodSync(opts.path, opts.mode);
    } catch (err) {
      await source.close();
      throw err;
    }
    return source;
  }

  /** Stop accepting; messages already received are answered first. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => hookListener.close(this.listener, resolve));
    this.ingest.flushJournaled();
    this.stopTaking();
    this.stopCounting();
    this.state.off('journal-synced', this.onJournalSynced);
    this.journal?.close();
  }

  /**
   * A write or fdatasync of the journal failed: the records of that turn were not answered
   * (their hooks spool them), and, as for the state file, the daemon exits: after a failed
   * fsync Linux may report the next one as successful while the pages are gone.
   */
  private journalError(message: string): void {
    this.state.failForGood(new StateError(StateCodes.syncFailed, message, EXIT_IOERR));
  }

  /** The bytes of one connection: a whole message, or what is wrong with them. */
  private receive(id: number, bytes: Buffer, ended: boolean): void {
    const framer = new HookMessageFramer(this.opts.maxMessageBytes);
    let framed = framer.push(bytes);
    // the listener hands over a whole message, bytes that cannot begin one, or what came
    // before the end of the stream; anything else is kept as evidence like any bad input
    if (framed.kind === 'incomplete') {
      framed = (ended ? framer.end() : undefined) ?? { kind: 'malformed', raw: bytes, reason: `the listener handed over ${bytes.length} bytes, no whole message` };
    }
    if (framed.kind === 'too-large') this.refuseTooLarge(id, framed.reason);
    else if (framed.kind === 'malformed') this.reject(id, framed.raw, framed.reason);
    else this.accept(id, framed.environment);
  }

  /** The kernel's word on who connected (SO_PEERCRED) was not an allowed user, or could not be read. */
  private refuse(id: number, uid: number, gid: number, pid: number, error: string | undefined): void {
    if (error !== undefined) {
      this.log.error({ logEvent: 'hook.peer-unknown', err: error }, 'cannot read the credentials of a hook connection; refused');
      this.answer(id, Answer.error, 'jobcompd cannot identify the peer', 'drain');
      return;
    }
    this.log.warn({ logEvent: 'hook.peer-refused', uid, gid, pid }, 'hook connection from a user not in [hook] AllowedUsers refused');
    this.answer(id, Answer.error, `uid ${uid} may not send records to jobcompd ([hook] AllowedUsers)`, 'drain');
  }

  private accept(id: number, environment: Buffer): void {
    this.ingest.acceptHookEnvironment(environment, 'socket').then(
      (result) => this.answer(id, ...answerFor(result), 'close'),
      (err: unknown) => {
        this.log.error({ logEvent: 'hook.commit-failed', ...failedRecord(err), err: errorMessage(err) }, 'hook record not committed; the hook spools it');
        this.answer(id, Answer.error, err instanceof StateError ? err.message : `internal error: ${errorMessage(err)}`, 'close');
      },
    );
  }

  /**
   * A whole message answered from the journal entry `mark` already: committed (or
   * quarantined, or noted as not published) with the entry recorded as applied, and tried
   * again until it is; refused only when the state file failed for good, and then the
   * daemon exits and the next start commits it from the journal.
   */
  private receiveJournaled(bytes: Buffer, mark: JournalMark, answeredAt: number): void {
    this.counters.journalAnswered += 1;
    const framed = new HookMessageFramer(this.opts.maxMessageBytes).push(bytes);
    const committing =
      framed.kind === 'message'
        ? this.ingest.acceptJournaledHook(framed.environment, mark, answeredAt)
        : this.ingest.quarantineInput(bytes, 'socket', QuarantineCodes.hookBadMessage, framed.kind === 'malformed' ? framed.reason : `the listener journaled ${bytes.length} bytes, no whole message`, mark);
    committing.catch((err: unknown) => {
      this.log.error({ logEvent: 'hook.commit-failed', ...failedRecord(err), err: errorMessage(err), journalEntry: mark.seq }, 'hook record not committed; it stays in the hook journal');
    });
  }

  /**
   * Over MaxMessageBytes: nothing is kept here (a cut record must never be acknowledged).
   * The "not committed" answer makes the hook spool the whole message, which the spool
   * import then moves to rejected/ (docs/delivery-guarantees.md). The rest of the message
   * is read and dropped until the hook closes, or until the connection's deadline.
   */
  private refuseTooLarge(id: number, reason: string): void {
    this.log.warn({ logEvent: 'hook.too-large', code: SourceCodes.hookTooLarge, reason }, 'hook message over [hook] MaxMessageBytes; the hook spools it whole');
    this.answer(id, Answer.error, `${reason} ([hook] MaxMessageBytes): not committed, spool it`, 'drain');
  }

  /** A malformed message: kept in quarantine as evidence, answered so the hook does not spool garbage. */
  private reject(id: number, raw: Buffer, reason: string): void {
    this.log.error({ logEvent: 'hook.malformed', bytes: raw.length, reason }, 'malformed message on the hook socket');
    this.ingest.quarantineInput(raw, 'socket', QuarantineCodes.hookBadMessage, reason).then(
      () => this.answer(id, Answer.quarantined, reason, 'drain'),
      () => this.answer(id, Answer.error, reason, 'drain'),
    );
  }

  /** A connection the client closed before its answer is gone: nothing to do, it spools the record itself. */
  private answer(id: number, status: AnswerStatus, message: string, after: AfterAnswer): void {
    hookListener.answer(this.listener, id, encodeAnswer(status, message), after === 'drain');
  }
}

/**
 * The entries an earlier run left in the journal are committed first (as received on the
 * socket: mapped with today's configuration), then the journal is opened for this run. A
 * journal that cannot be made (no room for it) leaves the socket answering after the state
 * file's commit, as without one.
 */
async function openJournal(opts: { file: string; bytes: number }, ingest: Ingest, state: JournalStateFile, log: Logger): Promise<{ journal: HookJournal; recovered: number } | undefined> {
  const left = HookJournal.leftOver(opts.file, state);
  if (left.length > 0) {
    await Promise.all(left.map((e) => ingest.acceptHookEnvironment(e.bytes, 'socket', { seq: e.seq, end: e.end })));
    log.info({ logEvent: 'hook.journal-recovered', entries: left.length, firstEntry: left[0]?.seq, lastEntry: left[left.length - 1]?.seq }, 'hook records left in the hook journal committed to the state file');
  }
  try {
    return { journal: HookJournal.open(opts.file, opts.bytes, state), recovered: left.length };
  } catch (err) {
    if (err instanceof StateError) throw err;
    log.warn({ logEvent: 'hook.journal-off', file: opts.file, code: (err as NodeJS.ErrnoException).code, err: errorMessage(err) }, 'cannot make the hook journal; hooks are answered after the state file commits');
    return undefined;
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
