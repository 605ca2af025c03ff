// Issue 13, test 2: for each Slurm release built from source, the real jobcomp/kafka plugin
// produces to jobcompd's Kafka listener (its JobCompLoc file names the listener; jobcompd's
// own rdkafka.conf names the real broker), with enable_job_start where the release has it.
// Every start and end record the plugin produced arrives upstream byte for byte, on the
// plugin's topics, with the same key and headers.
//
// The evidence is what the plugin sent to the listener, read off the wire by a relay in front
// of it (helpers/capture.ts ProduceRelay, which startRun puts there for the listener path; each
// batch's CRC-32C, the plugin's librdkafka's, is verified), compared with what a consumer
// reads from the real broker. Unlike a second run with the plugin producing straight to the
// broker, nothing (job ids, times) needs normalising.

import { KafkaBroker } from '../../tools/kafka/broker';
import { consumeAll } from '../../tools/kafka/consume';
import { tempDir } from '../helpers/cli';
import { parsePayload } from '../helpers/payload';
import { arrivedBytes, sentBytes, sortedBytes, type ProduceRelay } from './helpers/capture';
import { ODD_NAME, prepareWorkDir } from './helpers/job-suite';
import { selectedReleases, useRelease } from './helpers/releases';
import { startRun } from './helpers/runs';

jest.setTimeout(180_000);
const RECORDS_TIMEOUT_MS = 60_000;

let broker: KafkaBroker | undefined;
beforeAll(async () => {
  broker = await KafkaBroker.start({ autoCreateTopics: true });
});
afterAll(async () => {
  await broker?.destroy();
});

describe.each(selectedReleases())('Slurm $version built from source', (release) => {
  const { installation, runs } = useRelease(release);

  it('every record the real jobcomp/kafka produces to the listener arrives upstream byte for byte', async () => {
    const b = broker as KafkaBroker;
    const run = await startRun({ release, installation: installation(), bootstrapServers: b.bootstrapServers, path: 'listener' });
    runs.push(run);
    const relay = run.produceRelay as ProduceRelay;

    const workDir = prepareWorkDir(tempDir('jobcompd-listener-wd-'));
    const common = ['-D', workDir, '-t', '5', '-o', '/dev/null'];
    await run.slurm.sbatch(['-J', 'ok', ...common, '--wrap', 'true']);
    await run.slurm.sbatch(['-J', 'fail', ...common, '--wrap', 'exit 3']);
    await run.slurm.sbatch(['-J', ODD_NAME, ...common, '--comment', 'a "comment" \\ / ü', '--wrap', 'true']);
    const names = ['ok', 'fail', ODD_NAME];

    const topics = release.jobStart ? [run.endTopic, run.startTopic] : [run.endTopic];
    for (const topic of topics) {
      const sent = await relay.waitForRecords(topic, names.length);
      const arrived = await consumeAll(b.bootstrapServers, topic, { count: sent.length, timeoutMs: RECORDS_TIMEOUT_MS });
      expect(sortedBytes(arrived.map(arrivedBytes))).toEqual(sortedBytes(sent.map(sentBytes)));
      // the plugin's own records, one per job
      expect(sent.map((r) => String(parsePayload(r.value ?? Buffer.alloc(0)).value['job_name'])).sort()).toEqual([...names].sort());
    }
    // Independent of the listener's codec (the plugin sends uncompressed): each value is in the bytes it sent.
    const wire = relay.clientBytes();
    for (const r of relay.records) expect(wire.includes(r.value ?? Buffer.alloc(1))).toBe(true);
    // The plugin produced to its two topics only.
    expect(new Set(relay.records.map((r) => r.topic))).toEqual(new Set(topics));
  });
});
