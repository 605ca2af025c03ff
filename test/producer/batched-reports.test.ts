// native/node-rdkafka/batched-delivery-reports.patch, as `make deps` applied it, against a
// real broker: with the switch on, the successful reports of messages without a key come as
// arrays of opaques, each message's exactly once; keyed messages still get a report of
// their own; with the switch off, node-rdkafka reports as released.

import { Producer, type DeliveryReport, type LibrdKafkaError } from 'node-rdkafka';
import { parseRdkafkaConf } from '../../src/config/jobcomploc-file';
import { batchedOpaques, requestBatchedReports } from '../../src/producer/batched-reports';
import { buildProducerSettings, producerConfigs } from '../../src/producer/librdkafka-settings';
import { useBroker } from '../helpers/broker-suite';

jest.setTimeout(120_000);

const suite = useBroker({ autoCreateTopics: true });

interface Reports {
  /** how many times node-rdkafka called the delivery callback */
  calls: number;
  /** the opaques of the reports that came in arrays */
  batched: number[];
  /** the opaques of the reports that came one by one */
  single: number[];
  errors: number;
}

/** Produces `unkeyed` messages without a key (opaques 0...) and `keyed` with one (opaques 100000...); waits for every report. */
async function produce(topic: string, batched: boolean, unkeyed: number, keyed: number): Promise<Reports> {
  const { global, topic: topicConf } = producerConfigs(buildProducerSettings(parseRdkafkaConf(`bootstrap.servers=${suite.broker().bootstrapServers}\n`, 'rdkafka.conf')));
  const producer = new Producer(global, topicConf);
  if (batched) expect(requestBatchedReports(producer)).toBe(true);
  const reports: Reports = { calls: 0, batched: [], single: [], errors: 0 };
  const all = new Promise<void>((resolve) => {
    producer.on('delivery-report', (err: LibrdKafkaError | null, report: DeliveryReport) => {
      reports.calls += 1;
      const opaques = batchedOpaques(report);
      if (err) reports.errors += 1;
      else if (opaques) reports.batched.push(...(opaques as number[]));
      else reports.single.push(report.opaque as number);
      if (reports.batched.length + reports.single.length + reports.errors === unkeyed + keyed) resolve();
    });
  });
  await new Promise<void>((resolve, reject) => producer.connect({ timeout: 10_000 }, (err) => (err ? reject(err) : resolve())));
  producer.setPollInterval(5);
  try {
    for (let i = 0; i < unkeyed; i++) producer.produce(topic, null, Buffer.from(`value ${i}`), null, null, i);
    for (let i = 0; i < keyed; i++) producer.produce(topic, null, Buffer.from(`keyed ${i}`), Buffer.from(`key ${i}`), null, 100_000 + i);
    await all;
  } finally {
    producer.setPollInterval(0);
    await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
  }
  return reports;
}

const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);

test('with the switch on, successful reports come in arrays, each message once; keyed messages one by one', async () => {
  const r = await produce('batched-reports-on', true, 2000, 20);
  expect(r.errors).toBe(0);
  expect([...r.batched].sort((a, b) => a - b)).toEqual(range(0, 2000));
  expect([...r.single].sort((a, b) => a - b)).toEqual(range(100_000, 20));
  // far fewer calls into JavaScript than reports: that is the patch's whole point
  expect(r.calls).toBeLessThan(2020 / 10);
});

test('with the switch off, node-rdkafka reports each message on its own, as released', async () => {
  const r = await produce('batched-reports-off', false, 200, 5);
  expect(r.errors).toBe(0);
  expect(r.batched).toEqual([]);
  expect(r.calls).toBe(205);
  expect([...r.single].sort((a, b) => a - b)).toEqual([...range(0, 200), ...range(100_000, 5)]);
});
