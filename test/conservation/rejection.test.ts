// Conservation when Kafka refuses records for good, through each ingest path: the topic is
// deleted mid-stream, the broker does not create topics, and jobcompd is killed with
// SIGKILL three times on the way. Every record is either confirmed delivered (before the
// deletion) or in quarantine, none vanishes, and `replay --quarantined` delivers the
// quarantined ones once the topic exists again. Deterministic from CONSERVATION_SEED.

import { consumeAll } from '../../tools/kafka/consume';
import { runCli, runCliAsync } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { jobIdOf } from '../helpers/records';
import { faultSchedule, prng, RestartableDaemon, until } from './faults';
import { PATHS, senderFor, sendUnderFaults } from './senders';

jest.setTimeout(300_000);

const N = 5000;
const SEED = Number(process.env.CONSERVATION_SEED ?? 20261122);
const suite = useBroker({ autoCreateTopics: false });

let live: RestartableDaemon | undefined;
afterEach(async () => {
  await live?.current.stop('SIGKILL');
  live = undefined;
});

describe.each(PATHS)('through %s', (path) => {
  it(`${N} records, the topic deleted at 40%, 3 kill -9: each is delivered or quarantined, none vanish; then replayed`, async () => {
    const broker = suite.broker();
    const topic = `rejecting-${path}`;
    const first = 5_000_000 + 100_000 * PATHS.indexOf(path);
    const random = prng(SEED ^ (path.length * 104_729));
    await broker.createTopic(topic);
    const daemon = await RestartableDaemon.start({
      bootstrapServers: broker.bootstrapServers,
      clusterName: topic,
      rdkafka: 'topic.metadata.propagation.max.ms=1000\ntopic.metadata.refresh.interval.ms=1000\n',
    });
    live = daemon;
    // one sender for the whole run: the second phase's record i is record 0.4N + i
    const send = senderFor(path, daemon, first, N);
    const before = Math.floor(N * 0.4);
    await sendUnderFaults(before, 16, send, faultSchedule(random, before, 1, 0), daemon, broker);
    await broker.deleteTopic(topic);
    await sendUnderFaults(N - before, 16, (i) => send(before + i), faultSchedule(random, N - before, 2, 0), daemon, broker);

    const status = async (): Promise<{ backlog: number; quarantined: number; delivered: number }> => {
      const r = await runCliAsync(['status', '--json', '-c', daemon.current.configFile]);
      expect(r).toMatchObject({ code: 0, stderr: '' }); // a failure shows its stderr
      return JSON.parse(r.stdout) as { backlog: number; quarantined: number; delivered: number };
    };
    await until('every record delivered or quarantined', async () => (await status()).backlog === 0, 120_000);
    const d = daemon.current;
    await d.stop('SIGTERM'); // after the exit, every log line has been read
    expect(daemon.kills).toHaveLength(3);
    // confirmed by a delivery report, in any of the processes (the killed ones included)
    const delivered = new Set(daemon.processes.flatMap((p) => p.logs.filter((l) => l.logEvent === 'record.delivered').map((l) => Number(l.jobId))));

    const dry = runCli(['replay', '--quarantined', '--dry-run', '--json', '-c', d.configFile]);
    const quarantineRows = dry.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { jobId: number }).jobId);
    const quarantined = new Set(quarantineRows);
    expect(quarantined.size).toBeGreaterThan(0);
    const vanished = Array.from({ length: N }, (_, i) => first + i).filter((id) => !delivered.has(id) && !quarantined.has(id));
    expect(vanished).toEqual([]);
    expect(await status()).toMatchObject({ backlog: 0, quarantined: quarantineRows.length });

    await broker.createTopic(topic);
    const replay = runCli(['replay', '--quarantined', '--timeout', '120', '-c', d.configFile], { timeoutMs: 150_000 });
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain(`delivered ${quarantineRows.length}, quarantined 0, still saved 0`);
    const messages = await consumeAll(broker.bootstrapServers, topic, { count: quarantineRows.length, timeoutMs: 60_000 });
    expect(new Set(messages.map((m) => jobIdOf(m.value as Buffer)))).toEqual(quarantined);
    process.stdout.write(
      `rejection (${path}, seed ${SEED}): ${delivered.size} delivered before the deletion, ${quarantineRows.length} quarantined ` +
        `(${quarantined.size} jobs) then replayed; 3 kills, ${daemon.kills.map((k) => k.inStateAtRestart).join('/')} rows at the restarts\n`,
    );
  });
});
