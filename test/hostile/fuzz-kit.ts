// What the hostile-input tests share: a seeded PRNG (every case can be regenerated from the
// seed and its index), a supervisor that notices when the daemon dies and which cases were
// in flight, RSS sampling, `jobcompd status`, the oracles that say what the daemon must do
// with an input (the same mappers the daemon runs, in this process), and a check of what
// reached Kafka.

import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { consumeAll, countMessages, type ConsumedMessage } from '../../tools/kafka/consume';
import { RecordError } from '../../src/errors';
import { parseElasticsearchBody } from '../../src/record/from-elasticsearch';
import { mapHookEnv } from '../../src/record/from-hook';
import { JobEvent } from '../../src/record/job-record';
import { parseEnvBlock, parseEnvDump } from '../../src/record/slurm-env';
import { serialize } from '../../src/record/serialize';
import { DEFAULT_PAYLOAD_OPTIONS } from '../../src/record/to-payload';
import { runCliAsync } from '../helpers/cli';
import { mulberry32 } from '../helpers/random';
import type { DaemonProcess } from '../helpers/daemon';

// ---------------------------------------------------------------------------
// Seeds and the PRNG

/** The seed of a run: FUZZ_SEED if set, else the file's fixed seed. Printed once. */
export function fuzzSeed(file: string, fallback: number): number {
  const fromEnv = process.env.FUZZ_SEED;
  const seed = fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) >>> 0 : fallback >>> 0;
  console.log(`${file}: seed ${seed} (reproduce with FUZZ_SEED=${seed})`);
  return seed;
}

/** How many cases: FUZZ_CASES if set, else `fallback`. */
export function fuzzCases(fallback: number): number {
  const fromEnv = Number(process.env.FUZZ_CASES);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : fallback;
}


export class Rng {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  /** The generator of case `index` of a run: cases do not depend on each other. */
  static forCase(seed: number, index: number): Rng {
    let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    return new Rng((h ^ (h >>> 16)) >>> 0);
  }

  float(): number {
    return this.next();
  }

  /** 0 <= n < max */
  int(max: number): number {
    return Math.floor(this.next() * max);
  }

  /** lo <= n <= hi */
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from nothing');
    return items[this.int(items.length)] as T;
  }

  bytes(n: number, lo = 0, hi = 255): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.between(lo, hi);
    return b;
  }

  /** One of the entries, chosen by weight. */
  weighted<T>(table: readonly (readonly [number, T])[]): T {
    const total = table.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of table) {
      if (r < w) return v;
      r -= w;
    }
    return (table[table.length - 1] as readonly [number, T])[1];
  }
}

// ---------------------------------------------------------------------------
// Small things

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitUntil(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Bytes for a failure message: printable ASCII as is, the rest as \xNN; long inputs shortened. */
export function preview(buf: Buffer, max = 96): string {
  const show = (b: Buffer): string => [...b].map((c) => (c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
  if (buf.length <= max) return `${buf.length} bytes: ${show(buf)}`;
  const half = Math.floor(max / 2);
  return `${buf.length} bytes: ${show(buf.subarray(0, half))} ... ${show(buf.subarray(buf.length - half))}`;
}

/** Tally of labels, for the report printed at the end of a run. */
export function tally(labels: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of labels) out[l] = (out[l] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

// ---------------------------------------------------------------------------
// The daemon's process: RSS, status, liveness

export function rssKb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; keeps the first, peak and last. */
export class RssSampler {
  firstKb: number | undefined;
  peakKb = 0;
  lastKb: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pid = 0;

  start(pid: number, everyMs = 100): this {
    this.follow(pid);
    this.timer = setInterval(() => this.sample(), everyMs);
    return this;
  }

  /** Keep sampling another process (the daemon after a restart). */
  follow(pid: number): void {
    this.pid = pid;
    this.sample();
  }

  sample(): void {
    const kb = rssKb(this.pid);
    if (kb === undefined) return;
    this.firstKb ??= kb;
    this.peakKb = Math.max(this.peakKb, kb);
    this.lastKb = kb;
  }

  stop(): void {
    this.sample();
    if (this.timer) clearInterval(this.timer);
  }

  get report(): string {
    const mb = (kb: number | undefined): string => (kb === undefined ? '?' : `${(kb / 1024).toFixed(1)} MB`);
    return `RSS first ${mb(this.firstKb)}, peak ${mb(this.peakKb)}, last ${mb(this.lastKb)}`;
  }
}

export interface StatusCounts {
  backlog: number;
  delivered: number;
  quarantined: number;
  deduplicated: number;
}

/** `jobcompd status --json -c <config>` (asks the running daemon, else reads the state file). */
export async function daemonStatus(configFile: string): Promise<StatusCounts> {
  const r = await runCliAsync(['status', '--json', '-c', configFile]);
  if (r.code !== 0) throw new Error(`jobcompd status exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusCounts;
}

export function isAlive(d: DaemonProcess): boolean {
  return d.proc.exitCode === null && d.proc.signalCode === null;
}

export interface Crash {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** cases in flight when the process exited */
  inFlight: number[];
  /** the last lines of stderr (Node prints the uncaught exception there) */
  stderr: string;
}

/**
 * Runs cases against a daemon and notices when it dies: which cases were in flight, what it
 * printed. The next case restarts it (same directory and ports), so one crasher does not
 * hide the rest of the run; the test then fails on `crashes`.
 */
export class Supervisor {
  readonly crashes: Crash[] = [];
  readonly restartFailures: string[] = [];
  private readonly inFlight = new Set<number>();
  private restarting: Promise<void> | undefined;
  private closed = false;

  constructor(
    public daemon: DaemonProcess,
    private readonly restart: (dead: DaemonProcess) => Promise<DaemonProcess>,
    private readonly onRestart: (d: DaemonProcess) => void = () => undefined,
  ) {
    this.watch(daemon);
  }

  private watch(d: DaemonProcess): void {
    void d.exited.then(({ code, signal }) => {
      if (this.closed) return;
      const lines = d.stderr.trim().split('\n');
      this.crashes.push({ code, signal, inFlight: [...this.inFlight].sort((a, b) => a - b), stderr: lines.slice(0, 12).join('\n') });
    });
  }

  /** No restarts from now on (the test is about to stop the daemon). */
  close(): void {
    this.closed = true;
  }

  /** Make sure a daemon is running (restart a dead one). */
  async ensureAlive(): Promise<DaemonProcess> {
    while (this.restarting) await this.restarting;
    if (isAlive(this.daemon) || this.closed) return this.daemon;
    const dead = this.daemon;
    this.restarting = (async () => {
      await dead.exited;
      try {
        this.daemon = await this.restart(dead);
        this.watch(this.daemon);
        this.onRestart(this.daemon);
      } catch (err) {
        this.restartFailures.push((err as Error).message);
        throw err;
      }
    })().finally(() => {
      this.restarting = undefined;
    });
    await this.restarting;
    return this.daemon;
  }

  /**
   * One case. `suspicious(outcome)` says whether an outcome could mean the daemon died (no
   * answer); then, as on an error, we wait a little for the process to exit.
   * `died` is true when the daemon exited while this case was in flight.
   */
  async run<T>(index: number, fn: (d: DaemonProcess) => Promise<T>, suspicious: (outcome: T) => boolean): Promise<{ value?: T; error?: string; died: boolean }> {
    const d = await this.ensureAlive();
    this.inFlight.add(index);
    try {
      const value = await fn(d);
      if (suspicious(value)) await Promise.race([d.exited, sleep(1500)]);
      return { value, died: !isAlive(d) };
    } catch (err) {
      await Promise.race([d.exited, sleep(1500)]);
      return { error: (err as Error).message, died: !isAlive(d) };
    } finally {
      this.inFlight.delete(index);
    }
  }
}

/** Run `count` cases, at most `concurrency` at a time, in index order. */
export async function pool(count: number, concurrency: number, fn: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

// ---------------------------------------------------------------------------
// Oracles: what the daemon must do with an input

export type Prediction =
  | { kind: 'stored'; event: JobEvent; jobId: number; payload: Buffer; dedupKey: string }
  | { kind: 'quarantined'; code: string; reason: string }
  | { kind: 'ignored' }
  /** the mapper throws something other than a RecordError: the daemon must still answer */
  | { kind: 'internal-error'; error: string };

function stored(event: JobEvent, jobId: number, payload: Buffer): Prediction {
  const dedupKey = createHash('sha256').update(Buffer.from([event])).update(payload).digest('hex');
  return { kind: 'stored', event, jobId, payload, dedupKey };
}

function failure(err: unknown): Prediction {
  if (err instanceof RecordError) return { kind: 'quarantined', code: err.code, reason: err.message };
  return { kind: 'internal-error', error: `${(err as Error).name}: ${(err as Error).message}` };
}

/** A jobcomp/elasticsearch body, as Ingest.acceptElasticsearch handles it. */
export function predictElasticsearch(body: Buffer, sendScript: boolean): Prediction {
  try {
    const record = parseElasticsearchBody(body);
    return stored(record.event, record.jobid, serialize(record, { ...DEFAULT_PAYLOAD_OPTIONS, sendScript }));
  } catch (err) {
    return failure(err);
  }
}

/** A hook environment block, as Ingest.acceptHookEnvironment handles it. */
export function predictHookEnv(env: Buffer, enableJobStart: boolean): Prediction {
  try {
    const mapped = mapHookEnv(parseEnvBlock(env));
    if (mapped.kind === 'not-published') return { kind: 'ignored' };
    if (mapped.record.event === JobEvent.start && !enableJobStart) return { kind: 'ignored' };
    return stored(mapped.record.event, mapped.record.jobid, serialize(mapped.record, DEFAULT_PAYLOAD_OPTIONS));
  } catch (err) {
    return failure(err);
  }
}

// ---------------------------------------------------------------------------
// Hook environments

export const SCRIPT_FIXTURES = join(__dirname, '../fixtures/script-22.05');

/** The captured environments of one context ("jobcomp", "prolog_ctld", "epilog_ctld"), both runs. */
export function capturedEnvs(prefix: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (const run of ['run1', 'run2']) {
    const dir = join(SCRIPT_FIXTURES, run);
    for (const f of readdirSync(dir).filter((n) => n.startsWith(`${prefix}.`) && n.endsWith('.env')).sort()) {
      const env = parseEnvDump(readFileSync(join(dir, f)));
      env.delete('PWD'); // added by the capture's shell, not by Slurm
      out.push(env);
    }
  }
  if (out.length === 0) throw new Error(`no captured ${prefix} environments`);
  return out;
}

/** "K=V\0" entries, bytes as given (latin1 strings hold one byte per char). */
export function envBlock(env: ReadonlyMap<string, string> | readonly (readonly [string, string])[]): Buffer {
  const entries = env instanceof Map ? [...env] : (env as readonly (readonly [string, string])[]);
  return Buffer.from(entries.map(([k, v]) => `${k}=${v}\0`).join(''), 'latin1');
}

/** "JCH1" | uint32 BE length | environment */
export function frame(env: Buffer, length = env.length, magic: Buffer = Buffer.from('JCH1', 'latin1')): Buffer {
  const head = Buffer.alloc(8);
  magic.copy(head, 0, 0, 4);
  head.writeUInt32BE(length >>> 0, 4);
  return Buffer.concat([head, env]);
}

// ---------------------------------------------------------------------------
// What reached Kafka

const NON_INTEGER_KEYS = new Set(['cpu_hours']);

/** Why a published payload is not what jobcomp/kafka would send (not JSON, non-integer ints), or undefined. */
export function payloadProblem(value: Buffer): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('latin1'));
  } catch (err) {
    return `not valid JSON (${(err as Error).message})`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'not a JSON object';
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof v === 'number' && !NON_INTEGER_KEYS.has(k) && !Number.isSafeInteger(v)) return `"${k}" is not a plain integer`;
  }
  return undefined;
}

export function jobIdOfPayload(value: Buffer): number | undefined {
  const m = /^\{"jobid":(\d+),/.exec(value.toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

/**
 * Published payloads (by dedup key) against the expected ones. After a crash, records in
 * flight are produced again at the restart (delivery-guarantees.md): duplicates are allowed
 * then, but nothing may be missing and nothing unexpected may appear.
 */
export function comparePublished(expected: ReadonlyMap<string, number>, seen: ReadonlyMap<string, number>, crashed: boolean): string[] {
  const out: string[] = [];
  for (const [key, n] of seen) {
    const want = expected.get(key) ?? 0;
    if (want === 0) out.push(`payload ${key.slice(0, 12)} published ${n} times, but no case should have published it`);
    else if (n !== want && !(crashed && n > want)) out.push(`payload ${key.slice(0, 12)} published ${n} times, expected ${want}`);
  }
  for (const [key, want] of expected) if (!seen.has(key)) out.push(`payload ${key.slice(0, 12)} never published (expected ${want})`);
  return out;
}

// ---------------------------------------------------------------------------
// The end of a run, shared by the three fuzzers

/** Poll `status` until the backlog is empty and at least `quarantined` are kept, or `timeoutMs` passes. */
export async function settledStatus(configFile: string, quarantined: number, timeoutMs: number): Promise<StatusCounts> {
  let status = await daemonStatus(configFile);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !(status.backlog === 0 && status.quarantined >= quarantined)) {
    await sleep(500);
    status = await daemonStatus(configFile);
  }
  return status;
}

export interface Published {
  /** dedup key (sha256 of event byte + payload) -> times published */
  seen: Map<string, number>;
  /** job ids of the job end topic */
  jobIds: Set<number>;
  /** messages in the topics */
  total: number;
  problems: string[];
}

/** Read each topic whole (`want`: at least that many messages): what was published, and anything malformed. */
export async function readPublished(brokers: string, topics: readonly { topic: string; event: 1 | 2; want: number }[]): Promise<Published> {
  const out: Published = { seen: new Map(), jobIds: new Set(), total: 0, problems: [] };
  for (const { topic, event, want } of topics) {
    const inTopic = await countMessages(brokers, topic);
    out.total += inTopic;
    const count = Math.max(want, inTopic);
    const messages: ConsumedMessage[] =
      count === 0 ? [] : await consumeAll(brokers, topic, { count, timeoutMs: 60_000 }).catch((err: { received?: ConsumedMessage[] }) => err.received ?? []);
    for (const m of messages) {
      const value = m.value ?? Buffer.alloc(0);
      const key = createHash('sha256').update(Buffer.from([event])).update(value).digest('hex');
      out.seen.set(key, (out.seen.get(key) ?? 0) + 1);
      const id = event === 1 ? jobIdOfPayload(value) : undefined;
      if (id !== undefined) out.jobIds.add(id);
      const bad = payloadProblem(value);
      if (bad !== undefined) out.problems.push(`published to ${topic}: payload ${bad}: ${preview(value, 300)}`);
    }
  }
  return out;
}

/** The known records (one every 50th case, plus the probe) that are not in Kafka. */
export function missingKnownRecords(jobIds: ReadonlySet<number>, cases: number, knownIdBase: number, probeId: number): number[] {
  const missing: number[] = [];
  for (let i = 0; i < cases; i += 50) if (!jobIds.has(knownIdBase + i / 50)) missing.push(knownIdBase + i / 50);
  if (!jobIds.has(probeId)) missing.push(probeId);
  return missing;
}

export interface RunOutcome {
  /** the cases that killed the daemon, described, with what it printed */
  culprits: { description: string; stderr: string }[];
  sup: Supervisor;
  alive: boolean;
  problems: string[];
  missingKnown: number[];
  backlog: number;
  rss: RssSampler;
  rssLimitKb: number;
}

/** The failures every fuzzer checks, most important first; a fuzzer appends its own counts. */
export function commonFailures(o: RunOutcome): string[] {
  return [
    ...o.culprits.map(({ description, stderr }) => `CRASH: ${description} killed the daemon:\n${stderr}`),
    ...(o.culprits.length === 0 ? o.sup.crashes.map((x) => `CRASH: exit ${x.code ?? x.signal}, in flight ${x.inFlight.join(',')}: ${x.stderr}`) : []),
    ...o.sup.restartFailures.map((m) => `RESTART FAILED: ${m}`),
    ...(o.alive ? [] : ['the daemon is not running at the end']),
    ...o.problems.slice(0, 40),
    ...(o.problems.length > 40 ? [`... and ${o.problems.length - 40} more problems`] : []),
    ...(o.missingKnown.length > 0 ? [`known records missing from Kafka: ${o.missingKnown.join(', ')}`] : []),
    ...(o.backlog === 0 ? [] : [`backlog ${o.backlog} at the end`]),
    ...(o.rss.peakKb < o.rssLimitKb ? [] : [`daemon RSS peaked at ${o.rss.peakKb} kB (limit ${o.rssLimitKb} kB)`]),
  ];
}
