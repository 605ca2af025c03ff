// The framer that cuts a hook message out of a socket's chunks, in process: the socket
// tests (test/integration/hook.test.ts, test/hostile/) show the same through the daemon.

import { HookMessageFramer } from '../../src/sources/hook-framer';
import { encodeRequest } from '../../src/sources/hook-protocol';

const environment = Buffer.from('JOBID=7\0JOBSTATE=COMPLETED\0', 'latin1');
const message = encodeRequest(environment);

function pushInChunks(framer: HookMessageFramer, bytes: Buffer, size: number): ReturnType<HookMessageFramer['push']>[] {
  const results = [];
  for (let i = 0; i < bytes.length; i += size) results.push(framer.push(bytes.subarray(i, i + size)));
  return results;
}

test('a message split into chunks of any size is whole only at its last byte', () => {
  for (const size of [1, 3, 8, 9, message.length]) {
    const results = pushInChunks(new HookMessageFramer(1024), message, size);
    expect(results.slice(0, -1).every((r) => r.kind === 'incomplete')).toBe(true);
    expect(results.at(-1)).toEqual({ kind: 'message', environment });
  }
});

test('bytes after the message make it malformed', () => {
  const framed = new HookMessageFramer(1024).push(Buffer.concat([message, Buffer.from('xx')]));
  expect(framed).toMatchObject({ kind: 'malformed', raw: Buffer.concat([message, Buffer.from('xx')]) });
});

test('a bad magic is malformed as soon as the header is complete', () => {
  const framer = new HookMessageFramer(1024);
  expect(framer.push(Buffer.from('GET / HT'))).toMatchObject({ kind: 'malformed', raw: Buffer.from('GET / HT') });
});

test('a length over the limit is too large before the body arrives: nothing of it is kept (the hook spools it whole)', () => {
  const framer = new HookMessageFramer(environment.length - 1);
  expect(framer.push(message.subarray(0, 8))).toEqual({ kind: 'too-large', reason: expect.any(String) });
});

test('bytes after a large message: the whole of it is kept as evidence, not its first 64 KiB', () => {
  const big = encodeRequest(Buffer.alloc(200 * 1024, 0x41));
  const framed = new HookMessageFramer(1024 * 1024).push(Buffer.concat([big, Buffer.from('xx')]));
  expect(framed.kind === 'malformed' ? framed.raw.length : 0).toBe(big.length + 2);
});

test('an end of stream inside a message is a truncated message, kept whole; an empty connection is nothing', () => {
  const framer = new HookMessageFramer(1024);
  framer.push(message.subarray(0, 10));
  expect(framer.end()).toMatchObject({ kind: 'malformed', raw: message.subarray(0, 10) });
  expect(new HookMessageFramer(1024).end()).toBeUndefined();
});
