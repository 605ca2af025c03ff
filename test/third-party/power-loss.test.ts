// Issue 14: durability against the fault fsync exists for. The state directory is on LazyFS,
// which keeps written data in its own cache until it is fsync'd. Records stream in through
// HTTP, or through the hook socket (answer "A", or spooled while jobcompd is down: the spool
// is not on LazyFS, as the hook fsyncs its files); at ten seeded random moments jobcompd is killed with SIGKILL and LazyFS drops
// everything not synced (a power cut: the process and the page cache go at the same
// instant; dropping the cache first would let the live process write after the cut), then
// jobcompd starts again. Every record whose sender got 201 ("A") must reach the real broker;
// duplicates are reported. The same run with the fsyncs switched off (the test-only
// JOBCOMPD_TEST_SKIP_FSYNC) must lose acknowledged records: the test can fail.

import { join } from 'node:path';
import { consumeAll, countMessages } from '../../tools/kafka/consume';
import { SKIP_FSYNC_VARIABLE } from '../../src/outbox/sync';
import { faultSchedule, prng, RestartableDaemon, until } from '../conservation/faults';
import { senderFor, sendUnderFaults, type Path } from '../conservation/senders';
import { tempDir } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { records } from '../helpers/slurm-suite';
import { useLazyFs } from './helpers/lazyfs';

const N = Number(process.env.POWERLOSS_N ?? 3000);
const SEED = Number(process.env.POWERLOSS_SEED ?? 20261204);
const CUTS = 10;
jest.setTimeout(600_000);

const suite = useBroker({ autoCreateTopics: true });
const lazyfs = useLazyFs();
let live: RestartableDaemon | undefined;

beforeAll(() => {
  process.stdout.write(`power loss: N=${N} seed=${SEED} (POWERLOSS_SEED=${SEED} repeats the schedule; the moments within it are timing)\n`);
});
afterEach(async () => {
  await live?.current.stop('SIGKILL');
  live = undefined;
});

interface Outcome {
  /** acknowledged job ids that never reached Kafka */
  missing: number[];
  duplicates: number;
  cuts: number;
  /** the kill -9 bound of conservation.test.ts: the sum over the cuts of min(MaxInFlight, rows at the restart) */
  bound: number;
}

/** N records through `path` under CUTS power cuts, then drain: what reached the topic. */
async function underPowerCuts(path: Path, topic: string, first: number, env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  const dir = tempDir('jobcompd-powerloss-');
  const mount = await lazyfs.mount(join(dir, 'state'));
  const bootstrapServers = suite.broker().bootstrapServers;
  const daemon = await RestartableDaemon.start(
    { bootstrapServers, clusterName: topic, dir, env, rdkafka: 'enable.idempotence=true\n', extraConf: 'LogLevel=info' },
    () => mount.clearCache(),
  );
  live = daemon;
  await sendUnderFaults(N, 32, senderFor(path, daemon, first, N), faultSchedule(prng(SEED), N, CUTS, 0), daemon, suite.broker());
  await until('the backlog to drain', async () => {
    const res = await fetch(`${daemon.current.adminUrl}/status`).catch(() => undefined);
    return res !== undefined && ((await res.json()) as { backlog: number }).backlog === 0;
  }, 120_000);
  await daemon.current.stop('SIGKILL');
  live = undefined;

  const total = await countMessages(bootstrapServers, topic);
  const seen = new Set(records(await consumeAll(bootstrapServers, topic, { count: total, timeoutMs: 60_000 })).map((r) => r.jobid));
  const missing = Array.from({ length: N }, (_, i) => first + i).filter((id) => !seen.has(id));
  return { missing, duplicates: total - (N - missing.length), cuts: daemon.kills.length, bound: daemon.duplicateBound };
}

describe.each(['http', 'socket'] as const)('power loss (LazyFS) through %s', (path) => {
  it(`every acknowledged record reaches Kafka across ${CUTS} power cuts`, async () => {
    const { missing, duplicates, cuts, bound } = await underPowerCuts(path, `powerloss-${path}`, path === 'http' ? 3_000_000 : 5_000_000);
    process.stdout.write(`${path}: ${N} records, ${cuts} power cuts: ${missing.length} lost, ${duplicates} duplicate(s) (kill -9 bound ${bound})\n`);
    expect(cuts).toBe(CUTS);
    expect(missing).toEqual([]);
  });
});

describe('power loss (LazyFS) without the fsyncs', () => {
  it(`with ${SKIP_FSYNC_VARIABLE}=1 the same HTTP run loses acknowledged records`, async () => {
    const { missing, duplicates, cuts } = await underPowerCuts('http', 'powerloss-http-nosync', 4_000_000, { [SKIP_FSYNC_VARIABLE]: '1' });
    process.stdout.write(`http without fsync: ${N} records, ${cuts} power cuts: ${missing.length} lost, ${duplicates} duplicate(s)\n`);
    expect(cuts).toBe(CUTS);
    expect(missing.length).toBeGreaterThan(0);
  });
});
