// The listener's connections, over real TCP in process: a frame over MaxRequestBytes or a
// request that does not parse closes that connection with a log line (and only that one);
// an API or version it does not serve is answered UNSUPPORTED_VERSION; MaxConnections holds;
// each refusal is counted (docs/kafka-listener.md#refusals).

import { connect, type Socket } from 'node:net';
import { ApiKey, KafkaErrorCode } from '../../src/kafka-protocol/api-keys';
import { frame } from '../../src/kafka-protocol/frame';
import { startMemoryListener, type MemoryListener } from '../helpers/kafka-listener';
import { produceRequest, rawRequest, recordBatch } from '../helpers/kafka-requests';
import { produceWithRdkafka, testMessages } from '../helpers/kafka-producers';

let memory: MemoryListener;
afterEach(async () => {
  await memory.listener.close();
});

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

/** Everything the server sends until it closes the connection. */
function untilClosed(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks))));
}

function firstAnswer(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 4 && got.length >= 4 + got.readInt32BE(0)) resolve(got.subarray(4, 4 + got.readInt32BE(0)));
    });
  });
}

function requestHeader(apiKey: number, apiVersion: number, correlationId: number): Buffer {
  const b = Buffer.alloc(10);
  b.writeInt16BE(apiKey, 0);
  b.writeInt16BE(apiVersion, 2);
  b.writeInt32BE(correlationId, 4);
  b.writeInt16BE(-1, 8); // null client id
  return b;
}

test('a frame over MaxRequestBytes closes its connection before its bytes are read; the listener serves the next client', async () => {
  memory = await startMemoryListener({ maxRequestBytes: 1000 });
  const socket = await open(memory.listener.port);
  const closed = untilClosed(socket);
  const size = Buffer.alloc(4);
  size.writeInt32BE(1001);
  socket.write(size);
  expect((await closed).length).toBe(0);
  expect(memory.logLines).toContainEqual(expect.objectContaining({ logEvent: 'kafka-listener.connection-closed', code: 'E_KAFKA_FRAME_TOO_LARGE' }));
  const outcome = await produceWithRdkafka(memory.bootstrap, 'after', testMessages(3, 'after'));
  expect(outcome.delivered).toBe(3);
});

test('a request that does not parse closes its connection with E_KAFKA_MALFORMED', async () => {
  memory = await startMemoryListener();
  const socket = await open(memory.listener.port);
  const closed = untilClosed(socket);
  // a Produce v3 header whose body ends inside the acks field
  socket.write(frame(Buffer.concat([requestHeader(ApiKey.produce, 3, 1), Buffer.from([0xff, 0xff, 0x00])])));
  await closed;
  expect(memory.logLines).toContainEqual(expect.objectContaining({ logEvent: 'kafka-listener.connection-closed', code: 'E_KAFKA_MALFORMED' }));
  expect(Object.fromEntries(memory.listener.refusals)).toEqual({ E_KAFKA_MALFORMED: 1 });
});

test.each([
  ['an unknown API', 9999, 0],
  ['Fetch, listed but not served', ApiKey.fetch, 4],
  ['Produce v2 (before RecordBatch v2)', ApiKey.produce, 2],
])('%s is answered UNSUPPORTED_VERSION with its correlation id; the connection stays', async (_what, apiKey, apiVersion) => {
  memory = await startMemoryListener();
  const socket = await open(memory.listener.port);
  const answer = firstAnswer(socket);
  socket.write(frame(requestHeader(apiKey, apiVersion, 77)));
  const body = await answer;
  expect({ correlationId: body.readInt32BE(0), errorCode: body.readInt16BE(4) }).toEqual({ correlationId: 77, errorCode: KafkaErrorCode.unsupportedVersion });
  expect(memory.events).toContainEqual({ kind: 'unsupported-request', detail: `${apiKey}v${apiVersion}` });
  expect(Object.fromEntries(memory.listener.refusals)).toEqual({ UNSUPPORTED_VERSION: 1 });
  const again = firstAnswer(socket);
  socket.write(frame(requestHeader(ApiKey.apiVersions, 0, 78)));
  expect((await again).readInt32BE(0)).toBe(78);
  socket.destroy();
});

test('MaxConnections: a connection beyond it is closed at once, logged and counted', async () => {
  memory = await startMemoryListener({ maxConnections: 2 });
  const held = [await open(memory.listener.port), await open(memory.listener.port)];
  const extra = await open(memory.listener.port);
  await untilClosed(extra);
  for (const s of held) expect(s.destroyed).toBe(false);
  expect(memory.logLines).toContainEqual(expect.objectContaining({ logEvent: 'kafka-listener.connection-refused', code: 'E_KAFKA_TOO_MANY_CONNECTIONS' }));
  expect(Object.fromEntries(memory.listener.refusals)).toEqual({ E_KAFKA_TOO_MANY_CONNECTIONS: 1 });
  for (const s of held) s.destroy();
});

test('a hundred requests in one write: at most 16 handled at once, the rest read only as answers leave; all answered in order', async () => {
  let inCommit = 0;
  let mostInCommit = 0;
  const released: (() => void)[] = [];
  let reached16: () => void = () => undefined;
  const sixteen = new Promise<void>((resolve) => (reached16 = resolve));
  memory = await startMemoryListener({}, undefined, async () => {
    inCommit++;
    mostInCommit = Math.max(mostInCommit, inCommit);
    if (inCommit === 16) reached16();
    await new Promise<void>((resolve) => released.push(resolve));
    inCommit--;
  });
  const socket = await open(memory.listener.port);
  const requests = Array.from({ length: 100 }, (_, i) => produceRequest(i, 'pipelined', recordBatch([{ key: null, value: Buffer.from(`{"jobid":${i}}`) }])));
  const answers: number[] = [];
  let got = Buffer.alloc(0);
  const all = new Promise<void>((resolve) => {
    socket.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      while (got.length >= 4 && got.length >= 4 + got.readInt32BE(0)) {
        answers.push(got.readInt32BE(4));
        got = got.subarray(4 + got.readInt32BE(0));
      }
      if (answers.length === requests.length) resolve();
    });
  });
  socket.write(Buffer.concat(requests));
  await sixteen;
  // another client's round trip: the listener has handled the write's bytes it read by now
  const other = await open(memory.listener.port);
  const pong = firstAnswer(other);
  other.write(rawRequest(ApiKey.apiVersions, 0, 7, Buffer.alloc(0)));
  await pong;
  other.destroy();
  expect(mostInCommit).toBe(16);
  while (answers.length < requests.length) {
    for (const release of released.splice(0)) release();
    await new Promise((resolve) => setImmediate(resolve));
  }
  await all;
  expect(mostInCommit).toBe(16);
  expect(answers).toEqual(requests.map((_, i) => i));
  expect(memory.records).toHaveLength(100);
  socket.destroy();
});
