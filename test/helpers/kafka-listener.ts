// The Kafka listener in-process, committing into memory: for tests of the protocol with
// real clients (the daemon's own outbox path is tested through the daemon).

import pino from 'pino';
import { Writable } from 'node:stream';
import { ProducerState } from '../../src/kafka-protocol/producer-state';
import { KafkaListener, type KafkaListenerOptions } from '../../src/sources/kafka-listener';
import type { ProducedRecord } from '../../src/sources/kafka-session';

export interface ListenerEvent {
  kind: 'unsupported-compression' | 'refused-batch' | 'unsupported-request' | 'authentication-failed';
  detail: string;
}

export interface MemoryListener {
  readonly listener: KafkaListener;
  readonly bootstrap: string;
  readonly records: ProducedRecord[];
  readonly events: ListenerEvent[];
  readonly logLines: Record<string, unknown>[];
  /** resolves once `n` records are committed */
  waitForRecords(n: number): Promise<void>;
}

/** `beforeCommit`: awaited by every commit before it takes the records (a test holds commits back with it). */
export async function startMemoryListener(
  opts: Partial<KafkaListenerOptions> = {},
  credentials?: { user: string; password: string },
  beforeCommit?: () => Promise<void>,
): Promise<MemoryListener> {
  const records: ProducedRecord[] = [];
  const events: ListenerEvent[] = [];
  const logLines: Record<string, unknown>[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const listener = await KafkaListener.listen(
    { host: '127.0.0.1', port: 0, maxConnections: 16, maxRequestBytes: 16 * 1024 * 1024, ...opts },
    {
      clusterId: 'jobcompd-test',
      credentials,
      maxRecordsBytes: 64 * 1024 * 1024,
      producers: new ProducerState(),
      offsets: new Map(),
      commit: async (batch) => {
        await beforeCommit?.();
        records.push(...batch);
        for (const w of waiters.splice(0)) {
          if (records.length >= w.n) w.resolve();
          else waiters.push(w);
        }
      },
      events: {
        unsupportedCompression: (codec) => events.push({ kind: 'unsupported-compression', detail: codec }),
        refusedBatch: (_topic, code) => events.push({ kind: 'refused-batch', detail: code }),
        unsupportedRequest: (apiKey, apiVersion) => events.push({ kind: 'unsupported-request', detail: `${apiKey}v${apiVersion}` }),
        authenticationFailed: (user) => events.push({ kind: 'authentication-failed', detail: user ?? '' }),
        refused: () => undefined, // counted by the listener itself (listener.refusals)
      },
    },
    pino({ base: null }, sink),
  );
  return {
    listener,
    bootstrap: `127.0.0.1:${listener.port}`,
    records,
    events,
    logLines,
    waitForRecords: (n) =>
      new Promise((resolve) => {
        if (records.length >= n) resolve();
        else waiters.push({ n, resolve });
      }),
  };
}
