// The hostile Kafka clients of fuzz-daemon.test.ts (docs/kafka-listener.md#refusals): the
// seeded cases, the raw-TCP client, the judge (what a case must get, and the refusals it
// must add to jobcompd_kafka_listener_refusals_total), connection bursts beyond
// MaxConnections, and the run that interleaves them with the valid requests of idempotent
// producers.

import { connect, type Socket } from 'node:net';
import { ApiKey, KafkaErrorCode, isSupported, kafkaErrorName } from '../../src/kafka-protocol/api-keys';
import { KafkaProtocolCodes } from '../../src/errors';
import {
  correlationIdOf,
  CRC_AT,
  headerErrorCode,
  initProducerIdRequest,
  produceRequest,
  rawRequest,
  readInitProducerIdResponse,
  readProduceResponse,
  recordBatch,
  recordsSection,
  type TestRecord,
} from '../helpers/kafka-requests';
import { Rng } from '../helpers/random';
import { pool, preview } from '../hostile/fuzz-kit';

/** The listener's limits in these runs ([kafka] MaxConnections and MaxRequestBytes). */
export const MAX_CONNECTIONS = 16;
export const MAX_REQUEST_BYTES = 1 << 20;
export const TOPIC = 'fuzz-jobs';
const CONCURRENCY = 8;
/** cases per chunk; the last case of each chunk is a connection burst, run alone */
const CHUNK = 1000;
const VALID_EVERY = 10;
const LANES = 4;
/** valid requests of 5,000 records each (a real huge record count: about what MaxRequestBytes takes of these) */
const HUGE_VALID = new Set([2500, 5000, 7500]);
const HUGE_RECORDS = 5_000;
/**
 * How long a case waits for its answer or close. Generous: a valid request of 10,000 records
 * committed in 0.6 s on an idle machine, but took over 5 s here with the broker, the fuzzer
 * and the daemon (logging every record at debug to the test's pipe) on two cores. The report
 * lists the slowest answers.
 */
const ANSWER_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------
// Cases

export type Expect =
  /** answered with this Kafka error code (the request's, or its one partition's) */
  | { type: 'error'; code: number }
  /** the connection closed by the listener without an answer, counted under this code */
  | { type: 'closed'; code: string }
  /** garbage: an error answer (counted under its name) or the connection closed (E_KAFKA_MALFORMED) */
  | { type: 'answer-or-closed' }
  /** we close mid-frame: nothing answered, nothing committed, nothing counted */
  | { type: 'client-abort' }
  /** a valid Produce request: answered without error, its records upstream once */
  | { type: 'valid'; values: Buffer[] }
  /** several requests in one write: each answered, in order, with its error */
  | { type: 'pipelined'; calls: { correlationId: number; code: number; produceVersion?: number }[] };

export interface Case {
  index: number;
  kind: string;
  correlationId: number;
  /** the Produce version sent, to read the answer */
  version: number;
  writes: Buffer[];
  expect: Expect;
  /** valid cases: the producer lane whose sequence this request continues */
  lane?: number;
}

/** Valid records of case `index`: plugin-like values (a job id) that say which case sent them. */
export function validRecords(seed: number, index: number, n: number, marker = 'ok'): TestRecord[] {
  return Array.from({ length: n }, (_, k) => ({ key: null, value: Buffer.from(`{"jobid":${index},"fuzz":"${seed}-${index}-${k}-${marker}"}`) }));
}

/** A Produce frame of this case's version to TOPIC (or `topic`) with `batch`, damaged or not, as its records. */
function produceWith(c: { correlationId: number; version: number }, batch: Buffer, o: Parameters<typeof produceRequest>[3] = {}, topic = TOPIC): Buffer {
  return produceRequest(c.correlationId, topic, batch, { version: c.version, ...o });
}

const ILLEGAL_TOPICS = ['', '.', '..', 'bad topic', 'slash/topic', 'ümlaut', 'x'.repeat(250), 'nul\u0000'];

export interface LaneState {
  producerId: bigint;
  nextSequence: number;
  chain: Promise<void>;
}

function generate(seed: number, index: number, lanes: LaneState[]): Case {
  const rng = Rng.forCase(seed, index);
  const correlationId = rng.int(0x7fffffff);
  const version = rng.between(3, 11);
  const base = { index, correlationId, version };
  const records = (): TestRecord[] => validRecords(seed, index, rng.between(1, 8), 'bad');

  if (index % VALID_EVERY === 0) {
    const lane = (index / VALID_EVERY) % LANES;
    const state = lanes[lane] as LaneState;
    const n = HUGE_VALID.has(index) ? HUGE_RECORDS : rng.between(1, 20);
    const valid = validRecords(seed, index, n);
    const gzip = rng.chance(0.3);
    const batch = recordBatch(valid, { producerId: state.producerId, producerEpoch: 0, baseSequence: state.nextSequence, gzip });
    state.nextSequence += n;
    const whole = produceWith(base, batch);
    // a third are written in pieces: the listener reassembles frames across reads
    const cuts = rng.chance(0.33) ? Array.from({ length: rng.between(1, 4) }, () => rng.int(whole.length)).sort((a, b) => a - b) : [];
    const writes = [0, ...cuts].map((from, i) => whole.subarray(from, [...cuts, whole.length][i])).filter((w) => w.length > 0);
    return { ...base, kind: `valid${gzip ? '-gzip' : ''}${n === HUGE_RECORDS ? '-huge' : ''}`, writes, expect: { type: 'valid', values: valid.map((r) => r.value as Buffer) }, lane };
  }

  const kind = rng.weighted<string>([
    [6, 'frame-negative'],
    [6, 'frame-too-large'],
    [4, 'frame-short'],
    [8, 'bad-crc'],
    [8, 'bad-varint'],
    [6, 'truncated-records'],
    [6, 'truncated-batch'],
    [6, 'huge-count'],
    [4, 'bad-magic'],
    [3, 'gzip-bomb'],
    [3, 'gzip-bomb-batches'],
    [4, 'unsupported-codec'],
    [3, 'invalid-acks'],
    [3, 'bad-partition'],
    [3, 'bad-topic'],
    [3, 'transactional'],
    [8, 'unknown-api'],
    [6, 'unsupported-version'],
    [8, 'garbage-after-header'],
    [5, 'garbage-frame'],
    [5, 'garbage-records'],
    [8, 'mid-frame-close'],
    [4, 'pipelined'],
  ]);
  const one = (writes: Buffer[], expect: Expect, k = kind): Case => ({ ...base, kind: k, writes, expect });
  const corrupt: Expect = { type: 'error', code: KafkaErrorCode.corruptMessage };
  switch (kind) {
    case 'frame-negative': {
      const size = Buffer.alloc(4);
      size.writeInt32BE(-rng.between(1, 0x7fffffff));
      return one([Buffer.concat([size, rng.bytes(rng.between(0, 64))])], { type: 'closed', code: KafkaProtocolCodes.malformed });
    }
    case 'frame-too-large': {
      const size = Buffer.alloc(4);
      size.writeInt32BE(rng.between(MAX_REQUEST_BYTES + 1, 0x7fffffff));
      return one([Buffer.concat([size, rng.bytes(rng.between(0, 64))])], { type: 'closed', code: KafkaProtocolCodes.frameTooLarge });
    }
    case 'frame-short': {
      // fewer bytes than a request header's api key, version and correlation id
      const body = rng.bytes(rng.between(0, 7));
      const size = Buffer.alloc(4);
      size.writeInt32BE(body.length);
      return one([Buffer.concat([size, body])], { type: 'closed', code: KafkaProtocolCodes.malformed });
    }
    case 'bad-crc': {
      const batch = recordBatch(records(), { gzip: rng.chance(0.3) });
      // a bit flipped in the CRC itself, or in the bytes it covers
      const at = rng.chance(0.5) ? CRC_AT + rng.int(4) : CRC_AT + 4 + rng.int(batch.length - CRC_AT - 4);
      batch[at] = (batch[at] as number) ^ (1 << rng.int(8));
      return one([produceWith(base, batch)], corrupt);
    }
    case 'bad-varint': {
      // the first record's length varint never ends within 32 bits; the CRC is right
      const section = Buffer.concat([Buffer.alloc(rng.between(5, 10), 0xff), recordsSection(records())]);
      return one([produceWith(base, recordBatch(records(), { section }))], corrupt);
    }
    case 'truncated-records': {
      const recs = records();
      const full = recordsSection(recs);
      return one([produceWith(base, recordBatch(recs, { section: full.subarray(0, rng.int(full.length)) }))], corrupt);
    }
    case 'truncated-batch': {
      const batch = recordBatch(records());
      return one([produceWith(base, batch.subarray(0, rng.between(1, batch.length - 1)))], corrupt);
    }
    case 'huge-count': {
      const count = rng.pick([0x7fffffff, 1_000_000_000, 10_000_000, 100_000, -1, -0x80000000, rng.u32() | 0]);
      return one([produceWith(base, recordBatch(records(), { count }))], corrupt);
    }
    case 'bad-magic': {
      const batch = recordBatch(records());
      batch.writeInt8(rng.pick([0, 1, 3, -1, 127]), CRC_AT - 1);
      return one([produceWith(base, batch)], corrupt);
    }
    case 'gzip-bomb': {
      // zeros that decompress to more than MaxRequestBytes (the most one batch may)
      const section = Buffer.alloc(MAX_REQUEST_BYTES + rng.between(1, MAX_REQUEST_BYTES));
      return one([produceWith(base, recordBatch(records(), { section, gzip: true }))], corrupt);
    }
    case 'gzip-bomb-batches': {
      // batches of 7-byte records, each within the limit decompressed, together beyond it
      const n = 8_192;
      const section = Buffer.alloc(n * 7);
      for (let i = 0; i < section.length; i += 7) section.set([0x0c, 0, 0, 0, 0x01, 0, 0], i);
      const batch = recordBatch(Array.from({ length: n }, () => ({ key: null, value: Buffer.alloc(0) })), { section, gzip: true });
      const batches = Math.ceil(MAX_REQUEST_BYTES / section.length) + rng.between(1, 20);
      return one([produceWith(base, Buffer.concat(Array<Buffer>(batches).fill(batch)))], corrupt);
    }
    case 'unsupported-codec': {
      const codec = rng.pick([2, 3, 5, 6, 7]);
      const batch = recordBatch(records(), { attributeFlags: codec });
      // snappy (2) and lz4 (3) are read: plain bytes under their flag do not decode; 5-7 do not exist
      return one([produceWith(base, batch)], codec <= 3 ? corrupt : { type: 'error', code: KafkaErrorCode.unsupportedCompressionType });
    }
    case 'invalid-acks':
      return one([produceWith(base, recordBatch(records()), { acks: rng.pick([2, 3, -2, 100, -32768]) })], { type: 'error', code: KafkaErrorCode.invalidRequiredAcks });
    case 'bad-partition':
      return one([produceWith(base, recordBatch(records()), { partition: rng.pick([1, 2, -1, 99, 0x7fffffff]) })], { type: 'error', code: KafkaErrorCode.unknownTopicOrPartition });
    case 'bad-topic':
      return one([produceWith(base, recordBatch(records()), {}, rng.pick(ILLEGAL_TOPICS))], { type: 'error', code: KafkaErrorCode.invalidTopic });
    case 'transactional':
      return one([produceWith(base, recordBatch(records()), { transactionalId: `tx-${index}` })], { type: 'error', code: KafkaErrorCode.transactionalIdAuthorizationFailed });
    case 'unknown-api': {
      let apiKey = rng.chance(0.5) ? rng.between(-10, 100) : rng.between(-32768, 32767);
      while (supportedAtAll(apiKey)) apiKey = rng.between(1000, 32767);
      return one([rawRequest(apiKey, rng.between(-5, 20), correlationId, rng.bytes(rng.between(0, 100)))], { type: 'error', code: KafkaErrorCode.unsupportedVersion });
    }
    case 'unsupported-version': {
      const [apiKey, versions] = rng.pick<[number, number[]]>([
        [ApiKey.produce, [0, 1, 2, 12, 13, 100, -1]],
        [ApiKey.metadata, [13, 14, 200, -1]],
        [ApiKey.apiVersions, [4, 5, 99]],
        [ApiKey.initProducerId, [5, 6, -1]],
        [ApiKey.fetch, [0, 4, 11, 16]],
        [ApiKey.saslHandshake, [0, 2]],
      ]);
      return one([rawRequest(apiKey, rng.pick(versions), correlationId, rng.bytes(rng.between(0, 100)))], { type: 'error', code: KafkaErrorCode.unsupportedVersion });
    }
    case 'garbage-after-header': {
      const produce = rng.chance(0.8);
      const c = produce ? one([rawRequest(ApiKey.produce, version, correlationId, rng.bytes(rng.between(0, 300)))], { type: 'answer-or-closed' }) : one([rawRequest(ApiKey.initProducerId, 0, correlationId, rng.bytes(rng.between(0, 40)))], { type: 'answer-or-closed' }, 'garbage-after-header-init');
      return c;
    }
    case 'garbage-records':
      // a well-formed request whose records field is random bytes: no batch reads, so CORRUPT_MESSAGE
      return one([produceWith(base, rng.bytes(rng.between(1, 2000)))], corrupt);
    case 'garbage-frame': {
      // any bytes after a valid size, with an API the listener does not serve: answered
      // UNSUPPORTED_VERSION if its client id reads, else closed
      const body = rng.bytes(rng.between(8, 400));
      let apiKey = body.readInt16BE(0);
      while (supportedAtAll(apiKey)) apiKey = rng.between(1000, 32767);
      body.writeInt16BE(apiKey, 0);
      const size = Buffer.alloc(4);
      size.writeInt32BE(body.length);
      return { ...one([Buffer.concat([size, body])], { type: 'answer-or-closed' }), correlationId: body.readInt32BE(4) };
    }
    case 'pipelined': {
      // up to 60 refused requests in one write: more than a connection's 16 at once
      const calls = Array.from({ length: rng.between(2, 60) }, (_, i) =>
        rng.chance(0.5)
          ? { correlationId: i, code: KafkaErrorCode.unsupportedVersion, bytes: rawRequest(rng.between(1000, 32767), 0, i, Buffer.alloc(0)) }
          : { correlationId: i, code: KafkaErrorCode.corruptMessage, produceVersion: version, bytes: produceRequest(i, TOPIC, recordBatch(records(), { count: -1 }), { version }) },
      );
      return one([Buffer.concat(calls.map((call) => call.bytes))], { type: 'pipelined', calls: calls.map(({ bytes: _bytes, ...call }) => call) });
    }
    default: {
      // mid-frame-close: a valid-looking request cut anywhere (even inside its size), then closed
      const whole = produceWith(base, recordBatch(records(), { gzip: rng.chance(0.3) }));
      return one([whole.subarray(0, rng.between(1, whole.length - 1))], { type: 'client-abort' });
    }
  }
}

/** An API the listener serves in some version, or lists (Fetch): not an unknown API. */
function supportedAtAll(apiKey: number): boolean {
  return Array.from({ length: 20 }, (_, v) => isSupported(apiKey, v)).some(Boolean) || apiKey === ApiKey.fetch;
}

// ---------------------------------------------------------------------------
// The client

export interface Exchange {
  /** the first answer frame (without its size) */
  answer?: Buffer;
  /** the answers after the first, when more were awaited */
  more?: Buffer[];
  /** the listener closed the connection before any answer */
  closedByServer: boolean;
  clientTimeout: boolean;
  /** from the connect to the answer, the close or the timeout */
  ms?: number;
  /** bytes that are not a whole answer */
  stray: Buffer;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/**
 * Writes `writes` on a connection (a turn of the event loop apart) and waits for `answers`
 * answer frames, or for the listener to close; `abort`: close ourselves after writing.
 */
function exchange(socket: Socket, writes: Buffer[], abort = false, answers = 1): Promise<Exchange> {
  const started = Date.now();
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    let done = false;
    const onData = (c: Buffer): void => {
      got = Buffer.concat([got, c]);
      const frames: Buffer[] = [];
      for (let at = 0; got.length >= at + 4 && got.length >= at + 4 + got.readInt32BE(at); at += 4 + got.readInt32BE(at)) frames.push(got.subarray(at + 4, at + 4 + got.readInt32BE(at)));
      if (frames.length >= answers) finish({ answer: frames[0], more: frames.slice(1, answers), closedByServer: false, clientTimeout: false });
    };
    const onClose = (): void => finish({ closedByServer: !abort, clientTimeout: false });
    const finish = (x: Omit<Exchange, 'stray'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData).off('close', onClose);
      const used = [x.answer, ...(x.more ?? [])].reduce((n, a) => n + (a === undefined ? 0 : 4 + a.length), 0);
      resolve({ ...x, ms: Date.now() - started, stray: got.subarray(used) });
    };
    const timer = setTimeout(() => finish({ closedByServer: false, clientTimeout: true }), ANSWER_TIMEOUT_MS);
    socket.on('data', onData).on('close', onClose);
    if (socket.listenerCount('error') === 0) socket.on('error', () => undefined); // the close that follows is what counts
    void (async () => {
      for (const [i, w] of writes.entries()) {
        if (i > 0) await new Promise((r) => setImmediate(r));
        if (socket.destroyed) return;
        socket.write(w);
      }
      if (abort) {
        socket.destroy();
        finish({ closedByServer: false, clientTimeout: false });
      }
    })();
  });
}

export async function roundTrip(port: number, writes: Buffer[], abort = false, answers = 1): Promise<Exchange> {
  const socket = await open(port);
  try {
    return await exchange(socket, writes, abort, answers);
  } finally {
    socket.destroy();
  }
}

// ---------------------------------------------------------------------------
// Judging: problems, and the refusals the listener must have counted

export interface Result {
  c: Case;
  x: Exchange;
  problem?: string;
  /** the refusal reasons this case must have added to the metric */
  refusals: string[];
  /** how it ended: the Kafka error name answered, or "closed" */
  outcome: string;
  /** the listener may have counted refusals this case cannot see */
  uncounted?: boolean;
}

/** Cases whose request is not a Produce request the listener serves: their answer is an error right after the header, or InitProducerId's. */
const NOT_PRODUCE = new Set(['unknown-api', 'unsupported-version', 'garbage-frame']);

function errorCodesOf(c: Case, answer: Buffer): number[] {
  if (c.kind === 'garbage-after-header-init') return [readInitProducerIdResponse(answer).errorCode];
  if (NOT_PRODUCE.has(c.kind)) return [headerErrorCode(answer)];
  return readProduceResponse(answer, c.version).partitions.map((p) => p.errorCode);
}

export function judge(c: Case, x: Exchange): Result {
  const r: Result = { c, x, refusals: [], outcome: x.answer ? 'answered' : x.closedByServer ? 'closed' : 'none' };
  const fail = (problem: string): Result => ({ ...r, problem });
  // garbage that happens to read as a Produce request with acks=0 is rightly not answered;
  // what it refused is then unknown to us (`uncounted`)
  if (x.clientTimeout && c.expect.type === 'answer-or-closed') return { ...r, outcome: 'not answered (acks=0?)', uncounted: true };
  if (x.clientTimeout) return fail(`neither answered nor closed within ${ANSWER_TIMEOUT_MS / 1000} s`);
  if (x.stray.length > 0) return fail(`bytes after the answer: ${preview(x.stray)}`);
  const e = c.expect;
  if (e.type === 'client-abort') return { ...r, outcome: 'client closed' };
  if (e.type === 'closed') {
    if (!x.closedByServer || x.answer) return fail(`expected the connection closed without an answer, got ${x.answer ? preview(x.answer) : 'nothing'}`);
    return { ...r, refusals: [e.code] };
  }
  if (x.answer === undefined) {
    if (e.type === 'answer-or-closed') return { ...r, refusals: [KafkaProtocolCodes.malformed] };
    return fail('the connection was closed without an answer');
  }
  if (e.type === 'pipelined') {
    const got = [x.answer, ...(x.more ?? [])];
    const codes = got.map((a, i) => {
      const call = e.calls[i];
      if (call === undefined || correlationIdOf(a) !== call.correlationId) return -1;
      try {
        return call.produceVersion === undefined ? headerErrorCode(a) : (readProduceResponse(a, call.produceVersion).partitions[0]?.errorCode ?? -1);
      } catch {
        return -2; // an answer that does not read
      }
    });
    const want = e.calls.map((call) => call.code);
    if (JSON.stringify(codes) !== JSON.stringify(want)) return fail(`pipelined answers ${JSON.stringify(codes)}, expected ${JSON.stringify(want)} in order`);
    return { ...r, refusals: want.map(kafkaErrorName), outcome: 'all answered in order' };
  }
  if (correlationIdOf(x.answer) !== c.correlationId) return fail(`answered correlation id ${correlationIdOf(x.answer)}, sent ${c.correlationId}`);
  let codes: number[];
  try {
    codes = errorCodesOf(c, x.answer);
  } catch (err) {
    return fail(`an answer that does not read: ${(err as Error).message}: ${preview(x.answer)}`);
  }
  const errors = codes.filter((code) => code !== KafkaErrorCode.none);
  const named = { ...r, refusals: errors.map(kafkaErrorName), outcome: errors.map(kafkaErrorName).join(',') || 'NONE' };
  if (e.type === 'valid') return codes.length === 1 && errors.length === 0 ? named : fail(`a valid request answered ${JSON.stringify(codes)}`);
  if (e.type === 'error') return codes.length === 1 && codes[0] === e.code ? named : fail(`expected ${kafkaErrorName(e.code)}, answered ${codes.map(kafkaErrorName).join(',')}`);
  return named;
}

export function describeCase(c: Case): string {
  return `case #${c.index} (${c.kind}, Produce v${c.version}) sends ${c.writes.map((w) => preview(w)).join(' | then | ')}`;
}

// ---------------------------------------------------------------------------
// A burst of connections up to and beyond MaxConnections (run with nothing else in flight)

const API_VERSIONS_V0 = (correlationId: number): Buffer => rawRequest(ApiKey.apiVersions, 0, correlationId, Buffer.alloc(0));
/** a connection reset before our connect callback ran: refused too */
const REFUSED_EARLY: Exchange = { closedByServer: true, clientTimeout: false, stray: Buffer.alloc(0) };

export interface Burst {
  index: number;
  /** connections the listener closed at once: each counted E_KAFKA_TOO_MANY_CONNECTIONS */
  refused: number;
  problems: string[];
}

async function burst(seed: number, index: number, port: number): Promise<Burst> {
  const rng = Rng.forCase(seed, index);
  const out: Burst = { index, refused: 0, problems: [] };
  const held: Socket[] = [];
  try {
    // up to the limit, one at a time, each proven served. A slot may still be taken for a
    // moment by a connection the cases before just closed: that one is refused and counted.
    while (held.length < MAX_CONNECTIONS && out.refused < 5) {
      const s = await open(port);
      const x = await exchange(s, [API_VERSIONS_V0(held.length)]);
      if (x.answer) held.push(s);
      else if (x.closedByServer) out.refused++;
      else out.problems.push(`burst #${index}: connection ${held.length} neither answered nor closed`);
    }
    if (held.length < MAX_CONNECTIONS) out.problems.push(`burst #${index}: only ${held.length} of MaxConnections=${MAX_CONNECTIONS} connections served`);
    // beyond it, all at once: each closed without an answer
    const extra = rng.between(1, 3 * MAX_CONNECTIONS);
    const beyond = await Promise.all(Array.from({ length: extra }, async (_, i) => roundTrip(port, [API_VERSIONS_V0(1000 + i)]).catch(() => REFUSED_EARLY)));
    for (const x of beyond) {
      if (x.closedByServer && !x.answer) out.refused++;
      else out.problems.push(`burst #${index}: a connection beyond MaxConnections was ${x.answer ? 'answered' : 'left open'}`);
    }
    // the held ones are still served
    for (const [i, s] of held.entries()) {
      const x = await exchange(s, [API_VERSIONS_V0(2000 + i)]);
      if (!x.answer) out.problems.push(`burst #${index}: held connection ${i} no longer served after the burst`);
    }
  } finally {
    for (const s of held) s.destroy();
  }
  // The listener frees a slot when it sees the close, a moment after ours: the next cases
  // start once CONCURRENCY connections at a time are served again (a refused one counted).
  for (let attempt = 0; ; attempt++) {
    const probes = await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => roundTrip(port, [API_VERSIONS_V0(3000 + i)]).catch(() => REFUSED_EARLY)));
    const refused = probes.filter((x) => x.closedByServer && !x.answer).length;
    out.refused += refused;
    if (refused === 0) break;
    if (attempt === 20) {
      out.problems.push(`burst #${index}: connections still refused after the burst's were closed`);
      break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------


async function initProducer(port: number, correlationId: number): Promise<bigint> {
  const x = await roundTrip(port, [initProducerIdRequest(correlationId)]);
  if (!x.answer) throw new Error('InitProducerId not answered');
  const answer = readInitProducerIdResponse(x.answer);
  if (answer.errorCode !== KafkaErrorCode.none) throw new Error(`InitProducerId answered ${kafkaErrorName(answer.errorCode)}`);
  return answer.producerId;
}

export interface HostileRun {
  results: Result[];
  bursts: Burst[];
}

/**
 * `cases` cases against the listener on `port`, CONCURRENCY at a time, a burst closing
 * each chunk. `send` runs one exchange (the daemon's test wraps it in its Supervisor), or
 * says why it could not; `afterChunk` is called after each chunk of CHUNK cases.
 */
export async function runHostileCases(
  seed: number,
  cases: number,
  port: number,
  send: (index: number, exchange: () => Promise<Exchange>, closeExpected: boolean) => Promise<Exchange | string>,
  afterChunk: () => void = () => undefined,
): Promise<HostileRun> {
  const lanes: LaneState[] = [];
  for (let l = 0; l < LANES; l++) lanes.push({ producerId: await initProducer(port, l), nextSequence: 0, chain: Promise.resolve() });
  const results: Result[] = [];
  const bursts: Burst[] = [];
  const runCase = async (index: number): Promise<void> => {
    const c = generate(seed, index, lanes);
    const once = async (): Promise<void> => {
      const closeExpected = c.expect.type === 'closed' || c.expect.type === 'answer-or-closed' || c.expect.type === 'client-abort';
      const answers = c.expect.type === 'pipelined' ? c.expect.calls.length : 1;
      const x = await send(index, () => roundTrip(port, c.writes, c.expect.type === 'client-abort', answers), closeExpected);
      if (typeof x === 'string') results.push({ c, x: { closedByServer: false, clientTimeout: false, stray: Buffer.alloc(0) }, refusals: [], outcome: 'error', problem: x });
      else results.push(judge(c, x));
    };
    if (c.lane === undefined) return once();
    // a lane's requests leave in sequence order, each after the previous one's answer
    const lane = lanes[c.lane] as LaneState;
    const mine = lane.chain.then(once);
    lane.chain = mine;
    return mine;
  };
  for (let from = 0; from < cases; from += CHUNK) {
    const size = Math.min(CHUNK, cases - from);
    const burstHere = size === CHUNK && (from + CHUNK - 1) % VALID_EVERY !== 0;
    await pool(burstHere ? size - 1 : size, CONCURRENCY, (k) => runCase(from + k));
    if (burstHere) bursts.push(await burst(seed, from + CHUNK - 1, port));
    afterChunk();
  }
  return { results, bursts };
}

/** The refusals the listener must have counted, by reason; `exact` false when a case could not see its own. */
export function expectedRefusals(run: HostileRun): { counts: Map<string, number>; exact: boolean } {
  const counts = new Map<string, number>();
  for (const reason of [...run.results.flatMap((r) => r.refusals), ...run.bursts.flatMap((b) => Array<string>(b.refused).fill(KafkaProtocolCodes.tooManyConnections))]) {
    counts.set(reason, (counts.get(reason) ?? 0) + 1);
  }
  return { counts, exact: !run.results.some((r) => r.uncounted === true) };
}

/** Whether the counted refusals are the expected ones (at least them, when not exact). */
export function refusalsMatch(counted: ReadonlyMap<string, number>, expected: { counts: Map<string, number>; exact: boolean }): boolean {
  const sorted = (m: ReadonlyMap<string, number>): string => JSON.stringify([...m].sort(([a], [b]) => a.localeCompare(b)));
  return expected.exact ? sorted(counted) === sorted(expected.counts) : [...expected.counts].every(([reason, n]) => (counted.get(reason) ?? 0) >= n);
}

/** The slowest answers of the run: kind, case and milliseconds. */
export function slowest(run: HostileRun, n = 5): string[] {
  return [...run.results]
    .sort((a, b) => (b.x.ms ?? 0) - (a.x.ms ?? 0))
    .slice(0, n)
    .map((r) => `#${r.c.index} ${r.c.kind}: ${r.x.ms ?? '?'} ms`);
}

/** Problems of the run's cases and bursts, described. */
export function caseProblems(run: HostileRun): string[] {
  return [...run.results.filter((r) => r.problem !== undefined).map((r) => `${describeCase(r.c)}: ${r.problem ?? ''}`), ...run.bursts.flatMap((b) => b.problems)];
}

/** The values of the valid records the listener acknowledged. */
export function acknowledgedValues(run: HostileRun): Buffer[] {
  return run.results.flatMap((r) => (r.c.expect.type === 'valid' && r.problem === undefined ? r.c.expect.values : []));
}
