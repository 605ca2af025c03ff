// The three ingest paths as the conservation tests drive them: senders that return once a
// record got its success answer (retrying while jobcompd is down, as its sources would),
// and a loop that fires faults at progress points while they send.

import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { KafkaBroker } from '../../tools/kafka/broker';
import { post } from '../helpers/daemon';
import { numberedBodies } from '../helpers/records';
import { encodeRequest } from '../../src/sources/hook-protocol';
import type { Fault, RestartableDaemon } from './faults';

/** One sender: returns once record i got a success answer (retrying while jobcompd is down). */
export type Sender = (i: number) => Promise<void>;

function httpSender(daemon: RestartableDaemon, bodies: Buffer[]): Sender {
  return async (i) => {
    for (;;) {
      const r = await post(daemon.current.url, bodies[i] as Buffer).catch(() => undefined);
      if (r?.status === 201) return;
      await new Promise((resolve) => setTimeout(resolve, 50)); // Slurm would wait 30 s
    }
  };
}

/** The environment jobcomp/script gives its script for a completed job. */
export function jobEnv(jobId: number): Map<string, string> {
  return new Map(Object.entries({ JOBID: String(jobId), UID: '0', GID: '0', USERNAME: 'root', GROUPNAME: 'root', PROCS: '1', NODECNT: '1', NODES: 'localhost', PARTITION: 'debug', EXITCODE: '0:0', DERIVED_EC: '0:0', JOBSTATE: 'COMPLETED', START: '1795319410', END: '1795319411', SUBMIT: '1795319409', JOBNAME: `seq${jobId}` }));
}

function hookMessage(jobId: number): Buffer {
  return encodeRequest(Buffer.from([...jobEnv(jobId)].map(([k, v]) => `${k}=${v}\0`).join(''), 'latin1'));
}

/** A file dropped in the spool directory as the hook writes it (temporary file, rename). */
function spool(dir: string, jobId: number, i: number): void {
  const name = `jobcomp.${jobId}.${Date.now()}.${i}.${process.pid}.jch`;
  writeFileSync(join(dir, `.tmp.${i}`), hookMessage(jobId));
  renameSync(join(dir, `.tmp.${i}`), join(dir, name));
}

/** The answer's status byte, or undefined when the daemon did not answer within timeoutMs. */
function askHookSocket(socketPath: string, message: Buffer, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(socketPath);
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => resolve(chunks.length > 0 ? Buffer.concat(chunks).toString('latin1', 0, 1) : undefined));
    socket.end(message);
  });
}

/**
 * The hook's contract over the socket, in-process (spawning the native hook 50,000 times
 * from Node would take this machine a quarter of an hour; the real hook under kill -9 is
 * test/slurm/burst-kill.test.ts): success is an "A"/"D" answer, or, when jobcompd is down,
 * slow or answers "E", the record spooled, which is what the hook then does before exit 0.
 */
function socketSender(daemon: RestartableDaemon, firstJobId: number): Sender {
  const { hookSocket, spoolDir } = daemon.current;
  return async (i) => {
    const status = await askHookSocket(hookSocket, hookMessage(firstJobId + i), 2000);
    if (status === 'A' || status === 'D') return;
    spool(spoolDir, firstJobId + i, i);
  };
}

const SPOOL_AHEAD = 2000;
const SPOOL_FILES_PER_SECOND = 1000;

/**
 * Files dropped in the spool directory as the hook writes them: success is the rename.
 * Unpaced, 50,000 files are written and imported in a few seconds, before the chain of
 * kills (each a restart of a second or more) has got far; so the files come at a steady
 * SPOOL_FILES_PER_SECOND (the run then lasts about as long as the HTTP one), and the
 * writers also wait while more than SPOOL_AHEAD files are waiting (jobcompd down), so that
 * the kills fall while files are being imported, committed and produced.
 */
function spoolSender(daemon: RestartableDaemon, firstJobId: number): Sender {
  const dir = daemon.current.spoolDir;
  mkdirSync(dir, { recursive: true });
  const waiting = (): number => readdirSync(dir).length;
  const started = Date.now();
  return async (i) => {
    const due = started + (i * 1000) / SPOOL_FILES_PER_SECOND - Date.now();
    if (due > 0) await new Promise((resolve) => setTimeout(resolve, due)); // the pace is the point
    if (i % 100 === 0) {
      while (waiting() > SPOOL_AHEAD) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    spool(dir, firstJobId + i, i);
  };
}

/** Fire one fault: kill and restart the daemon, or stop the broker for a while. */
export async function runFault(f: Fault, daemon: RestartableDaemon, broker: KafkaBroker): Promise<void> {
  if (f.kind === 'kill') {
    await daemon.killAfter(f.afterMs);
    return;
  }
  await broker.stop();
  await new Promise((resolve) => setTimeout(resolve, f.downMs)); // the length of the outage is the point
  await broker.restart();
}

/**
 * Fires each fault, one after the other, once the count of acknowledged records passes its
 * progress point: the senders report their progress, the faults follow it.
 */
export class FaultsAtProgress {
  private readonly pending: Fault[];
  private chain: Promise<void> = Promise.resolve();

  constructor(faults: readonly Fault[], private readonly daemon: RestartableDaemon, private readonly broker: KafkaBroker) {
    this.pending = [...faults];
  }

  progressed(done: number): void {
    while (this.pending.length > 0 && (this.pending[0] as Fault).at <= done) {
      const f = this.pending.shift() as Fault;
      this.chain = this.chain.then(() => runFault(f, this.daemon, this.broker));
    }
  }

  /** settles once every fault fired so far is over */
  settled(): Promise<void> {
    return this.chain;
  }
}

/** Send record 0..n-1 with `concurrency` workers while the faults fire at their progress points. */
export async function sendUnderFaults(n: number, concurrency: number, send: Sender, faults: Fault[], daemon: RestartableDaemon, broker: KafkaBroker): Promise<void> {
  let next = 0;
  let done = 0;
  const firing = new FaultsAtProgress(faults, daemon, broker);
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await send(i);
      done += 1;
      firing.progressed(done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await firing.settled();
}

export type Path = 'http' | 'socket' | 'spool';
export const PATHS: Path[] = ['http', 'socket', 'spool'];

/** The sender of a path for job ids first, first+1, ... */
export function senderFor(path: Path, daemon: RestartableDaemon, first: number, n: number): Sender {
  return path === 'http' ? httpSender(daemon, numberedBodies(n, first)) : path === 'socket' ? socketSender(daemon, first) : spoolSender(daemon, first);
}
