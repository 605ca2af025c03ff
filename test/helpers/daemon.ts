// A real jobcompd daemon process for integration tests: its own config, state dir and
// port, readiness taken from its "jobcompd ready" log line (no sleeps).

import type { ChildProcess } from 'node:child_process';
import { request, Agent } from 'node:http';
import { reserveLoopbackPorts } from '../../tools/harness-common';
import { join } from 'node:path';
import { spawnCli, tempDir, writeFiles } from './cli';

export interface DaemonOptions {
  bootstrapServers: string;
  clusterName?: string;
  params?: string;
  /** extra rdkafka.conf lines */
  rdkafka?: string;
  /** reuse a directory (state, config) from an earlier daemon */
  dir?: string;
  port?: number;
  /** the [http] Listen address (a loopback one) */
  httpHost?: string;
  adminPort?: number;
  /** lines for [jobcompd] */
  extraConf?: string;
  /** lines for [hook] */
  hookConf?: string;
  /** lines for [http] */
  httpConf?: string;
  /** lines for [kafka] (the Kafka listener; off without a Listen line) */
  kafkaConf?: string;
  /** extra environment (e.g. NOTIFY_SOCKET) */
  env?: NodeJS.ProcessEnv;
}

export interface LogLine {
  level: string;
  /** wording for humans: may change (docs/errors.md); tests match on logEvent */
  msg: string;
  /** the stable name of the line (docs/operations.md) */
  logEvent?: string;
  [key: string]: unknown;
}

export class DaemonProcess {
  readonly logs: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  stderr = '';

  constructor(
    readonly proc: ChildProcess,
    readonly dir: string,
    readonly port: number,
    readonly adminPort: number,
    readonly httpHost = '127.0.0.1',
  ) {
    let pending = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) this.onLine(line);
    });
    proc.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    // 'close', not 'exit': it comes once stdout and stderr are read to the end, so `logs`
    // holds every line the daemon wrote.
    this.exited = new Promise((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })));
  }

  get configFile(): string {
    return join(this.dir, 'jobcompd.conf');
  }

  get stateDir(): string {
    return join(this.dir, 'state');
  }

  get hookSocket(): string {
    return join(this.dir, 'hook.sock');
  }

  get spoolDir(): string {
    return join(this.dir, 'spool');
  }

  get url(): string {
    return `http://${this.httpHost}:${this.port}`;
  }

  get adminUrl(): string {
    return `http://127.0.0.1:${this.adminPort}`;
  }

  private onLine(line: string): void {
    if (line.trim() === '') return;
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      parsed = { level: 'raw', msg: line };
    }
    this.logs.push(parsed);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(parsed)) return true;
      w.resolve(parsed);
      return false;
    });
  }

  /**
   * Resolves with the first log line matching, among those from index `from` on or future
   * ones; rejects if the process exits first.
   */
  waitForLog(pred: (l: LogLine) => boolean, what = 'log line', from = 0): Promise<LogLine> {
    const seen = this.logs.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.waiters.push({ pred, resolve });
      void this.exited.then(({ code, signal }) =>
        reject(new Error(`jobcompd exited (code ${code}, signal ${signal}) before ${what}; stderr: ${this.stderr}; logs: ${this.logs.slice(-5).map((l) => l.msg).join(' | ')}`)),
      );
    });
  }

  /** Write a new configuration for this daemon (same directory and ports); SIGHUP applies it. */
  rewriteConfig(opts: DaemonOptions): void {
    writeDaemonConfig(this.dir, this.port, this.adminPort, opts);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.proc.kill(signal);
    return this.exited;
  }
}

export async function freePort(): Promise<number> {
  const [port] = await reserveLoopbackPorts(1);
  return port as number;
}

/** Write a config for this daemon and start it; resolves when it is ready. */
export async function startDaemon(opts: DaemonOptions): Promise<DaemonProcess> {
  const dir = opts.dir ?? tempDir('jobcompd-daemon-');
  const port = opts.port ?? (await freePort());
  const adminPort = opts.adminPort ?? (await freePort());
  writeDaemonConfig(dir, port, adminPort, opts);
  const proc = spawnCli(['run', '-c', join(dir, 'jobcompd.conf')], opts.env);
  const daemon = new DaemonProcess(proc, dir, port, adminPort, opts.httpHost);
  await daemon.waitForLog((l) => l.logEvent === 'daemon.ready', 'ready');
  return daemon;
}

/** jobcompd.conf and rdkafka.conf in `dir` (rewritten by reload tests). */
export function writeDaemonConfig(dir: string, port: number, adminPort: number, opts: DaemonOptions): void {
  writeFiles(dir, {
    'rdkafka.conf': `bootstrap.servers=${opts.bootstrapServers}\n${opts.rdkafka ?? ''}`,
    'jobcompd.conf': [
      `ClusterName=${opts.clusterName ?? 'testcluster'}`,
      'StateDir=state',
      'JobCompLoc=rdkafka.conf',
      `JobCompParams=${opts.params ?? 'poll_interval=0.05'}`,
      'LogLevel=debug',
      opts.extraConf ?? '',
      '[admin]',
      `Listen=127.0.0.1:${adminPort}`,
      '[http]',
      `Listen=${opts.httpHost ?? '127.0.0.1'}:${port}`,
      opts.httpConf ?? '',
      '[hook]',
      'Socket=hook.sock',
      'Spool=spool',
      opts.hookConf ?? '',
      '[kafka]',
      opts.kafkaConf ?? '',
      '',
    ].join('\n'),
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export interface PostResult {
  status: number;
  body: string;
}

/** POST a body the way jobcomp/elasticsearch does. */
export function post(url: string, body: Buffer, path = '/slurm/_doc'): Promise<PostResult> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** POST all bodies, at most `concurrency` at a time; rejects unless every answer is 201. */
export async function postAll(url: string, bodies: Buffer[], concurrency = 64): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const body = bodies[next++] as Buffer;
      const r = await post(url, body);
      if (r.status !== 201) throw new Error(`POST answered ${r.status}: ${r.body}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
