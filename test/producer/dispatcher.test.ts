// The dispatcher in process, with a real broker, real librdkafka and a real state file:
// how many rows it holds at once (MaxInFlight), and what it decides when Kafka refuses a
// record for good (quarantine) or for now (retry). The daemon-level view is
// test/integration/delivery-errors.test.ts.

import { once, type EventEmitter } from 'node:events';
import pino from 'pino';
import { parseRdkafkaConf } from '../../src/config/jobcomploc-file';
import { Outbox } from '../../src/outbox/outbox';
import { Dispatcher } from '../../src/producer/dispatcher';
import { KafkaProducer } from '../../src/producer/kafka-producer';
import { buildProducerSettings } from '../../src/producer/librdkafka-settings';
import { JobEvent } from '../../src/record/job-record';
import { consumeAll, countMessages } from '../../tools/kafka/consume';
import { useBroker } from '../helpers/broker-suite';
import { tempDir } from '../helpers/cli';

jest.setTimeout(180_000);

const suite = useBroker({ autoCreateTopics: true });
const log = pino({ level: 'silent' });
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

interface Rig {
  outbox: Outbox;
  dispatcher: Dispatcher;
  producer: KafkaProducer;
}

async function rig(topic: string, maxInFlight: number, rdkafka = '', pollIntervalMs = 10): Promise<Rig> {
  const outbox = Outbox.open(tempDir());
  const conf = parseRdkafkaConf(`bootstrap.servers=${suite.broker().bootstrapServers}\n${rdkafka}`, 'rdkafka.conf');
  const producer = new KafkaProducer(buildProducerSettings(conf), log, pollIntervalMs);
  const dispatcher = new Dispatcher(outbox, { maxInFlight, retryBackoffMinMs: 100, retryBackoffMaxMs: 500, topicFor: () => topic }, log);
  stops.push(async () => {
    await dispatcher.stop(1000);
    outbox.close();
  });
  dispatcher.attach(producer);
  producer.start();
  if (producer.state !== 'ready') await once(producer, 'ready');
  return { outbox, dispatcher, producer };
}

function append(outbox: Outbox, jobIds: number[], bytes = 100): Promise<unknown> {
  return Promise.all(
    jobIds.map((jobId) => outbox.append({ event: JobEvent.finish, jobId, payload: Buffer.alloc(bytes, 0x61), source: 'http', receivedAt: Date.now() })),
  );
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

/** Wait until `done()` holds: checked first, then at each of these events (whichever comes). */
async function until(done: () => boolean, ...events: [EventEmitter, string][]): Promise<void> {
  while (!done()) {
    const stop = new AbortController();
    try {
      await Promise.race(events.map(([emitter, event]) => once(emitter, event, { signal: stop.signal })));
    } finally {
      stop.abort();
    }
  }
}

const settled = (d: Dispatcher): number => d.counters.delivered + d.counters.quarantined;

test('never holds more than MaxInFlight rows, and delivers every row once the window moves', async () => {
  const { outbox, dispatcher } = await rig('slots', 5);
  let mostClaimed = 0;
  let mostInFlight = 0;
  const sample = (): void => {
    mostClaimed = Math.max(mostClaimed, dispatcher.claimed);
    mostInFlight = Math.max(mostInFlight, dispatcher.inFlightCount);
  };
  dispatcher.on('delivered', sample);
  outbox.on('flushed', sample);
  await append(outbox, range(1, 200));
  await until(() => settled(dispatcher) >= 200, [dispatcher, 'delivered'], [outbox, 'flushed']);
  expect(mostClaimed).toBeLessThanOrEqual(5);
  expect(mostInFlight).toBeLessThanOrEqual(5);
  expect(mostInFlight).toBeGreaterThan(0);
  expect(dispatcher.counters).toMatchObject({ delivered: 200, quarantined: 0 });
  expect(await countMessages(suite.broker().bootstrapServers, 'slots')).toBe(200);
});

// poll_interval is the longest a delivery report waits (docs/configuration.md): once the
// window has been full, the rows still in flight at the end of a backlog must not wait for
// it. librdkafka sends 260 of the 300 rows at once (batch.num.messages) and the last 40
// after linger.ms; those 40 leave the window "not full" (fewer than 50 claimed, the refill
// page being 250). With a poll_interval of an hour they would wait an hour, beyond this
// test's timeout.
test('after a full window, the last rows of a backlog are confirmed without waiting for poll_interval', async () => {
  const { outbox, dispatcher } = await rig('tail', 300, 'batch.num.messages=260\nlinger.ms=1500', 3_600_000);
  await append(outbox, range(1, 300));
  await until(() => dispatcher.counters.delivered === 300, [dispatcher, 'delivered']);
  expect(await countMessages(suite.broker().bootstrapServers, 'tail')).toBe(300);
}, 30_000);

test('a record Kafka will never take is quarantined with the librdkafka error name; the others are delivered', async () => {
  const { outbox, dispatcher } = await rig('refused', 10);
  // one transaction, so one page: 103 (over librdkafka's default message.max.bytes of 1,000,000)
  // is refused at produce time, before any delivery report
  await Promise.all([append(outbox, [101, 102]), append(outbox, [103], 1_100_000)]);
  await until(() => settled(dispatcher) >= 3, [dispatcher, 'delivered'], [outbox, 'flushed']);
  expect(dispatcher.counters).toMatchObject({ delivered: 2, quarantined: 1 });
  if (outbox.quarantineRows().length === 0) await once(outbox, 'flushed');
  expect(outbox.quarantineRows().map((q) => ({ jobId: q.jobId, reasonCode: q.reasonCode }))).toEqual([{ jobId: 103, reasonCode: 'ERR_MSG_SIZE_TOO_LARGE' }]);
});

test('a delivery that times out is retried, never quarantined, and goes out once Kafka is back, with its own bytes', async () => {
  const { outbox, dispatcher } = await rig('retried', 10, 'message.timeout.ms=1000\n');
  // the topic exists, and the client knows it, before Kafka goes away
  await append(outbox, [201]);
  await until(() => settled(dispatcher) >= 1, [dispatcher, 'delivered'], [outbox, 'flushed']);
  await suite.broker().stop();
  // a retry produces the row read again from the state file (the dispatcher keeps no payload)
  const retriedPayloads = [202, 203].map((jobId) => Buffer.from(`{"jobid":${jobId},"retried":true}`));
  try {
    await Promise.all(retriedPayloads.map((payload, i) => outbox.append({ event: JobEvent.finish, jobId: 202 + i, payload, source: 'http', receivedAt: Date.now() })));
    await until(() => dispatcher.counters.retried >= 2, [outbox, 'flushed']);
    expect(dispatcher.counters).toMatchObject({ delivered: 1, quarantined: 0 });
    expect(outbox.recordedErrors().pending).toMatchObject({ error: expect.stringContaining('ERR__MSG_TIMED_OUT') });
  } finally {
    await suite.broker().restart();
  }
  await until(() => dispatcher.counters.delivered >= 3, [dispatcher, 'delivered'], [outbox, 'flushed']);
  expect(dispatcher.counters.quarantined).toBe(0);
  const values = (await consumeAll(suite.broker().bootstrapServers, 'retried', { count: 3, timeoutMs: 30_000 })).map((m) => m.value?.toString('latin1'));
  for (const payload of retriedPayloads) expect(values).toContain(payload.toString('latin1'));
});
