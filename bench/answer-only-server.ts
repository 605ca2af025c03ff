// A Node.js server that answers every record at once and keeps nothing: no parsing beyond
// the framing, no state file, no Kafka. What any Node.js daemon pays to receive a record
// and answer it on this machine, the floor under jobcompd's own work (docs/benchmarks.md).
// Forked by lib.ts (startAnswerOnlyServer); prints "listening <port or path>" when ready.
//
//   node dist/bench/answer-only-server.js http|socket [socket path]

import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { HookMessageFramer } from '../src/sources/hook-framer';
import { Answer, encodeAnswer } from '../src/sources/hook-protocol';

const MAX_MESSAGE_BYTES = 1 << 20;
const [kind, socketPath] = process.argv.slice(2);

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
} else if (kind === 'socket' && socketPath !== undefined) {
  const answer = encodeAnswer(Answer.stored, 'answered, not committed');
  const server = createNetServer({ allowHalfOpen: true }, (socket) => {
    const framer = new HookMessageFramer(MAX_MESSAGE_BYTES);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      if (framer.push(chunk).kind !== 'incomplete') socket.end(answer);
    });
  });
  server.listen(socketPath, () => process.stdout.write(`listening ${socketPath}\n`));
} else {
  process.stderr.write('usage: answer-only-server http|socket [socket path]\n');
  process.exit(64);
}
