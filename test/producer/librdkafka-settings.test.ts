// What jobcompd hands to librdkafka from the site's rdkafka.conf: the file's properties,
// plus jobcompd's own defaults only where the file does not set them
// (docs/configuration.md, "JobCompLoc: the librdkafka properties file").

import { parseRdkafkaConf } from '../../src/config/jobcomploc-file';
import { MIN_REFILL } from '../../src/producer/dispatcher';
import { buildProducerSettings, producerConfigs } from '../../src/producer/librdkafka-settings';

function handedOver(text: string): Record<string, unknown> {
  const { global } = producerConfigs(buildProducerSettings(parseRdkafkaConf(`bootstrap.servers=127.0.0.1:9092\n${text}`, 'rdkafka.conf')));
  return global as Record<string, unknown>;
}

test("a file that says nothing about them gets batches of the dispatcher's page and statistics every 10 s", () => {
  const global = handedOver('');
  expect(global['batch.num.messages']).toBe(String(MIN_REFILL));
  expect(global['statistics.interval.ms']).toBe('10000');
  expect(global['linger.ms']).toBeUndefined();
});

test.each([
  ['batch.num.messages=10000', 'batch.num.messages', '10000'],
  ['batch.num.messages=1', 'batch.num.messages', '1'],
  ['statistics.interval.ms=500', 'statistics.interval.ms', '500'],
])("the site's %s wins", (line, key, value) => {
  expect(handedOver(`${line}\n`)[key]).toBe(value);
});
