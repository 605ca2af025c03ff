// What the benchmarks share: the machine's description, statistics, a real broker, the
// real jobcompd executable as a child process, kcat as the ceiling, and the records.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { librdkafkaVersion } from 'node-rdkafka';
import { DEFAULT_PAYLOAD_OPTIONS, toPayload, type RecordInput } from '../src/record/to-payload';
import { encodeRequest } from '../src/sources/hook-protocol';
import { findProjectRoot, KafkaBroker, kafkaVersion } from '../tools/kafka/broker';
import { reserveLoopbackPorts } from '../tools/harness-common';

export const root = findProjectRoot();
export const JOBCOMPD = join(root, 'bin/jobcompd');
const SHEBANG = /^#!\/usr\/bin\/env -S ((?:\w+=\S* )*)node (.*)$/.exec(readFileSync(JOBCOMPD, 'utf8').split('\n')[0] ?? '');
/** The Node.js flags on bin/jobcompd's first line, which the daemon runs with everywhere (make install reads them too). */
export const JOBCOMPD_NODE_FLAGS: string[] = (SHEBANG?.[2] ?? '').split(' ').filter((f) => f !== '');
/** The environment set on that line (MALLOC_ARENA_MAX: docs/install.md). */
export const JOBCOMPD_ENV: Record<string, string> = Object.fromEntries((SHEBANG?.[1] ?? '').split(' ').filter((a) => a !== '').map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
const PROFILE_DIR = process.env.BENCH_CPU_PROF || undefined;
/** The unit of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

// ---------------------------------------------------------------------------
// Reporting

export interface Spread {
  min: number;
  median: number;
  max: number;
}

export function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0] ?? NaN, median: s[Math.floor((s.length - 1) / 2)] ?? NaN, max: s[s.length - 1] ?? NaN };
}

export function percentiles(ms: number[]): { p50: number; p99: number; max: number; mean: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? NaN, mean: s.reduce((a, b) => a + b, 0) / s.length };
}

export function machine(): Record<string, string | number> {
  return {
    cpu: cpus()[0]?.model ?? '?',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    librdkafka: librdkafkaVersion,
    kafka: kafkaVersion(),
    kcat: kcatVersion(),
  };
}

/** Print a figure as it is measured (benchmarks are long; silence looks like a hang). */
export function note(line: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
}

/** bench/results/<name>.json: the figures, the machine and the date. */
export function saveResult(name: string, figures: unknown): string {
  const dir = join(root, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ bench: name, date: new Date().toISOString(), machine: machine(), figures }, null, 2)}\n`);
  return file;
}

/** `--runs N` and similar options: `option('runs', 3)`. */
export function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i < 0 ? undefined : Number(process.argv[i + 1]);
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : fallback;
}

/** A bench's entry point: a failure prints its stack and exits 1. */
export function runBench(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Records: the captured Slurm 22.05 elasticsearch bodies, numbered

const ES_DIR = join(root, 'test/fixtures/es-22.05');

/** Request body i of the captured kinds (0.7-0.9 KB; one in nine carries a 5 KB batch script), job id firstJobId + i. */
export function esBodyOf(firstJobId: number): (i: number) => Buffer {
  const templates = readdirSync(ES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => readFileSync(join(ES_DIR, f), 'latin1'));
  return (i) => Buffer.from((templates[i % templates.length] as string).replace(/^\{"jobid":\d+,/, `{"jobid":${firstJobId + i},`), 'latin1');
}

/** The jobcomp/kafka payload jobcompd publishes for a body. */
export function payloadOf(body: Buffer): Buffer {
  return publishedPayload({ kind: 'elasticsearch', body });
}

/** The payload jobcompd publishes for an input (with the default JobCompParams). */
export function publishedPayload(input: RecordInput): Buffer {
  const mapped = toPayload(input, DEFAULT_PAYLOAD_OPTIONS);
  if (mapped.kind !== 'record') throw new Error(mapped.reason);
  return mapped.payload;
}

/** A jobcomp/script environment, framed as the hook sends it. */
export function hookMessage(jobId: number): Buffer {
  const env: Record<string, string> = { JOBID: String(jobId), UID: '1001', GID: '1001', USERNAME: 'alice', GROUPNAME: 'physics', PROCS: '64', NODECNT: '2', NODES: 'node[001-002]', PARTITION: 'compute', EXITCODE: '0:0', DERIVED_EC: '0:0', JOBSTATE: 'COMPLETED', START: '1795319410', END: '1795323010', SUBMIT: '1795319409', JOBNAME: `lammps_run_${jobId}`, WORK_DIR: '/home/alice/runs/lammps', ACCOUNT: 'physics', QOS: 'normal', TIMELIMIT: '02:00:00', STDOUT: '/home/alice/runs/lammps/slurm-%j.out', STDERR: '/home/alice/runs/lammps/slurm-%j.err', CLUSTER: 'hpc1' };
  return encodeRequest(Buffer.from(Object.entries(env).map(([k, v]) => `${k}=${v}\0`).join(''), 'latin1'));
}

// ---------------------------------------------------------------------------
// The broker

export const BROKER_HEAP_MB = 1024;

export async function startBroker(): Promise<KafkaBroker> {
  const broker = await KafkaBroker.start({ autoCreateTopics: true, heapMb: BROKER_HEAP_MB });
  note(`Kafka ${kafkaVersion()} at ${broker.bootstrapServers}: KRaft, 1 node, loopback, heap ${BROKER_HEAP_MB} MB, log dirs on ${tmpdir()}; server.properties:`);
  const props = readFileSync(join(broker.dataDir, 'server.properties'), 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  for (const line of props) note(`  ${line}`);
  return broker;
}

// ---------------------------------------------------------------------------
// jobcompd

export interface DaemonSetup {
  bootstrapServers: string;
  clusterName: string;
  /** reuse a state directory (a prepared backlog) */
  stateDir?: string;
  rdkafka?: string;
  /** lines for the [producer] section */
  producerConf?: string;
  jobCompParams?: string;
  /** `[kafka] Listen` (host:port): the Kafka listener on */
  kafkaListen?: string;
  /** more lines for [hook] */
  hookConf?: string;
  /** `DedupWindow`, seconds: 0 (off) unless given, as in every bench before the fourteenth session's default-window row */
  dedupWindowSeconds?: number;
}

export class BenchDaemon {
  private constructor(
    readonly proc: ChildProcess,
    readonly work: string,
    readonly httpPort: number,
    readonly adminPort: number,
    /** ms from spawn to the "jobcompd ready" log line */
    readonly startupMs: number,
  ) {}

  static async start(setup: DaemonSetup): Promise<BenchDaemon> {
    const work = mkdtempSync(join(tmpdir(), 'jobcompd-bench-'));
    const [httpPort, adminPort] = (await reserveLoopbackPorts(2)) as [number, number];
    writeFileSync(join(work, 'rdkafka.conf'), `bootstrap.servers=${setup.bootstrapServers}\n${setup.rdkafka ?? ''}`);
    writeFileSync(
      join(work, 'jobcompd.conf'),
      [
        `ClusterName=${setup.clusterName}`,
        `StateDir=${setup.stateDir ?? join(work, 'state')}`,
        `JobCompLoc=${join(work, 'rdkafka.conf')}`,
        `JobCompParams=${setup.jobCompParams ?? ''}`,
        'LogLevel=info',
        `DedupWindow=${setup.dedupWindowSeconds ?? 0}`,
        '[admin]',
        `Listen=127.0.0.1:${adminPort}`,
        '[http]',
        `Listen=127.0.0.1:${httpPort}`,
        '[hook]',
        `Socket=${join(work, 'hook.sock')}`,
        `Spool=${join(work, 'spool')}`,
        setup.hookConf ?? '',
        ...(setup.kafkaListen === undefined ? [] : ['[kafka]', `Listen=${setup.kafkaListen}`]),
        '[producer]',
        setup.producerConf ?? '',
        '',
      ].join('\n'),
    );
    const t0 = process.hrtime.bigint();
    // BENCH_CPU_PROF=<dir>: every daemon writes a V8 CPU profile there when it stops (open it in Chrome DevTools).
    // (--cpu-prof is not allowed in NODE_OPTIONS: run node with it.)
    const profile = PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`];
    const argv = [...JOBCOMPD_NODE_FLAGS, ...profile, JOBCOMPD, 'run', '-c', join(work, 'jobcompd.conf')];
    const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...JOBCOMPD_ENV } });
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        if (line.includes('"jobcompd ready"')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`jobcompd exited (${String(code)}) before it was ready`)));
    });
    return new BenchDaemon(proc, work, httpPort, adminPort, Number(process.hrtime.bigint() - t0) / 1e6);
  }

  get socketPath(): string {
    return join(this.work, 'hook.sock');
  }

  async status(): Promise<{ backlog: number; delivered: number; quarantined: number }> {
    const res = await fetch(`http://127.0.0.1:${this.adminPort}/status`);
    return (await res.json()) as { backlog: number; delivered: number; quarantined: number };
  }

  /** Resolves when `delivered` reaches `count`; returns the time it did. */
  async waitDelivered(count: number, timeoutMs = 30 * 60_000): Promise<bigint> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status();
      if (s.delivered >= count) return process.hrtime.bigint();
      if (Date.now() > deadline) throw new Error(`only ${s.delivered} of ${count} delivered after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /** Every Prometheus sample of /metrics, by metric name (labels summed). */
  async metrics(): Promise<Map<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${this.adminPort}/metrics`)).text();
    const values = new Map<string, number>();
    for (const m of text.matchAll(/^([a-z_:]+)(?:\{[^}]*\})? (\S+)$/gm)) {
      values.set(m[1] as string, (values.get(m[1] as string) ?? 0) + Number(m[2]));
    }
    return values;
  }

  /**
   * In kB, from /proc: current RSS, peak RSS (VmHWM), and the anonymous part of the current
   * RSS (what the process allocated, without the file-backed pages of the node executable
   * and the libraries, which are shared with the page cache).
   */
  rssKb(): { rss: number; peak: number; anon: number } {
    const text = readFileSync(`/proc/${String(this.proc.pid)}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { rss: kb('VmRSS'), peak: kb('VmHWM'), anon: kb('RssAnon') };
  }

  /** CPU seconds (user + system, every thread) the daemon has used so far, from /proc. */
  cpuSeconds(): number {
    return cpuSecondsOf(this.proc);
  }

  async stop(): Promise<void> {
    // SIGTERM lets V8 write the profile; otherwise the fastest way out.
    await this.end(PROFILE_DIR === undefined ? 'SIGKILL' : 'SIGTERM');
  }

  /** kill -9, whatever BENCH_CPU_PROF says (a state directory given in the setup stays). */
  async kill(): Promise<void> {
    await this.end('SIGKILL');
  }

  private async end(signal: NodeJS.Signals): Promise<void> {
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.kill(signal);
    await exited;
    rmSync(this.work, { recursive: true, force: true });
  }
}

/** CPU seconds (user + system, every thread) a child process has used so far, from /proc. */
export function cpuSecondsOf(proc: ChildProcess): number {
  return cpuSecondsOfPid(proc.pid ?? -1);
}

/** CPU seconds (user + system, every thread) process `pid` has used so far, from /proc. */
export function cpuSecondsOfPid(pid: number): number {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  // the fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * CPU seconds every process on the machine has used so far (all cores: user, nice, system,
 * irq, softirq), from /proc/stat: with the broker's own, what a phase of a benchmark cost the
 * machine as a whole, the load generator included.
 */
export function machineCpuSeconds(): number {
  const cpu = /^cpu\s+(.*)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]?.split(/\s+/).map(Number) ?? [];
  // the fields are user nice system idle iowait irq softirq steal...: not idle, iowait or steal (another guest's)
  const busy = [0, 1, 2, 5, 6].reduce((sum, i) => sum + (cpu[i] ?? NaN), 0);
  return busy / CLOCK_TICKS;
}

/** What one phase of a benchmark cost the broker and the whole machine. */
export interface PhaseCpu {
  brokerSeconds: number;
  machineSeconds: number;
}

/** Starts counting the broker's and the machine's CPU; call the function returned when the phase ends. */
export function phaseCpu(brokerPid: number): () => PhaseCpu {
  const broker0 = cpuSecondsOfPid(brokerPid);
  const machine0 = machineCpuSeconds();
  return () => ({ brokerSeconds: cpuSecondsOfPid(brokerPid) - broker0, machineSeconds: machineCpuSeconds() - machine0 });
}

/** A server in a child process with nothing behind it: the floors under jobcompd's work (answer-only-server.ts, durable-answer-server.c). */
export interface FloorServer {
  /** the HTTP port, or the Unix socket's path */
  address: string;
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** answer-only-server.ts: no commit, no Kafka; `socket-durable` writes and fdatasyncs each message before it answers. */
export function startAnswerOnlyServer(kind: 'http' | 'socket' | 'socket-durable'): Promise<FloorServer> {
  return startAnswerServer('answer-only-server', (dir) => [
    process.execPath,
    join(root, 'dist/bench/answer-only-server.js'),
    kind,
    join(dir, 'answer.sock'),
    ...(kind === 'socket-durable' ? [join(dir, 'data')] : []),
  ]);
}

/**
 * `argv(dir)` in a child process, `dir` a fresh directory of its own (removed at stop);
 * resolves once it prints "listening <address>".
 */
export async function startAnswerServer(name: string, argv: (dir: string) => string[]): Promise<FloorServer> {
  const dir = mkdtempSync(join(tmpdir(), 'jobcompd-bench-answer-'));
  const [program, ...args] = argv(dir);
  const proc = spawn(program as string, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const address = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (line.startsWith('listening ')) resolve(line.slice('listening '.length));
    });
    proc.once('exit', (code) => reject(new Error(`${name} exited (${String(code)}) before it listened`)));
  });
  return {
    address,
    cpuSeconds: () => cpuSecondsOf(proc),
    stop: async () => {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------
// Senders

/** Sends record i; resolves once jobcompd has committed it (its success answer). */
export type Sender = (i: number) => Promise<void>;

/**
 * POSTs as Slurm's jobcomp/elasticsearch sends them: a new connection per record (its
 * slurm_curl_request makes a curl handle for each record and cleans it up once answered),
 * the request line and the four headers curl sends (Host, Accept, Content-Type,
 * Content-Length) with the body in the same write, and the connection closed by the client
 * once the whole answer is read. Every answer must be 201.
 */
export function httpSender(port: number, bodyOf: (i: number) => Buffer): Sender {
  return (i) =>
    new Promise((resolve, reject) => {
      const body = bodyOf(i);
      const head = `POST /slurm/jobcomp HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
      let answer: Buffer = Buffer.alloc(0);
      const s = connect(port, '127.0.0.1');
      s.on('error', reject);
      s.on('data', (chunk: Buffer) => {
        answer = answer.length === 0 ? chunk : Buffer.concat([answer, chunk]);
        const headEnd = answer.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const headers = answer.toString('latin1', 0, headEnd);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(headers)?.[1] ?? '0');
        if (answer.length < headEnd + 4 + length) return;
        s.destroy();
        const status = Number(headers.slice(9, 12));
        if (status === 201) resolve();
        else reject(new Error(`POST answered ${status}`));
      });
      s.on('close', () => reject(new Error('connection closed before the whole answer')));
      s.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
    });
}

/**
 * POSTs from `concurrency` keep-alive clients, each sending its next record on the
 * connection of its last: not how Slurm sends (httpSender), but how the bench sent until
 * the fifteenth session, kept as one row to compare with earlier runs (docs/benchmarks.md).
 */
export function keepAliveHttpSender(port: number, bodyOf: (i: number) => Buffer, concurrency: number): { send: Sender; close(): void } {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const send: Sender = (i) => {
    const body = bodyOf(i);
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/slurm/jobcomp', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`POST answered ${String(res.statusCode)}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
  };
  return { send, close: () => agent.destroy() };
}

/** Hook messages over the Unix socket, one connection each and no half-close, as the native hook sends them; every answer must be "A". */
export function hookSender(socketPath: string, messageOf: (i: number) => Buffer): Sender {
  return (i) =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const s = connect(socketPath);
      s.on('error', reject);
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('close', () => {
        const status = Buffer.concat(chunks).toString('latin1', 0, 1);
        if (status === 'A') resolve();
        else reject(new Error(`hook answer "${status}"`));
      });
      s.write(messageOf(i));
    });
}

/** `concurrency` workers send records 0, 1, 2... until `count` are sent or `durationMs` has passed; returns how many were sent. */
export async function saturate(send: Sender, concurrency: number, limit: { count?: number; durationMs?: number }): Promise<number> {
  const deadline = limit.durationMs === undefined ? Infinity : Date.now() + limit.durationMs;
  const count = limit.count ?? Infinity;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count && Date.now() < deadline) await send(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return next;
}

// ---------------------------------------------------------------------------
// kcat: a raw producer, the ceiling (no durability of its own)

function kcatVersion(): string {
  const r = spawnSync('kcat', ['-V'], { encoding: 'utf8' });
  return r.error ? 'not installed' : (/kcat - Apache Kafka producer and consumer tool.*?\n.*?Version ([^\s]+)/s.exec(r.stdout)?.[1] ?? r.stdout.split('\n')[0] ?? '?');
}

/**
 * Seconds for `kcat -P` to produce every line of `file` (one payload per line) and exit,
 * which it does once librdkafka has delivery reports for all of them (acks=all, its default).
 */
export async function kcatProduce(brokers: string, topic: string, file: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  // From stdin, one message per line (a file argument would be sent as one message).
  const input = openSync(file, 'r');
  const child = spawn('kcat', ['-P', '-b', brokers, '-t', topic, '-X', 'queue.buffering.max.messages=1000000'], { stdio: [input, 'ignore', 'pipe'] });
  closeSync(input);
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`cannot run kcat (${err.message}); \`make bench-deps\` installs it`)));
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`kcat exited ${String(code)}: ${stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** One payload per line, for kcat. json-c output has no raw newline, so lines are messages. */
export function writePayloadFile(payloads: Buffer[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'jobcompd-bench-payloads-'));
  const file = join(dir, 'payloads.txt');
  writeFileSync(file, Buffer.concat(payloads.flatMap((p) => [p, Buffer.from('\n')])));
  return file;
}

export function removeFileDir(file: string): void {
  rmSync(join(file, '..'), { recursive: true, force: true });
}
