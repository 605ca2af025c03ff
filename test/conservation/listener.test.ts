// Conservation through the Kafka listener (issue 13, test 3): the records of the real
// jobcomp/kafka of Slurm 26.05 (job ids renumbered into a sequence), produced to jobcompd
// by real producers, the Java producer (idempotence on, acks=all) and kcat -P (Debian's
// librdkafka 2.0.2), while jobcompd is killed with SIGKILL ten times and the upstream broker
// is stopped twice, on the schedule of conservation.test.ts. Every record the producer was
// told delivered must reach the upstream broker; duplicates are counted against the kill -9
// bound of docs/delivery-guarantees.md.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useBroker } from '../helpers/broker-suite';
import { freePort } from '../helpers/daemon';
import { faultSchedule, prng, RestartableDaemon, until } from './faults';
import { PRODUCER_CLIENTS, produceSequence, type ProducerClient } from './producers';
import { backlog, consumeSequence, expectWithinKillBound, statusCounters } from './readback';
import { FaultsAtProgress } from './senders';

const N = Number(process.env.CONSERVATION_N ?? 50_000);
const SEED = Number(process.env.CONSERVATION_SEED ?? 20261122);
/**
 * Paced, as the spool path of conservation.test.ts is: unpaced, a producer hands jobcompd
 * 50,000 records in a few seconds, before the chain of kills (a restart each) has got far.
 */
const PACE = { perSecond: 1000, ahead: 2000 };
jest.setTimeout(900_000);

const suite = useBroker({ autoCreateTopics: true });

beforeAll(() => {
  process.stdout.write(`conservation through the Kafka listener: N=${N} seed=${SEED} (CONSERVATION_SEED=${SEED} repeats this run)\n`);
});

/** The real plugin's end records (test/fixtures/slurm-26.05/kafka), one line each, job ids first, first+1, ... */
function pluginValues(n: number, first: number): string[] {
  const dir = join(__dirname, '..', 'fixtures', 'slurm-26.05', 'kafka');
  const templates = readdirSync(dir)
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8').replace(/[\0\n]+$/, ''));
  return Array.from({ length: n }, (_, i) => (templates[i % templates.length] as string).replace(/^\{"jobid":\d+,/, `{"jobid":${first + i},`));
}

let live: RestartableDaemon | undefined;
afterEach(async () => {
  await live?.current.stop('SIGKILL');
  live = undefined;
});

describe.each(PRODUCER_CLIENTS)('through the Kafka listener from %s', (client: ProducerClient) => {
  it(`every acknowledged record of ${N} reaches the upstream broker across 10 kill -9 and 2 broker outages; duplicates within the bound`, async () => {
    const random = prng(SEED ^ (client.length * 104_729));
    const faults = faultSchedule(random, N, 10, 2);
    const topic = `cons-listener-${client}`;
    const first = 1_000_000 * (PRODUCER_CLIENTS.indexOf(client) + 5);
    const listen = `127.0.0.1:${await freePort()}`;
    const daemon = await RestartableDaemon.start({
      bootstrapServers: suite.broker().bootstrapServers,
      clusterName: topic,
      rdkafka: 'enable.idempotence=true\n',
      kafkaConf: `Listen=${listen}`,
      extraConf: 'LogLevel=info',
    });
    live = daemon;
    const firing = new FaultsAtProgress(faults, daemon, suite.broker());
    const started = Date.now();
    const outcome = await produceSequence(client, listen, topic, pluginValues(N, first), PACE, (acked) => firing.progressed(acked));
    await firing.settled();
    const sentIn = Date.now() - started;
    process.stdout.write(`${client}: exit ${String(outcome.exitCode)}, ${outcome.acknowledged} acknowledged, ${outcome.failed} failed\n${outcome.otherLines.join('\n')}\n`);
    // the producers keep records for DELIVERY_TIMEOUT_MS: no restart of the run may make them give one up
    expect({ acknowledged: outcome.acknowledged, failed: outcome.failed }).toEqual({ acknowledged: N, failed: 0 });

    await until('the backlog to drain', async () => (await backlog(daemon.current)) === 0, 120_000);
    const { messages, missing, moreThanTwice } = await consumeSequence(suite.broker().bootstrapServers, topic, first, N);
    expect(missing).toEqual([]);
    // resends the restarted listener took as new and DedupWindow stored once (docs/delivery-guarantees.md)
    process.stdout.write(`${client}: ${String((await statusCounters(daemon.current))?.deduplicated)} record(s) deduplicated\n`);
    expectWithinKillBound(`${client} through the listener`, N, sentIn, { messages, moreThanTwice }, daemon);
  });
});
