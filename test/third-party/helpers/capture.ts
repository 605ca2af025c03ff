// Keeping what Slurm handed to jobcompd, for the fixtures: the elasticsearch bodies (a
// pass-through HTTP relay in front of jobcompd's listener) and the script and prolog
// environments (a wrapper that saves its own initial environment, then execs the hook), and
// what jobcomp/kafka produces to jobcompd's Kafka listener (a TCP relay in front of it).

import { createServer, request, type Server } from 'node:http';
import { chmodSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import type { ConsumedMessage } from '../../../tools/kafka/consume';
import { ApiKey } from '../../../src/kafka-protocol/api-keys';
import { frame, FrameReader } from '../../../src/kafka-protocol/frame';
import { readHeaderStart, readRequestHeader } from '../../../src/kafka-protocol/header';
import { readProduceRequest } from '../../../src/kafka-protocol/produce';
import { ByteReader } from '../../../src/kafka-protocol/reader';
import { readRecordBatches } from '../../../src/kafka-protocol/record-batch';

export interface RelayedBody {
  path: string;
  body: Buffer;
  status: number;
}

/** Relays every POST to `target` unchanged and answers with its status; keeps the bodies. */
export class BodyRelay {
  private constructor(
    private readonly server: Server,
    readonly url: string,
    /** every POST, in arrival order, with jobcompd's answer */
    readonly bodies: readonly RelayedBody[],
  ) {}

  static async start(target: string): Promise<BodyRelay> {
    const bodies: RelayedBody[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const out = request(`${target}${req.url ?? '/'}`, { method: req.method, headers: { 'content-type': req.headers['content-type'] ?? 'application/json' } }, (answer) => {
          answer.resume();
          answer.on('end', () => {
            const status = answer.statusCode ?? 502;
            bodies.push({ path: req.url ?? '/', body, status });
            res.writeHead(status).end();
          });
        });
        out.on('error', () => res.writeHead(502).end());
        out.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new BodyRelay(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies);
  }

  /** Bodies jobcompd accepted (a retry of a refused one comes again). */
  accepted(): Buffer[] {
    return this.bodies.filter((b) => b.status === 200 || b.status === 201).map((b) => b.body);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * `<dir>/<name>`: a script that saves the environment it was started with (from /proc, so
 * nothing the shell adds) as `<dumps>/<name>.<pid>.env` (NUL-separated), then execs `hook`
 * with that environment.
 */
export function environmentRecorder(dir: string, name: string, hook: string, dumps: string): string {
  mkdirSync(dumps, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\ncat /proc/$$/environ > '${dumps}/${name}.'$$'.env'\nexec env -u PWD -u OLDPWD -u SHLVL '${hook}'\n`);
  chmodSync(path, 0o755);
  return path;
}

/** The saved environments whose file name starts with `name`, as maps of byte strings (latin1). */
export function recordedEnvironments(dumps: string, name: string): Map<string, string>[] {
  return readdirSync(dumps)
    .filter((f) => f.startsWith(`${name}.`))
    .map((f) => {
      const env = new Map<string, string>();
      for (const entry of readFileSync(join(dumps, f), 'latin1').split('\0')) {
        const at = entry.indexOf('=');
        if (at > 0) env.set(entry.slice(0, at), entry.slice(at + 1));
      }
      return env;
    });
}

export interface CapturedRecord {
  topic: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: { key: string; value: Buffer | null }[];
}

/** A record's topic, key, value and headers as hex: what must match byte for byte, comparable with toEqual. */
export interface RecordBytes {
  topic: string;
  key: string | null;
  value: string;
  headers: [string, string | null][];
}

const hex = (b: Buffer | null): string | null => (b === null ? null : b.toString('hex'));

export function sentBytes(r: CapturedRecord): RecordBytes {
  return { topic: r.topic, key: hex(r.key), value: hex(r.value) ?? '(null)', headers: r.headers.map((h) => [h.key, hex(h.value)]) };
}

export function arrivedBytes(m: ConsumedMessage): RecordBytes {
  // node-rdkafka: an array of one-entry objects, or undefined when the record has none
  const headers = ((m.headers ?? []) as Record<string, Buffer | null>[]).flatMap((h) => Object.entries(h).map(([k, v]): [string, string | null] => [k, hex(v)]));
  return { topic: m.topic, key: hex(m.key), value: hex(m.value) ?? '(null)', headers };
}

export function sortedBytes(list: RecordBytes[]): RecordBytes[] {
  return [...list].sort((a, b) => a.value.localeCompare(b.value));
}

/**
 * A TCP relay in front of jobcompd's Kafka listener that keeps every record of every Produce
 * request the client sends, as read from the wire (each batch's CRC-32C, computed by the
 * client's librdkafka, is verified), and the raw bytes the client sent.
 *
 * The listener's Metadata answer names its own address as the broker, and librdkafka then
 * produces to that address, not to the bootstrap one: the relay puts its own port in place of
 * the listener's in every answer (the same four bytes after the host name), so that produce
 * requests come through it too.
 */
export class ProduceRelay {
  readonly records: CapturedRecord[] = [];
  private readonly sent: Buffer[] = [];
  private readonly sockets = new Set<Socket>();
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly server: NetServer,
    readonly port: number,
  ) {}

  /** Everything the clients sent, concatenated. */
  clientBytes(): Buffer {
    return Buffer.concat(this.sent);
  }

  static async start(host: string, target: number): Promise<ProduceRelay> {
    let relay: ProduceRelay | undefined;
    const server = createNetServer((client) => {
      const upstream = connect(target, host);
      relay?.sockets.add(client);
      client.on('close', () => relay?.sockets.delete(client));
      const requests = new FrameReader(64 * 1024 * 1024);
      const answers = new FrameReader(64 * 1024 * 1024);
      client.on('data', (chunk: Buffer) => {
        relay?.sent.push(chunk);
        for (const f of requests.push(chunk)) relay?.keepProduced(f);
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        for (const f of answers.push(chunk)) client.write(frame(relay?.ownPort(f, host, target) ?? f));
      });
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    relay = new ProduceRelay(server, (server.address() as AddressInfo).port);
    return relay;
  }

  private ownPort(answer: Buffer, host: string, target: number): Buffer {
    const pattern = Buffer.alloc(host.length + 4);
    pattern.write(host, 0, 'latin1');
    pattern.writeInt32BE(target, host.length);
    const at = answer.indexOf(pattern);
    if (at < 0) return answer;
    const patched = Buffer.from(answer);
    patched.writeInt32BE(this.port, at + host.length);
    return patched;
  }

  private keepProduced(request: Buffer): void {
    if (readHeaderStart(request).apiKey !== ApiKey.produce) return;
    const reader = new ByteReader(request);
    const header = readRequestHeader(reader);
    for (const { topic, partitions } of readProduceRequest(reader, header.apiVersion).topics) {
      for (const { records } of partitions) {
        if (records === null) continue;
        for (const batch of readRecordBatches(records, 64 * 1024 * 1024)) {
          for (const r of batch.records) this.records.push({ topic, key: r.key, value: r.value, headers: r.headers.map((h) => ({ ...h })) });
        }
      }
    }
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `n` records of `topic` have come through. */
  async waitForRecords(topic: string, n: number): Promise<CapturedRecord[]> {
    for (;;) {
      const got = this.records.filter((r) => r.topic === topic);
      if (got.length >= n) return got;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Stops listening and drops the connections still open (a slurmctld that would not stop). */
  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    return closed;
  }
}
