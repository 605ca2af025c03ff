// A state file on a disk that stalls, for real: an ext4 image on a loop device, and the
// daemon in a cgroup whose writes to that device are throttled (io.max on cgroup v2, or
// blkio on v1, whichever has the controller), so that the fdatasync before each answer
// takes minutes. Slurm's elasticsearch plugin has no timeout of its own: jobcompd must
// answer anyway, and lose nothing and publish nothing twice when the disk recovers. And a
// checkpoint on such a disk must not stall the event loop (issue 14).

import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consumeAll } from '../../tools/kafka/consume';
import { tempDir } from '../helpers/cli';
import { Cleanups, loopFilesystem } from '../helpers/loop-fs';
import { useBroker } from '../helpers/broker-suite';
import { post, type DaemonProcess } from '../helpers/daemon';
import { jobIdOf, numberedBodies } from '../helpers/records';
import { CHECKPOINT_AFTER_CHANGES } from '../../src/outbox/outbox';

jest.setTimeout(180_000);

const suite = useBroker({ autoCreateTopics: true });
const cleanups = new Cleanups();

afterAll(() => cleanups.run());

/** The cgroup v2 hierarchy, if it has the io controller (a hybrid host may keep it on v1). */
function cgroupV2WithIo(): string | undefined {
  const root = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'].find((d) => existsSync(join(d, 'cgroup.controllers')));
  if (root === undefined) return undefined;
  return readFileSync(join(root, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('io') ? root : undefined;
}

let cgroups = 0;

/**
 * A cgroup holding pid whose writes to `device` are throttled; the returned function sets
 * the limit in bytes/s (0: none). cgroup v2 (io.max) when it has the io controller, else v1
 * (blkio); a host with neither fails the test.
 */
function throttledCgroup(pid: number, device: string): (bytesPerSecond: number) => void {
  const name = `jobcompd-slow-disk-${process.pid}-${++cgroups}`;
  const v2 = cgroupV2WithIo();
  // under the hierarchy's root, which may hold processes while delegating controllers
  const dir = v2 !== undefined ? join(v2, name) : join('/sys/fs/cgroup/blkio', name);
  if (v2 !== undefined) writeFileSync(join(v2, 'cgroup.subtree_control'), '+io');
  else if (!existsSync('/sys/fs/cgroup/blkio')) throw new Error('neither cgroup v2 with the io controller nor v1 blkio is available');
  mkdirSync(dir);
  cleanups.push(() => rmdirSync(dir));
  writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  return (bytesPerSecond) =>
    v2 !== undefined
      ? writeFileSync(join(dir, 'io.max'), `${device} wbps=${bytesPerSecond === 0 ? 'max' : bytesPerSecond}`)
      : writeFileSync(join(dir, 'blkio.throttle.write_bps_device'), `${device} ${bytesPerSecond}`);
}

/** Probes GET /healthz back to back until stopped; resolves with the slowest answer, in ms. */
function probeAdmin(d: DaemonProcess): { stop: () => Promise<number> } {
  let running = true;
  let slowest = 0;
  const loop = (async () => {
    while (running) {
      const t0 = Date.now();
      await fetch(`${d.adminUrl}/healthz`).then((r) => r.text());
      slowest = Math.max(slowest, Date.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 50)); // the probe's pace
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return slowest;
    },
  };
}

/** POST until 201 (a 503 after CommitTimeout is retried, as Slurm does; the resend is a duplicate). */
async function postUntilCommitted(url: string, body: Buffer): Promise<void> {
  for (;;) {
    if ((await post(url, body)).status === 201) return;
  }
}

describe('a state file on a disk that stalls', () => {
  it('answers 503 after CommitTimeout instead of hanging; the late commit is published once and the resend is a duplicate', async () => {
    const dir = tempDir('jobcompd-slow-');
    const device = loopFilesystem(join(dir, 'state.img'), join(dir, 'state'), cleanups);
    const d = await suite.daemon({ dir, clusterName: 'slowdisk', httpConf: 'CommitTimeout = 1' });
    const throttle = throttledCgroup(d.proc.pid as number, device);
    const [before, stalled, after] = numberedBodies(3, 61_000) as [Buffer, Buffer, Buffer];
    expect((await post(d.url, before)).status).toBe(201);

    throttle(512); // a 4 KiB page takes 8 s to write
    const answer = await post(d.url, stalled);
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { type: 'commit_timeout', reason: expect.stringContaining('CommitTimeout=1s') } });
    expect(d.logs.find((l) => l.logEvent === 'http.commit-timeout')).toMatchObject({ jobId: 61_001, event: 'job finish', status: 503 });

    // the disk recovers: the stalled commit completes, and Slurm's resend is recognised
    throttle(0);
    await d.waitForLog((l) => l.logEvent === 'http.late-commit' && l.jobId === 61_001, 'the late commit');
    const resend = await post(d.url, stalled);
    expect(resend.status).toBe(201);
    expect(JSON.parse(resend.body)).toMatchObject({ result: 'duplicate' });
    expect((await post(d.url, after)).status).toBe(201);

    // one partition, in order: had the resend been published, it would come before `after`
    const delivered = await consumeAll(suite.broker().bootstrapServers, 'slowdisk', { count: 3, timeoutMs: 60_000 });
    expect(delivered.map((m) => jobIdOf(m.value as Buffer))).toEqual([61_000, 61_001, 61_002]);
  });
});

describe('a checkpoint on a disk that stalls', () => {
  it('runs off the event loop: the admin endpoint answers throughout, and every record is published', async () => {
    const dir = tempDir('jobcompd-slowckpt-');
    const device = loopFilesystem(join(dir, 'state.img'), join(dir, 'state'), cleanups);
    const d = await suite.daemon({ dir, clusterName: 'slowcheckpoint' }); // LogLevel=debug: state.checkpointed
    const throttle = throttledCgroup(d.proc.pid as number, device);
    // Kafka down: the records stay, so the checkpoints copy megabytes of distinct pages; and
    // enough of them for a checkpoint by either rule (jobcompd's row writes, SQLite's 1000 WAL pages)
    await suite.broker().stop();
    const bodies = numberedBodies(3 * CHECKPOINT_AFTER_CHANGES, 62_000);
    throttle(1024 * 1024); // a sync of a few MB takes seconds
    const probe = probeAdmin(d);
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < bodies.length) await postUntilCommitted(d.url, bodies[next++] as Buffer);
      }),
    );
    const slowest = await probe.stop();
    throttle(0);
    // every commit after a checkpoint waited for its sync: by now at least one has finished
    const checkpoints = d.logs.filter((l) => l.logEvent === 'state.checkpointed');
    process.stdout.write(`${checkpoints.length} checkpoint(s) (${checkpoints.map((c) => `${String(c.pages)} pages in ${String(c.seconds)} s`).join(', ')}); the slowest /healthz answer took ${slowest} ms\n`);
    expect(slowest).toBeLessThan(1000);
    expect(checkpoints.length).toBeGreaterThan(0);

    await suite.broker().restart();

    const delivered = await consumeAll(suite.broker().bootstrapServers, 'slowcheckpoint', { count: bodies.length, timeoutMs: 120_000 });
    const ids = new Set(delivered.map((m) => jobIdOf(m.value as Buffer)));
    expect(bodies.map(jobIdOf).filter((id) => !ids.has(id))).toEqual([]);
  });
});
