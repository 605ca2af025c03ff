// Debian's rsyslogd as the durable peer of the benchmarks: an unprivileged foreground
// process (`rsyslogd -n -f <conf> -i <pidfile>`) with its own configuration and work
// directory, never the system's service. It receives RELP (imrelp) and forwards to Kafka
// (omkafka). The settings and why each is there: docs/benchmarks.md, section 4.

import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reserveLoopbackPorts } from '../tools/harness-common';
import { sleep } from './lib';

/**
 * Where rsyslog keeps a record between the RELP answer and Kafka:
 * - 'disk-assisted': the main queue in memory (rsyslog's default), then a disk-assisted
 *   (LinkedList + queue.filename) action queue in front of omkafka, syncing its files;
 * - 'disk': a pure disk queue on the RELP input's ruleset, synced and checkpointed on
 *   every message, and no action queue (omkafka runs from that queue's worker).
 */
export type RsyslogQueue = 'disk-assisted' | 'disk';
export const RSYSLOG_QUEUES: RsyslogQueue[] = ['disk-assisted', 'disk'];

/** The user rsyslogd runs as when the bench runs as root. */
const NOBODY = 65534;
const READY_TIMEOUT_MS = 30_000;

export interface RsyslogSetup {
  bootstrapServers: string;
  topic: string;
  queue: RsyslogQueue;
}

/** Queue settings shared by both layouts: files in the work directory, synced, checkpointed each message. */
function syncedQueue(type: string, file: string): string {
  return `queue.type="${type}" queue.filename="${file}" queue.syncQueueFiles="on" queue.checkpointInterval="1" queue.saveOnShutdown="on" queue.maxDiskSpace="4g"`;
}

export function rsyslogConf(setup: RsyslogSetup, work: string, port: number): string {
  const actionQueue = setup.queue === 'disk-assisted' ? syncedQueue('LinkedList', 'omkafka') : 'queue.type="Direct"';
  const rulesetQueue = setup.queue === 'disk' ? ` ${syncedQueue('Disk', 'relp')}` : '';
  return [
    `global(workDirectory="${join(work, 'spool')}" maxMessageSize="64k")`,
    // queue sizes every second: how the bench knows the queues are drained
    `module(load="impstats" interval="1" format="json" log.syslog="off" log.file="${join(work, 'stats.json')}")`,
    'module(load="imrelp")',
    'module(load="omkafka")',
    // the record alone: the MSG part of the RFC 5424 frame the sender wraps it in
    'template(name="record" type="string" string="%msg%")',
    `ruleset(name="relp"${rulesetQueue}) {`,
    `  action(type="omkafka" name="kafka" broker=["${setup.bootstrapServers}"] topic="${setup.topic}" template="record"`,
    '         confParam=["acks=all"]',
    `         resubmitOnFailure="on" keepFailedMessages="on" failedMsgFile="${join(work, 'spool', 'omkafka.failed')}"`,
    '         action.resumeRetryCount="-1"',
    `         ${actionQueue})`,
    '}',
    `input(type="imrelp" address="127.0.0.1" port="${port}" ruleset="relp" maxDataSize="64k")`,
    '',
  ].join('\n');
}

/** The RFC 5424 frame a record travels in: every header field nil, the record as MSG. */
export function syslogFrame(record: Buffer): Buffer {
  return Buffer.concat([Buffer.from('<14>1 - - - - - - ', 'latin1'), record]);
}

/** One rsyslogd, killed with SIGKILL and restarted in place (same configuration, work directory, port). */
export class Rsyslogd {
  private proc: ChildProcess | undefined;
  private stderr = '';

  private constructor(
    readonly work: string,
    readonly port: number,
  ) {}

  static async start(setup: RsyslogSetup): Promise<Rsyslogd> {
    const work = mkdtempSync(join(tmpdir(), 'jobcompd-bench-rsyslog-'));
    mkdirSync(join(work, 'spool'));
    const [port] = (await reserveLoopbackPorts(1)) as [number];
    writeFileSync(join(work, 'rsyslog.conf'), rsyslogConf(setup, work, port));
    if (process.getuid?.() === 0) {
      chownSync(work, NOBODY, NOBODY);
      chownSync(join(work, 'spool'), NOBODY, NOBODY);
    }
    const r = new Rsyslogd(work, port);
    await r.launch();
    return r;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** SIGKILL, then start again over the same work directory. */
  async killAndRestart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.work, { recursive: true, force: true });
  }

  /**
   * Every queue empty, by the latest statistics (once a second) of the running process. (omkafka's own counters
   * cannot say more: its "acked" stayed below "submitted" with every message on the topic.)
   */
  drained(): boolean {
    const path = join(this.work, 'stats.json');
    if (!existsSync(path)) return false;
    const sizes = new Map<string, number>();
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const json = line.indexOf('{');
      if (json < 0) continue;
      const s = JSON.parse(line.slice(json)) as { name: string; origin: string; size?: number };
      if (s.origin === 'core.queue') sizes.set(s.name, s.size ?? NaN);
    }
    return sizes.size > 0 && [...sizes.values()].every((size) => size === 0);
  }

  private async kill(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
    this.proc = undefined;
  }

  private async launch(): Promise<void> {
    rmSync(join(this.work, 'stats.json'), { force: true }); // drained() reads this process's statistics only
    // setpriv: rsyslogd dies with the bench (no orphan holding the port), and runs as nobody when the bench is root
    const privileges = process.getuid?.() === 0 ? [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'] : [];
    const argv = ['--pdeathsig', 'KILL', ...privileges, 'rsyslogd', '-n', '-f', join(this.work, 'rsyslog.conf'), '-i', join(this.work, 'rsyslogd.pid')];
    const proc = spawn('setpriv', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    proc.stderr?.on('data', (c: Buffer) => (this.stderr = (this.stderr + c.toString()).slice(-4000)));
    await this.waitListening(proc);
  }

  /** Resolves once imrelp accepts connections (rsyslogd announces nothing on its own). */
  private async waitListening(proc: ChildProcess): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`rsyslogd exited ${String(proc.exitCode)}: ${this.stderr}`);
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: this.port });
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`rsyslogd did not listen on ${this.port} within ${READY_TIMEOUT_MS} ms: ${this.stderr}`);
      await sleep(50);
    }
  }
}
