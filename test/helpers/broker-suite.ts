// One real Kafka broker per test file, and jobcompd daemons against it that are killed
// after each test.

import { KafkaBroker, type BrokerOptions } from '../../tools/kafka/broker';
import { startDaemon, type DaemonOptions, type DaemonProcess } from './daemon';

export interface BrokerSuite {
  broker(): KafkaBroker;
  daemon(opts?: Partial<DaemonOptions>): Promise<DaemonProcess>;
}

export function useBroker(opts: BrokerOptions): BrokerSuite {
  let broker: KafkaBroker | undefined;
  const running: DaemonProcess[] = [];
  const get = (): KafkaBroker => {
    if (!broker) throw new Error('the broker is not started yet');
    return broker;
  };

  beforeAll(async () => {
    broker = await KafkaBroker.start(opts);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((d) => d.stop('SIGKILL')));
  });
  afterAll(async () => {
    await broker?.destroy();
  });

  return {
    broker: get,
    async daemon(o = {}) {
      const d = await startDaemon({ bootstrapServers: get().bootstrapServers, ...o });
      running.push(d);
      return d;
    },
  };
}
