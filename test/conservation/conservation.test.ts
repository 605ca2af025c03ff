// Conservation and liveness, ported from rsyslog's failresume test and Vector's
// conservation scenario, then pushed further: 50,000 sequenced records through each ingest
// path at full speed while jobcompd is killed with SIGKILL at ten random moments (records
// are being committed, produced and confirmed all the while) and the broker is stopped
// and started twice. Every
// record whose sender got a success answer must be in Kafka; duplicates only from records
// the killed process had in flight (at most MaxInFlight per kill); the backlog drains; a
// fresh record goes through. Deterministic from a seed (CONSERVATION_SEED), printed.

import { readdirSync } from 'node:fs';
import { consumeAll } from '../../tools/kafka/consume';
import { useBroker } from '../helpers/broker-suite';
import { post, type DaemonProcess } from '../helpers/daemon';
import { numberedBodies } from '../helpers/records';
import { records } from '../helpers/slurm-suite';
import { faultSchedule, prng, RestartableDaemon, until, type Kill } from './faults';
import { PATHS, senderFor, sendUnderFaults } from './senders';

const N = Number(process.env.CONSERVATION_N ?? 50_000);
const SEED = Number(process.env.CONSERVATION_SEED ?? 20261122);
jest.setTimeout(600_000);

const suite = useBroker({ autoCreateTopics: true });

beforeAll(() => {
  process.stdout.write(`conservation: N=${N} seed=${SEED} (CONSERVATION_SEED=${SEED} repeats this run)\n`);
});

/**
 * Read the topic until every job id of [first, first+n) is there; the message count shows
 * duplicates. `before`: messages already in the topic ahead of the sequence.
 * `moreThanTwice`: job ids that came out three times or more (in flight at two kills).
 */
async function consumeSequence(topic: string, first: number, n: number, before = 0): Promise<{ messages: number; missing: number[]; moreThanTwice: number }> {
  let count = before + n;
  for (let attempt = 0; attempt < 20; attempt++) {
    const recs = records(await consumeAll(suite.broker().bootstrapServers, topic, { count, timeoutMs: 120_000 }).catch(() => []));
    const seen = new Map<number, number>();
    for (const r of recs) seen.set(r.jobid, (seen.get(r.jobid) ?? 0) + 1);
    const missing = Array.from({ length: n }, (_, i) => first + i).filter((id) => !seen.has(id));
    const moreThanTwice = [...seen.values()].filter((c) => c > 2).length;
    if (missing.length === 0) return { messages: recs.length - before, missing, moreThanTwice };
    count = recs.length + missing.length;
  }
  throw new Error(`records still missing from ${topic} after 20 reads`);
}

async function backlog(d: DaemonProcess): Promise<number> {
  const res = await fetch(`${d.adminUrl}/status`).catch(() => undefined);
  return res ? ((await res.json()) as { backlog: number }).backlog : -1;
}

function describeKill(k: Kill, i: number): string {
  return (
    `  kill ${i + 1}: in the wait before it +${k.committed} committed, +${k.produced} produced, +${k.delivered} delivered; ` +
    `${k.inFlight} in flight, backlog ${k.backlog}; ${k.inStateAtRestart} rows at the restart, bound ${k.duplicateBound}`
  );
}

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

    const { messages, missing, moreThanTwice } = await consumeSequence(topic, first, N);
    expect(missing).toEqual([]);
    const duplicates = messages - N;
    const { kills } = daemon;
    process.stdout.write(
      `${path}: ${N} records sent in ${(sentIn / 1000).toFixed(1)} s with ${kills.length} kills and 2 broker outages; ` +
        `${messages} messages, ${duplicates} duplicate(s), ${moreThanTwice} job id(s) more than twice; ` +
        `bound: the sum over the kills of min(MaxInFlight=${daemon.maxInFlight}, rows at the restart) = ${daemon.duplicateBound}\n` +
        `${kills.map(describeKill).join('\n')}\n`,
    );
    expect(kills).toHaveLength(10);
    expect(duplicates).toBeLessThanOrEqual(daemon.duplicateBound);
    // the kills fell while records were being committed, were in flight, and while delivery reports were being served
    expect(kills.filter((k) => k.committed > 0).length).toBeGreaterThan(0);
    expect(kills.filter((k) => k.inFlight > 0).length).toBeGreaterThan(0);
    expect(kills.filter((k) => k.delivered > 0).length).toBeGreaterThan(0);

    // liveness: the backlog drains, the spool empties, and a fresh record goes through
    const d = daemon.current;
    await until('the backlog to drain', async () => (await backlog(d)) === 0, 120_000);
    expect(readdirSync(d.spoolDir).filter((f) => f.endsWith('.jch'))).toEqual([]);
    const fresh = numberedBodies(1, first + N)[0] as Buffer;
    expect((await post(d.url, fresh)).status).toBe(201);
    await consumeSequence(topic, first + N, 1, messages);
  });
});
