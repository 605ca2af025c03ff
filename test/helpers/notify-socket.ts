// A real AF_UNIX datagram socket playing systemd's side of sd_notify(3): every datagram
// the daemon sends to $NOTIFY_SOCKET, in order. Node has no Unix datagram sockets, so a
// few lines of Python hold it.

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const RECEIVER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps("LISTENING"), flush=True)
while True:
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

export class NotifySocket {
  readonly messages: string[] = [];
  private waiters: { pred: (m: string) => boolean; resolve: (m: string) => void }[] = [];

  private constructor(
    readonly path: string,
    private readonly proc: ChildProcess,
  ) {}

  static async open(dir: string): Promise<NotifySocket> {
    const path = join(dir, 'notify.sock');
    const proc = spawn('python3', ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const socket = new NotifySocket(path, proc);
    const listening = socket.waitFor((m) => m === 'LISTENING');
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => socket.receive(JSON.parse(line) as string));
    await listening;
    return socket;
  }

  private receive(message: string): void {
    if (message !== 'LISTENING') this.messages.push(message);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(message)) return true;
      w.resolve(message);
      return false;
    });
  }

  /** The first message matching, among those received from index `from` on (or future ones). */
  waitFor(pred: (m: string) => boolean, from = 0): Promise<string> {
    const seen = this.messages.slice(from).find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  close(): void {
    this.proc.kill();
  }
}
