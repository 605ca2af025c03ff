// The slow case, kept apart but always run: a job killed at its time limit. Slurm checks
// limits every 30 s and limits are whole minutes, so the record arrives 60-90 s after the
// job starts. Both end-record paths run side by side to pay that wait once.

import { consumeAll } from '../../tools/kafka/consume';
import { SlurmCluster } from '../../tools/slurm/cluster';
import { useBroker } from '../helpers/broker-suite';
import { clusterFor, records } from '../helpers/slurm-suite';

jest.setTimeout(300_000);

const suite = useBroker({ autoCreateTopics: true });
const clusters: SlurmCluster[] = [];

afterAll(async () => {
  await Promise.all(clusters.map((c) => c.destroy()));
});

it('a job that hits its time limit is published as TIMEOUT with time_limit 60, through both paths', async () => {
  const runs = await Promise.all(
    (['elasticsearch', 'script'] as const).map(async (path) => {
      const name = `timeout-${path}`;
      const d = await suite.daemon({ clusterName: name });
      const slurm = await SlurmCluster.start(clusterFor(d, path, name));
      clusters.push(slurm);
      const id = await slurm.sbatch(['-J', 'timeout', '--time=1', '-o', '/dev/null', '--wrap', 'sleep 300']);
      const [record] = records(await consumeAll(suite.broker().bootstrapServers, name, { count: 1, timeoutMs: 200_000 }));
      return { id, record };
    }),
  );
  for (const { id, record } of runs) {
    expect(record).toMatchObject({ jobid: id, state: 'TIMEOUT', time_limit: 60, job_name: 'timeout' });
    expect(record?.elapsed).toBeGreaterThanOrEqual(60);
  }
});
