// Several clusters, one Kafka: each slurmctld has its own jobcompd (own ClusterName, state
// directory, ports, hook socket and spool) and they share one broker. Each cluster's records
// land on its own default topic, and none on the other's (docs/operations.md, "Several
// clusters, one Kafka").

import { consumeAll, ConsumeTimeoutError } from '../../tools/kafka/consume';
import { useBroker } from '../helpers/broker-suite';
import { postAll, type DaemonProcess } from '../helpers/daemon';
import { jobIdOf, numberedBodies } from '../helpers/records';

jest.setTimeout(120_000);

const suite = useBroker({ autoCreateTopics: true });
const N = 30;

/** The job ids on `topic` once all `want` have arrived, and proof that nothing else is there. */
async function jobIdsOn(topic: string, want: number): Promise<number[]> {
  const bootstrap = suite.broker().bootstrapServers;
  const got = await consumeAll(bootstrap, topic, { count: want, timeoutMs: 60_000 });
  // one more than expected must not arrive: the topic holds exactly the cluster's records
  const extra = await consumeAll(bootstrap, topic, { count: want + 1, timeoutMs: 3_000 }).catch((err: unknown) => {
    if (err instanceof ConsumeTimeoutError) return err.received;
    throw err;
  });
  expect(extra).toHaveLength(want);
  return got.map((m) => jobIdOf(m.value as Buffer)).sort((a, b) => a - b);
}

test("two clusters' daemons publish to their own default topics, with no cross-talk", async () => {
  const daemons: Record<string, DaemonProcess> = {
    alpha: await suite.daemon({ clusterName: 'alpha' }),
    beta: await suite.daemon({ clusterName: 'beta' }),
  };
  expect(new Set(Object.values(daemons).flatMap((d) => [d.dir, d.port, d.adminPort])).size).toBe(6);
  const firstJob = { alpha: 10_000, beta: 20_000 };
  await Promise.all(Object.entries(firstJob).map(([name, first]) => postAll((daemons[name] as DaemonProcess).url, numberedBodies(N, first), 4)));

  const range = (first: number): number[] => Array.from({ length: N }, (_, i) => first + i);
  expect(await jobIdsOn('alpha', N)).toEqual(range(firstJob.alpha));
  expect(await jobIdsOn('beta', N)).toEqual(range(firstJob.beta));
});
