// End to end against a real Slurm 22.05 slurmctld (Debian's packages), jobcompd and a real
// Kafka broker: the standard job mix through each input path, and the records that come
// out of Kafka.

import { consumeAll } from '../../tools/kafka/consume';
import { SlurmCluster } from '../../tools/slurm/cluster';
import { useBroker } from '../helpers/broker-suite';
import { byJobName, clusterFor, records, submitJobMix, type EndPath, type JobMix, type Rec } from '../helpers/slurm-suite';

jest.setTimeout(240_000);

const suite = useBroker({ autoCreateTopics: true });
const clusters: SlurmCluster[] = [];

afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.destroy()));
});

const UTC_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/;

function expectEndRecords(ends: Rec[], jobs: JobMix, path: EndPath): void {
  const [ok] = byJobName(ends, 'ok');
  expect(ok).toMatchObject({ jobid: jobs.ok, state: 'COMPLETED', exit_code: '0:0', derived_ec: '0:0', partition: 'debug', nodes: 'localhost', total_cpus: 1, total_nodes: 1, container: null, failed_node: null });
  expect(ok?.['@start']).toMatch(UTC_TIME);
  expect(ok?.['@end']).toMatch(UTC_TIME);
  expect(ok?.elapsed).toBeGreaterThanOrEqual(1);
  expect(ok).not.toHaveProperty('script');

  expect(byJobName(ends, 'fail')[0]).toMatchObject({ jobid: jobs.fail, state: 'FAILED', exit_code: '3:0' });

  const pending = byJobName(ends, 'cancel_pending')[0];
  expect(pending).toMatchObject({ jobid: jobs.cancelPending, state: 'CANCELLED', nodes: null, total_cpus: 0, elapsed: 0, cpu_hours: 0 });

  expect(byJobName(ends, 'cancel_running')[0]).toMatchObject({ jobid: jobs.cancelRunning, state: 'CANCELLED', nodes: 'localhost', total_cpus: 1 });

  const tasks = byJobName(ends, 'arr');
  expect(tasks.map((t) => t.array_task_id).sort()).toEqual([1, 2, 3]);
  for (const t of tasks) expect(t).toMatchObject({ array_job_id: jobs.array, state: 'COMPLETED', std_out: expect.stringMatching(/arr-%A_%a\.out$/) });

  if (path === 'elasticsearch') {
    // only the elasticsearch body carries these
    expect(ok).toMatchObject({ alloc_node: 'localhost', ntasks: 0, cpus_per_task: 1, tres_req_raw: expect.stringMatching(/^1=1,2=\d+,4=1,5=1$/) });
  } else {
    expect(ok).toMatchObject({ alloc_node: null });
  }
}

function expectStartRecords(starts: Rec[], jobs: JobMix): void {
  expect(starts.map((r) => r.jobid)).not.toContain(jobs.cancelPending); // never started, no prolog
  for (const name of ['ok', 'fail', 'cancel_running']) {
    const [r] = byJobName(starts, name);
    expect(r).toMatchObject({ state: null, partition: 'debug', nodes: 'localhost', total_cpus: 1, het_job_id: 0 });
    expect(r?.['@start']).toMatch(UTC_TIME);
    expect(r).not.toHaveProperty('@end');
    expect(r).not.toHaveProperty('exit_code');
  }
  expect(byJobName(starts, 'arr').map((r) => r.array_task_id).sort()).toEqual([1, 2, 3]);
}

describe.each(['elasticsearch', 'script'] as const)('end records through %s, start records through the prolog hook', (path) => {
  it('publishes the job mix with the right fields, values and topics', async () => {
    const cluster = `e2e-${path}`;
    const d = await suite.daemon({ clusterName: cluster, params: 'enable_job_start,poll_interval=0.05' });
    const slurm = await SlurmCluster.start(clusterFor(d, path, cluster));
    clusters.push(slurm);
    const jobs = await submitJobMix(slurm);
    const bootstrap = suite.broker().bootstrapServers;
    const ends = records(await consumeAll(bootstrap, cluster, { count: jobs.endCount, timeoutMs: 120_000 }));
    const starts = records(await consumeAll(bootstrap, `${cluster}-job-start`, { count: jobs.startCount, timeoutMs: 60_000 }));
    expect(ends).toHaveLength(jobs.endCount);
    expect(starts).toHaveLength(jobs.startCount);
    expectEndRecords(ends, jobs, path);
    expectStartRecords(starts, jobs);
    // the prolog runs as the job starts: its @start is the job's start time, give or take a second
    const [startOk] = byJobName(starts, 'ok');
    const [endOk] = byJobName(ends, 'ok');
    const seconds = (r: Rec | undefined): number => Date.parse(`${String(r?.['@start'])}Z`) / 1000;
    expect(Math.abs(seconds(startOk) - seconds(endOk))).toBeLessThanOrEqual(1);
  });
});
