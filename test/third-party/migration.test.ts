// Issue 12, item 4: migrating from the real plugin. The broker is unreachable while jobs end
// under jobcomp/kafka; slurmctld shuts down cleanly and writes jobcomp_kafka_state. Then
// `jobcompd replay --from-slurm-state` of that real file publishes exactly those records, byte
// for byte: the same bytes the plugin itself sends when it starts again with the broker back.

import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KafkaBroker } from '../../tools/kafka/broker';
import { reserveLoopbackPorts } from '../../tools/harness-common';
import { SlurmCluster } from '../../tools/slurm/cluster';
import { runCliAsync, tempDir } from '../helpers/cli';
import { freePort, writeDaemonConfig } from '../helpers/daemon';
import { consumeAll } from '../../tools/kafka/consume';
import { parsePayload, splitAfterObject } from '../helpers/payload';
import { matchKey, writeGeneratedBlock } from './helpers/evidence';
import { selectedReleases, useRelease } from './helpers/releases';
import { CLUSTER_NAME, clusterBaseDir } from './helpers/runs';

jest.setTimeout(300_000);

let broker: KafkaBroker | undefined;
beforeAll(async () => {
  broker = await KafkaBroker.start({ autoCreateTopics: true });
});
afterAll(async () => {
  await broker?.destroy();
});

const JOBS: [string, string[]][] = [
  ['ok', ['--wrap', 'true']],
  ['fail', ['--wrap', 'exit 3']],
  ['odd "name" \\ / ü', ['--wrap', 'true']],
  ['arr', ['--array=1-2', '--wrap', 'true']],
];
const RECORDS = 5;

describe.each(selectedReleases())('Slurm $version built from source', (release) => {
  const { installation } = useRelease(release);

  it("jobcompd replays the plugin's jobcomp_kafka_state byte for byte as the plugin resends it", async () => {
    const bootstrapServers = (broker as KafkaBroker).bootstrapServers;
    const dir = clusterBaseDir(`jobcompd-conf-migrate-${release.format}-`);
    const slurmDir = join(dir, 'slurm');
    // Nothing listens on this port: the broker is "stopped" for the plugin.
    const [deadPort] = await reserveLoopbackPorts(1);
    const tag = `${release.format.replace('.', '')}-migrate-${Date.now()}`;
    const topic = `plugin-${tag}`;
    const rdkafka = (servers: string): string => {
      const file = join(dir, `rdkafka-${servers.replace(/[^0-9]/g, '')}.conf`);
      writeFileSync(file, `bootstrap.servers=${servers}\n`);
      return file;
    };
    const common = { dir: slurmDir, clusterName: CLUSTER_NAME, installation: installation(), jobCompType: 'jobcomp/kafka' as const, jobCompParams: `topic=${topic},topic_job_start=${topic}-start`, nodeCpus: 8 };

    const down = await SlurmCluster.start({ ...common, jobCompLoc: rdkafka(`127.0.0.1:${String(deadPort)}`) });
    try {
      const ids: number[] = [];
      for (const [name, args] of JOBS) ids.push(await down.sbatch(['-J', name, '-t', '5', '-o', '/dev/null', ...args]));
      for (const id of ids) await down.waitForJobState(id, ['COMPLETED', 'FAILED'], 60_000);
    } finally {
      await down.stop();
    }
    const saved = join(dir, 'jobcomp_kafka_state');
    copyFileSync(join(slurmDir, 'state', 'jobcomp_kafka_state'), saved);

    // jobcompd: import the real file and publish.
    const jobcompdDir = tempDir('jobcompd-conf-replay-');
    writeDaemonConfig(jobcompdDir, await freePort(), await freePort(), { bootstrapServers, clusterName: CLUSTER_NAME, params: `topic=jobcompd-${tag}`, extraConf: `RecordFormat=${release.format}` });
    const replay = await runCliAsync(['replay', '-c', join(jobcompdDir, 'jobcompd.conf'), '--from-slurm-state', saved, '--json', '--timeout', '60'], { timeoutMs: 90_000 });
    expect({ code: replay.code, stderr: replay.stderr }).toMatchObject({ code: 0 });
    expect(JSON.parse(replay.stdout)).toMatchObject({ imported: { stored: RECORDS, quarantined: 0 }, delivered: RECORDS, remaining: 0 });

    // The plugin: the same file, loaded at its next start with the broker reachable.
    const up = await SlurmCluster.start({ ...common, jobCompLoc: rdkafka(bootstrapServers) });
    let resent;
    try {
      resent = await consumeAll(bootstrapServers, topic, { count: RECORDS, timeoutMs: 60_000 });
    } finally {
      await up.stop();
    }
    const ours = await consumeAll(bootstrapServers, `jobcompd-${tag}`, { count: RECORDS, timeoutMs: 30_000 });
    const byJob = (messages: typeof ours): Map<string, Buffer> =>
      new Map(messages.map((m) => {
        const bytes = m.value ?? Buffer.alloc(0);
        const { object } = splitAfterObject(bytes);
        return [matchKey(parsePayload(object)), bytes];
      }));
    const [theirs, mine] = [byJob(resent), byJob(ours)];
    expect(mine.size).toBe(RECORDS);
    expect(theirs.size).toBe(RECORDS);
    // Bytes after a record's JSON object: the plugin saved them in its own file (24.11, see
    // docs/migration.md); jobcompd publishes what the file holds, as the plugin resends it.
    const trailing = [...theirs].filter(([, b]) => splitAfterObject(b).after.length > 0).map(([k, b]) => `${k}: ${splitAfterObject(b).after.toString('hex')}`);
    writeGeneratedBlock('migration.md', `state-file-${release.format}`, `Slurm ${release.version}: ${RECORDS} records in the plugin's jobcomp_kafka_state; jobcompd's replay equals the plugin's own resend byte for byte for ${[...mine].filter(([k, b]) => theirs.get(k)?.equals(b) === true).length} of them. Records the plugin saved with bytes after the JSON object: ${trailing.length === 0 ? 'none' : trailing.join('; ')}.`);
    for (const [key, bytes] of mine) expect({ key, bytes: bytes.toString('latin1') }).toEqual({ key, bytes: theirs.get(key)?.toString('latin1') });
  });
});
