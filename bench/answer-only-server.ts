// A Node.js server that answers every record at once and keeps nothing: no parsing beyond
// the framing, no state file, no Kafka. What any Node.js daemon pays to receive a record
// and answer it on this machine, the floor under jobcompd's own work (docs/benchmarks.md).
// `socket-durable` is the floor under any Node.js daemon that commits before it answers:
// each hook message is written over earlier data in a file of its own and fdatasync'd on
// the event loop before the "A" (the faster of the two ways: in libuv's pool, as jobcompd
// syncs, it measured 0.02-0.05 ms slower at p50, 01:20 UTC 2026-12-06).
// Forked by lib.ts (startAnswerOnlyServer); prints "listening <port or path>" when ready.
//
//   node dist/bench/answer-only-server.js http | socket <socket path> | socket-durable <socket path> <data file>

import { createServer as createHttpServer } from 'node:http';
import { fdatasyncSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { HookMessageFramer } from '../src/sources/hook-framer';
import { Answer, encodeAnswer } from '../src/sources/hook-protocol';

const MAX_MESSAGE_BYTES = 1 << 20;
/** socket-durable: messages are written one after the other over this much of the file, then from its start again */
const FILE_BYTES = 4 << 20;
const [kind, socketPath, dataFile] = process.argv.slice(2);

if (kind === 'http') {
  // what jobcomp/elasticsearch is answered: 201 and a small JSON body
  const body = Buffer.from('{"result":"created"}');
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(201, { 'Content-Type': 'application/json', 'Content-Length': body.length }).end(body));
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`listening ${typeof address === 'object' && address !== null ? address.port : ''}\n`);
  });
} else if ((kind === 'socket' && socketPath !== undefined) || (kind === 'socket-durable' && socketPath !== undefined && dataFile !== undefined)) {
  const keep = dataFile === undefined ? undefined : durableWriter(dataFile);
  const answer = encodeAnswer(Answer.stored, keep ? 'stored' : 'answered, not committed');
  const server = createNetServer({ allowHalfOpen: true }, (socket) => {
    const framer = new HookMessageFramer(MAX_MESSAGE_BYTES);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      const framed = framer.push(chunk);
      if (framed.kind === 'incomplete') return;
      if (framed.kind === 'message') keep?.(framed.environment);
      socket.end(answer);
    });
  });
  server.listen(socketPath, () => process.stdout.write(`listening ${socketPath}\n`));
} else {
  process.stderr.write('usage: answer-only-server http | socket <socket path> | socket-durable <socket path> <data file>\n');
  process.exit(64);
}

/** Writes each message over earlier data in `file` (allocated and synced first) and fdatasyncs it. */
function durableWriter(file: string): (message: Buffer) => void {
  const fd = openSync(file, 'w+');
  writeSync(fd, Buffer.alloc(FILE_BYTES));
  fsyncSync(fd);
  let at = 0;
  return (message) => {
    if (at + message.length > FILE_BYTES) at = 0;
    writeSync(fd, message, 0, message.length, at);
    at += message.length;
    fdatasyncSync(fd);
  };
}
