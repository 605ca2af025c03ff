// node-rdkafka alone: payloads like the drain's produced from memory by the same library and
// librdkafka settings the daemon uses (librdkafka's defaults, and jobcompd's own), with delivery reports
// handed over in batches as the daemon asks for them (src/producer/batched-reports.ts), at most
// `window` undelivered at once and reports served every FAST_POLL_MS, as the dispatcher
// does while draining. No state file, no JavaScript of jobcompd's. The ceiling of a drain
// through node-rdkafka at that window on this machine (docs/benchmarks.md, backlog).

import { Producer, type DeliveryReport, type LibrdKafkaError } from 'node-rdkafka';
import { parseRdkafkaConf } from '../src/config/jobcomploc-file';
import { batchedOpaques, requestBatchedReports } from '../src/producer/batched-reports';
import { FAST_POLL_MS } from '../src/producer/dispatcher';
import { buildProducerSettings, producerConfigs } from '../src/producer/librdkafka-settings';

/**
 * `count` records, record i being ring[i % ring.length]; seconds from the first produce() to
 * the last delivery report, and this process's CPU seconds over the same span.
 */
export async function produceWithNodeRdkafka(
  bootstrapServers: string,
  topic: string,
  ring: Buffer[],
  count: number,
  window: number,
  /** more rdkafka.conf lines (`key=value\n`) */
  rdkafka = '',
): Promise<{ seconds: number; cpuSeconds: number }> {
  // the configuration the daemon builds from an rdkafka.conf naming the broker (and `rdkafka`)
  const { global, topic: topicConf } = producerConfigs(buildProducerSettings(parseRdkafkaConf(`bootstrap.servers=${bootstrapServers}\n${rdkafka}`, 'rdkafka.conf')));
  const producer = new Producer(global, topicConf);
  requestBatchedReports(producer);
  await new Promise<void>((resolve, reject) => producer.connect({}, (err) => (err ? reject(err) : resolve())));
  try {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      let sent = 0;
      let delivered = 0;
      const fill = (): void => {
        // an opaque, as the daemon's row id: the batches carry the opaques of the reports
        for (; sent < count && sent - delivered < window; sent++) producer.produce(topic, null, ring[sent % ring.length] as Buffer, null, null, sent);
      };
      producer.on('delivery-report', (err: LibrdKafkaError | null, report: DeliveryReport) => {
        if (err) {
          reject(new Error(`delivery failed: ${err.message}`));
          return;
        }
        delivered += batchedOpaques(report)?.length ?? 1;
        if (delivered === count) resolve();
        else fill();
      });
      producer.setPollInterval(FAST_POLL_MS);
      fill();
    });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  } finally {
    producer.setPollInterval(0);
    await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
  }
}
