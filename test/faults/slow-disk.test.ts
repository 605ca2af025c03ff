// A state file on a disk that stalls, for real: an ext4 image on a loop device, and the
// daemon in a blkio cgroup whose writes to that device are throttled to a trickle, so that
// the fdatasync before each answer takes minutes. Slurm's elasticsearch plugin has no
// timeout of its own: jobcompd must answer anyway, and lose nothing and publish nothing
// twice when the disk recovers.

import { execFileSync } from 'node:child_process';
import { mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consumeAll } from '../../tools/kafka/consume';
import { tempDir } from '../helpers/cli';
import { useBroker } from '../helpers/broker-suite';
import { post } from '../helpers/daemon';
import { jobIdOf, numberedBodies } from '../helpers/records';

jest.setTimeout(180_000);

const suite = useBroker({ autoCreateTopics: true });
const cleanups: (() => void)[] = [];

afterAll(() => {
  for (const undo of cleanups.reverse()) undo();
});

/** An ext4 filesystem on a loop device mounted at dir; returns the device's major:minor. */
function loopFilesystem(image: string, dir: string): string {
  execFileSync('truncate', ['-s', '64M', image]);
  execFileSync('mkfs.ext4', ['-q', image]);
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-o', 'loop', image, dir]);
  cleanups.push(() => execFileSync('umount', ['-l', dir]));
  const device = execFileSync('findmnt', ['-n', '-o', 'SOURCE', dir], { encoding: 'utf8' }).trim();
  return execFileSync('lsblk', ['-n', '-o', 'MAJ:MIN', device], { encoding: 'utf8' }).trim();
}

/** A blkio cgroup (v1) holding pid; the returned function sets its write limit in bytes/s (0: none). */
function throttledCgroup(pid: number, device: string): (bytesPerSecond: number) => void {
  const dir = `/sys/fs/cgroup/blkio/jobcompd-slow-disk-${process.pid}`;
  mkdirSync(dir);
  cleanups.push(() => rmdirSync(dir));
  writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  return (bytesPerSecond) => writeFileSync(join(dir, 'blkio.throttle.write_bps_device'), `${device} ${bytesPerSecond}`);
}

describe('a state file on a disk that stalls', () => {
  it('answers 503 after CommitTimeout instead of hanging; the late commit is published once and the resend is a duplicate', async () => {
    const dir = tempDir('jobcompd-slow-');
    const device = loopFilesystem(join(dir, 'state.img'), join(dir, 'state'));
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
