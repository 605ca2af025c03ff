// A RELP client (the Reliable Event Logging Protocol of rsyslog's imrelp), written from the
// protocol's public description (librelp's doc/relp.html): every frame is
//   TXNR SP COMMAND SP DATALEN [SP DATA] LF
// The client opens the session ("open" with its offers), then sends "syslog" commands with
// increasing transaction numbers; the server answers each with "rsp", whose data starts
// with a status code ("200 OK"). A message counts as acknowledged only on a 200 answer to
// its own transaction number. Up to `window` transactions may be outstanding at once.

import { connect, type Socket } from 'node:net';

const MAX_TXNR = 999_999_999;
const OFFERS = 'relp_version=0\nrelp_software=jobcompd-bench\ncommands=syslog';

interface Outstanding {
  resolve(): void;
  reject(err: Error): void;
}

/** One RELP session over TCP. `send` resolves when the server answered 200 for that message. */
export class RelpClient {
  private nextTxnr = 1;
  private readonly outstanding = new Map<number, Outstanding>();
  /** senders waiting for a free slot in the window */
  private readonly waiting: (() => void)[] = [];
  private buffered: Buffer = Buffer.alloc(0);
  private failure: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly window: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('RELP connection closed')));
  }

  /** Connects and opens the session; rejects if the server does not answer the open with 200. */
  static async open(host: string, port: number, window: number): Promise<RelpClient> {
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RelpClient(socket, window);
    await client.transact('open', Buffer.from(OFFERS));
    return client;
  }

  /** The session is over (connection lost, server closed it, or a protocol error): open a new one. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Sends one syslog message; resolves on its 200 answer, rejects on any other answer or a lost connection. */
  async send(message: Buffer): Promise<void> {
    while (this.outstanding.size >= this.window && this.failure === undefined) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    return this.transact('syslog', message);
  }

  /** Ends the session as the protocol asks ("close", its answer), then the connection. */
  async close(): Promise<void> {
    if (this.failure === undefined) await this.transact('close', Buffer.alloc(0)).catch(() => undefined);
    this.socket.destroy();
  }

  private transact(command: string, data: Buffer): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const txnr = this.nextTxnr;
    this.nextTxnr = txnr === MAX_TXNR ? 1 : txnr + 1;
    const header = data.length === 0 ? `${txnr} ${command} 0` : `${txnr} ${command} ${data.length} `;
    return new Promise<void>((resolve, reject) => {
      this.outstanding.set(txnr, { resolve, reject });
      this.socket.write(Buffer.concat([Buffer.from(header, 'latin1'), data, Buffer.from('\n')]));
    });
  }

  private receive(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    for (;;) {
      let frame: ReturnType<typeof parseFrame>;
      try {
        frame = parseFrame(this.buffered);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      if (frame === undefined) return;
      this.buffered = this.buffered.subarray(frame.length);
      this.answer(frame.txnr, frame.command, frame.data);
    }
  }

  private answer(txnr: number, command: string, data: Buffer): void {
    if (command === 'serverclose') {
      this.fail(new Error('RELP server closed the session'));
      return;
    }
    const pending = this.outstanding.get(txnr);
    if (command !== 'rsp' || pending === undefined) {
      this.fail(new Error(`unexpected RELP frame ${txnr} ${command}`));
      return;
    }
    this.outstanding.delete(txnr);
    const status = data.toString('latin1', 0, 3);
    if (status === '200') pending.resolve();
    else pending.reject(new Error(`RELP answer ${data.toString('latin1').split('\n')[0] ?? ''}`));
    this.waiting.shift()?.();
  }

  private fail(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    for (const p of this.outstanding.values()) p.reject(err);
    this.outstanding.clear();
    for (const w of this.waiting.splice(0)) w();
    this.socket.destroy();
  }
}

/** The first complete frame of `buf`, or undefined if it has not all arrived. Throws on a malformed header. */
function parseFrame(buf: Buffer): { txnr: number; command: string; data: Buffer; length: number } | undefined {
  const sp1 = buf.indexOf(0x20);
  const sp2 = sp1 < 0 ? -1 : buf.indexOf(0x20, sp1 + 1);
  if (sp2 < 0) return undefined;
  // DATALEN ends at a space (data follows) or at the trailer (no data)
  let end = sp2 + 1;
  while (end < buf.length && buf[end] !== 0x20 && buf[end] !== 0x0a) end++;
  if (end >= buf.length) return undefined;
  const txnr = Number(buf.toString('latin1', 0, sp1));
  const command = buf.toString('latin1', sp1 + 1, sp2);
  const dataLength = Number(buf.toString('latin1', sp2 + 1, end));
  if (!Number.isInteger(txnr) || !Number.isInteger(dataLength)) throw new Error(`malformed RELP header "${buf.toString('latin1', 0, end)}"`);
  const dataStart = dataLength === 0 ? end : end + 1;
  const trailer = dataStart + dataLength;
  if (trailer >= buf.length) return undefined;
  if (buf[trailer] !== 0x0a) throw new Error('RELP frame without its trailer');
  return { txnr, command, data: buf.subarray(dataStart, trailer), length: trailer + 1 };
}
