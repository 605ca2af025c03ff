// Backup controllers, jobcompd's side (docs/operations.md "Backup controllers"): each
// controller host has its own jobcompd. The primary's host loses Kafka and dies with
// records undelivered; the backup's jobcompd, which shares nothing with it, publishes what
// the backup controller sends; a copy of the failed host's state directory, replayed on
// another host, delivers the records it held. takeover.test.ts runs two real slurmctld.

import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, runCliAsync, tempDir } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { jobIdsOnTopic } from '../helpers/topic-jobs';
import { freePort, postAll, writeDaemonConfig } from '../helpers/daemon';
import { numberedBodies } from '../helpers/records';

jest.setTimeout(180_000);

const suite = useBroker({ autoCreateTopics: true });
const CLUSTER = 'ha';

test('the failed controller host keeps its undelivered records; the backup publishes its own; a copy of the state replayed elsewhere delivers the rest', async () => {
  // the primary's host cannot reach Kafka (nothing listens on port 1) when it dies
  const primary = await suite.daemon({ clusterName: CLUSTER, bootstrapServers: '127.0.0.1:1' });
  const beforeFailure = numberedBodies(40, 1000);
  await postAll(primary.url, beforeFailure, 4);
  // (not runCli: the daemon, retrying Kafka, must keep being read while the command runs)
  expect(JSON.parse((await runCliAsync(['status', '--json', '-c', primary.configFile])).stdout)).toMatchObject({ backlog: 40 });
  await primary.stop('SIGKILL');

  // the backup controller takes over and sends to the jobcompd beside it
  const backup = await suite.daemon({ clusterName: CLUSTER });
  const afterTakeover = numberedBodies(25, 2000);
  await postAll(backup.url, afterTakeover, 4);
  expect(await jobIdsOnTopic(suite.broker().bootstrapServers, CLUSTER, 25)).toEqual(afterTakeover.map((_b, i) => 2000 + i));

  // the failed host's state directory, copied (e.g. from its disk) and replayed on another host
  const copy = tempDir('jobcompd-failed-host-copy-');
  mkdirSync(join(copy, 'state'));
  cpSync(primary.stateDir, join(copy, 'state'), { recursive: true });
  writeDaemonConfig(copy, await freePort(), await freePort(), { bootstrapServers: suite.broker().bootstrapServers, clusterName: CLUSTER });
  const replay = runCli(['replay', '--json', '--timeout', '60', '-c', join(copy, 'jobcompd.conf')], { timeoutMs: 90_000 });
  expect(replay.code).toBe(0);
  expect(JSON.parse(replay.stdout)).toMatchObject({ delivered: 40, remaining: 0, outcome: 'drained' });

  const everyJob = [...beforeFailure.map((_b, i) => 1000 + i), ...afterTakeover.map((_b, i) => 2000 + i)];
  expect(await jobIdsOnTopic(suite.broker().bootstrapServers, CLUSTER, 65)).toEqual(everyJob);
});
