// A seeded fuzzer of the listener's request handling, in process (the daemon-level view is
// daemon.test.ts): golden frames from real clients, damaged (flipped, cut, lengthened,
// sizes and counts rewritten), and random API keys and versions. Every case must end in an
// answer or a KafkaProtocolError (the connection would close), never another exception;
// every record committed is one a client really sent (the CRC-32C covers the records; a
// topic name has no checksum in Kafka either), and the undamaged frames in between still commit.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KafkaProtocolError } from '../../src/errors';
import { ProducerState } from '../../src/kafka-protocol/producer-state';
import { answerRequest, type KafkaSessionContext, type ProducedRecord } from '../../src/sources/kafka-session';
import { Rng } from '../helpers/random';
import { fuzzCases, fuzzSeed, tally } from '../hostile/fuzz-kit';

const FIXTURES = join(__dirname, '..', 'fixtures', 'kafka-protocol');
const GOLDEN = readdirSync(FIXTURES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) => readdirSync(join(FIXTURES, d.name)).map((f) => readFileSync(join(FIXTURES, d.name, f))));
const PRODUCE = GOLDEN.filter((f) => f.readInt16BE(0) === 0);

function context(committed: ProducedRecord[]): KafkaSessionContext {
  const ignore = (): void => undefined;
  return {
    broker: { nodeId: 0, host: '127.0.0.1', port: 9292 },
    clusterId: 'fuzz',
    maxRecordsBytes: 1024 * 1024,
    producers: new ProducerState(),
    offsets: new Map(),
    commit: async (records) => {
      committed.push(...records);
    },
    events: { unsupportedCompression: ignore, refusedBatch: ignore, unsupportedRequest: ignore, authenticationFailed: ignore, refused: ignore },
  };
}

function damage(rng: Rng, frame: Buffer): { label: string; bytes: Buffer } {
  const bytes = Buffer.from(frame);
  const kind = rng.pick(['flip', 'cut', 'extend', 'int32', 'varint', 'api', 'random'] as const);
  switch (kind) {
    case 'flip':
      for (let i = rng.between(1, 4); i > 0; i--) {
        const at = rng.int(bytes.length);
        bytes[at] = (bytes[at] as number) ^ (1 << rng.int(8));
      }
      return { label: kind, bytes };
    case 'cut':
      return { label: kind, bytes: bytes.subarray(0, rng.int(bytes.length)) };
    case 'extend':
      return { label: kind, bytes: Buffer.concat([bytes, rng.bytes(rng.between(1, 64))]) };
    case 'int32': {
      const at = rng.int(Math.max(1, bytes.length - 4));
      if (bytes.length >= 4) bytes.writeInt32BE(rng.pick([-1, -2, 0, 1, 0x7fffffff, -0x80000000, rng.u32() | 0]), at);
      return { label: kind, bytes };
    }
    case 'varint': {
      const at = rng.int(bytes.length);
      for (let i = at; i < Math.min(bytes.length, at + rng.between(1, 10)); i++) bytes[i] = 0xff;
      return { label: kind, bytes };
    }
    case 'api':
      if (bytes.length >= 4) {
        bytes.writeInt16BE(rng.between(-2, 80), 0);
        bytes.writeInt16BE(rng.between(-2, 20), 2);
      }
      return { label: kind, bytes };
    default:
      return { label: kind, bytes: rng.bytes(rng.between(0, 200)) };
  }
}

test('damaged and random requests: an answer or a protocol error, never a crash; valid produce requests in between still commit', async () => {
  const seed = fuzzSeed('kafka-listener/fuzz', 0x6b61666b);
  const cases = fuzzCases(10_000);
  const outcomes: string[] = [];
  let validCommitted = 0;
  const sentValues = new Set<string>();
  for (const frame of PRODUCE) {
    const committed: ProducedRecord[] = [];
    await answerRequest(frame, context(committed));
    for (const r of committed) sentValues.add(r.value?.toString('hex') ?? 'null');
  }
  expect(sentValues.size).toBeGreaterThan(0);
  for (let i = 0; i < cases; i++) {
    const rng = Rng.forCase(seed, i);
    const committed: ProducedRecord[] = [];
    const ctx = context(committed);
    const { label, bytes } = damage(rng, rng.pick(GOLDEN));
    try {
      await answerRequest(bytes, ctx);
      outcomes.push(`${label}: answered`);
      for (const r of committed) expect(sentValues.has(r.value?.toString('hex') ?? 'null')).toBe(true);
    } catch (err) {
      if (!(err instanceof KafkaProtocolError)) throw new Error(`case ${i} (FUZZ_SEED=${seed}): ${label}: ${String(err)} for ${bytes.toString('hex').slice(0, 200)}`);
      outcomes.push(`${label}: ${err.code}`);
    }
    if (i % 100 === 0) {
      const valid = rng.pick(PRODUCE);
      const before = committed.length;
      await answerRequest(valid, ctx);
      expect(committed.length).toBeGreaterThan(before);
      validCommitted++;
    }
  }
  console.log(`kafka-listener/fuzz: ${cases} cases`, tally(outcomes));
  expect(validCommitted).toBe(Math.ceil(cases / 100));
});
