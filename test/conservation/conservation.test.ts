// Conservation and liveness, ported from rsyslog's failresume test and Vector's
// conservation scenario, then pushed further: 50,000 sequenced records through each ingest
// path at full speed while jobcompd is killed with SIGKILL at ten random moments (records
// are being committed, produced and confirmed all the while) and the broker is stopped
// and started twice. Every
// record whose sender got a success answer must be in Kafka; duplicates only from records
// the killed process had in flight (at most MaxInFlight per kill); the backlog drains; a
// fresh record goes through. Deterministic from a seed (CONSERVATION_SEED), printed.

import { readdirSync } from 'node:fs';
import { useBroker } from '../helpers/broker-suite';
import { post } from '../helpers/daemon';
import { numberedBodies } from '../helpers/records';
import { faultSchedule, prng, RestartableDaemon, until } from './faults';
import { backlog, consumeSequence, expectWithinKillBound } from './readback';
import { PATHS, senderFor, sendUnderFaults } from './senders';

const N = Number(process.env.CONSERVATION_N ?? 50_000);
const SEED = Number(process.env.CONSERVATION_SEED ?? 20261122);
jest.setTimeout(600_000);

const suite = useBroker({ autoCreateTopics: true });

beforeAll(() => {
  process.stdout.write(`conservation: N=${N} seed=${SEED} (CONSERVATION_SEED=${SEED} repeats this run)\n`);
});

let live: RestartableDaemon | undefined;
afterEach(async () => {
  await live?.current.stop('SIGKILL');
  live = undefined;
});

describe.each(PATHS)('through %s', (path) => {
  it(`every acknowledged record of ${N} reaches Kafka across 10 kill -9 and 2 broker outages; then it drains and stays live`, async () => {
    const random = prng(SEED ^ path.length * 7919);
    const faults = faultSchedule(random, N, 10, 2);
    const topic = `cons-${path}`;
    const first = 1_000_000 * (PATHS.indexOf(path) + 1);
    const daemon = await RestartableDaemon.start({
      bootstrapServers: suite.broker().bootstrapServers,
      clusterName: topic,
      rdkafka: 'enable.idempotence=true\n',
      // one log line per record would slow a 50,000-record run down to the pace of the log pipe
      extraConf: 'LogLevel=info',
    });
    live = daemon;
    const started = Date.now();
    await sendUnderFaults(N, 32, senderFor(path, daemon, first, N), faults, daemon, suite.broker());
    const sentIn = Date.now() - started;

    const { messages, missing, moreThanTwice } = await consumeSequence(suite.broker().bootstrapServers, topic, first, N);
    expect(missing).toEqual([]);
    expectWithinKillBound(path, N, sentIn, { messages, moreThanTwice }, daemon);

    // liveness: the backlog drains, the spool empties, and a fresh record goes through
    const d = daemon.current;
    await until('the backlog to drain', async () => (await backlog(d)) === 0, 120_000);
    expect(readdirSync(d.spoolDir).filter((f) => f.endsWith('.jch'))).toEqual([]);
    const fresh = numberedBodies(1, first + N)[0] as Buffer;
    expect((await post(d.url, fresh)).status).toBe(201);
    await consumeSequence(suite.broker().bootstrapServers, topic, first + N, 1, messages);
  });
});
