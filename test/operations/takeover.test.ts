// Backup controllers for real (docs/operations.md "Backup controllers"): a primary and a
// backup slurmctld (Debian's 22.05), each in its own UTS and mount namespace with its own
// host name (tools/slurm/controllers.ts), each sending jobcomp/elasticsearch records to the
// jobcompd beside it ("jobcompd-local" resolves to a different address in each namespace).
// The primary's host cannot reach Kafka, holds records, and dies (kill -9 of slurmctld and
// of its jobcompd) while jobs are running; the backup takes over, and the jobs that end
// under it reach Kafka through the backup's jobcompd alone. When the failed host's jobcompd
// returns it delivers what it held. Every job's end record is on the topic once.

import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SlurmCluster } from '../../tools/slurm/cluster';
import { useBroker } from '../helpers/broker-suite';
import { jobIdsOnTopic } from '../helpers/topic-jobs';
import { freePort } from '../helpers/daemon';

jest.setTimeout(300_000);

const suite = useBroker({ autoCreateTopics: true });
const CLUSTER = 'takeover';
const [PRIMARY_HOST, BACKUP_HOST] = ['127.0.0.2', '127.0.0.3'];
const JOB_TIMEOUT_MS = 60_000;
let slurm: SlurmCluster | undefined;

afterEach(async () => {
  await slurm?.destroy();
});

/** Resolves once slurmctld has written its job state after `since` (it saves within 5 s of a change). */
async function jobStateSavedAfter(stateDir: string, since: number): Promise<void> {
  const file = join(stateDir, 'job_state');
  const deadline = Date.now() + 30_000;
  while (statSync(file).mtimeMs <= since) {
    if (Date.now() > deadline) throw new Error(`${file} not written within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 100)); // no event tells: poll its mtime
  }
}

test('the backup controller takes over with jobs running; the records of both hosts reach Kafka once', async () => {
  const port = await freePort();
  // the primary's host cannot reach Kafka (nothing listens on port 1)
  const beside = await suite.daemon({ clusterName: CLUSTER, bootstrapServers: '127.0.0.1:1', httpHost: PRIMARY_HOST, port });
  const besideBackup = await suite.daemon({ clusterName: CLUSTER, httpHost: BACKUP_HOST, port });
  slurm = await SlurmCluster.start({
    clusterName: CLUSTER,
    nodeCpus: 8,
    jobCompType: 'jobcomp/elasticsearch',
    jobCompLoc: `http://jobcompd-local:${port}/slurm/_doc`,
    controllers: [
      { name: 'ctl1', address: PRIMARY_HOST, hosts: { 'jobcompd-local': PRIMARY_HOST } },
      { name: 'ctl2', address: BACKUP_HOST, hosts: { 'jobcompd-local': BACKUP_HOST } },
    ],
  });
  const cluster = slurm;
  const sbatch = (script: string): Promise<number> => cluster.sbatch(['-o', '/dev/null', '--wrap', script]);

  // under the primary: these end, and wait in its jobcompd's state file
  const before = [await sbatch('true'), await sbatch('exit 3'), await sbatch('true')];
  for (const id of before) await cluster.waitForJobState(id, ['COMPLETED', 'FAILED'], JOB_TIMEOUT_MS);
  const committed = (): number => beside.logs.filter((l) => l.logEvent === 'record.committed').length;
  await beside.waitForLog(() => committed() >= before.length, 'the primary host records committed');

  // in flight: running across the takeover, they end when the test says so
  const go = join(cluster.dir, 'go');
  const inFlight = [await sbatch(`while [ ! -e ${go} ]; do sleep 0.2; done`), await sbatch(`while [ ! -e ${go} ]; do sleep 0.2; done; exit 7`)];
  for (const id of inFlight) await cluster.waitForJobState(id, ['RUNNING'], JOB_TIMEOUT_MS);
  await jobStateSavedAfter(join(cluster.dir, 'state'), Date.now());

  // the primary's host dies: its slurmctld and its jobcompd
  await beside.stop('SIGKILL');
  await cluster.failOver();
  writeFileSync(go, '');
  for (const id of inFlight) await cluster.waitForJobState(id, ['COMPLETED', 'FAILED'], JOB_TIMEOUT_MS);
  const after = [await sbatch('true')];
  await cluster.waitForJobState(after[0] as number, ['COMPLETED'], JOB_TIMEOUT_MS);

  // nothing on the backup depended on the primary
  expect(await jobIdsOnTopic(suite.broker().bootstrapServers, CLUSTER, inFlight.length + after.length, 120_000)).toEqual([...inFlight, ...after].sort((a, b) => a - b));
  expect(besideBackup.logs.filter((l) => l.logEvent === 'record.committed').map((l) => l.jobId)).toEqual(expect.arrayContaining([...inFlight, ...after]));

  // the failed host returns, now with Kafka: what it held is delivered
  await suite.daemon({ clusterName: CLUSTER, dir: beside.dir, port, httpHost: PRIMARY_HOST, adminPort: beside.adminPort });
  expect(await jobIdsOnTopic(suite.broker().bootstrapServers, CLUSTER, before.length + inFlight.length + after.length, 120_000)).toEqual([...before, ...inFlight, ...after].sort((a, b) => a - b));
});
