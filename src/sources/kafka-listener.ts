// The Kafka listener (docs/kafka-listener.md): a TCP server that is the broker of Slurm's
// jobcomp/kafka plugin. Each connection's bytes are cut into frames (MaxRequestBytes),
// answered by kafka-session.ts, and the answers written in request order while later
// requests of the same connection are already being committed (a producer pipelines up
// to five). A frame that does not parse closes its connection with a log line.

import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { KafkaProtocolCodes, KafkaProtocolError, errorMessage } from '../errors';
import type { Ingest } from '../ingest';
import { kafkaErrorName } from '../kafka-protocol/api-keys';
import { FrameReader, frame } from '../kafka-protocol/frame';
import { ProducerState } from '../kafka-protocol/producer-state';
import { answerRequest, newConnectionState, type KafkaSessionContext, type KafkaSessionEvents } from './kafka-session';

export interface KafkaListenerOptions {
  host: string;
  /** 0: any free port (tests) */
  port: number;
  maxConnections: number;
  maxRequestBytes: number;
  /** sees every request frame as received (tools/kafka-protocol-capture.ts records golden fixtures with it) */
  observeRequest?: (request: Buffer) => void;
}

/** Requests of one connection whose answer is not written yet: the bound of a connection's pipeline. */
const MAX_PENDING_REQUESTS = 16;

export class KafkaListener {
  /** each connection and the promise of its last answer */
  private readonly connections = new Map<Socket, { tail: Promise<void> }>();

  /**
   * `refusals`: since start, by reason: Kafka's name of an error answered (CORRUPT_MESSAGE...),
   * or jobcompd's code of a connection it closed (E_KAFKA_MALFORMED...). Both sets are fixed,
   * so the map stays small whatever clients send.
   */
  private constructor(
    private readonly server: Server,
    private readonly opts: KafkaListenerOptions,
    private readonly context: KafkaSessionContext,
    readonly refusals: Map<string, number>,
    private readonly log: Logger,
  ) {}

  static async listen(opts: KafkaListenerOptions, context: Omit<KafkaSessionContext, 'broker'>, log: Logger): Promise<KafkaListener> {
    const server = createServer();
    server.maxConnections = opts.maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : opts.port;
    const refusals = new Map<string, number>();
    const events: KafkaSessionEvents = {
      ...context.events,
      refused: (errorCode) => {
        countRefusal(refusals, kafkaErrorName(errorCode));
        context.events.refused(errorCode);
      },
    };
    const listener = new KafkaListener(server, opts, { ...context, events, broker: { nodeId: 0, host: opts.host, port } }, refusals, log);
    server.on('connection', (socket) => listener.serve(socket));
    server.on('drop', (peer) => listener.refuseConnection(`${peer?.remoteAddress ?? '?'}:${peer?.remotePort ?? '?'}`));
    return listener;
  }

  /** The daemon's listener: every record goes through `ingest` (committed, or quarantined) before the answer. */
  static forIngest(
    ingest: Ingest,
    opts: KafkaListenerOptions,
    clusterName: string,
    credentials: { user: string; password: string } | undefined,
    log: Logger,
  ): Promise<KafkaListener> {
    return KafkaListener.listen(
      opts,
      {
        clusterId: `jobcompd-${clusterName}`,
        credentials,
        maxRecordsBytes: opts.maxRequestBytes,
        producers: new ProducerState(),
        offsets: new Map(),
        commit: async (records) => {
          await Promise.all(records.map((r) => ingest.acceptProduced({ topic: r.topic, key: r.key, value: r.value, headers: r.headers })));
        },
        events: loggedEvents(log),
      },
      log,
    );
  }

  get port(): number {
    return this.context.broker.port;
  }

  /** Stop accepting; requests already received are committed and answered first. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.connections.keys()) socket.pause();
    await Promise.all([...this.connections.values()].map((c) => c.tail));
    for (const socket of this.connections.keys()) socket.end();
    await closed;
  }

  /** A connection beyond MaxConnections, which node:net has already closed. */
  private refuseConnection(peer: string): void {
    const code = KafkaProtocolCodes.tooManyConnections;
    countRefusal(this.refusals, code);
    this.log.warn({ logEvent: 'kafka-listener.connection-refused', code, peer, maxConnections: this.opts.maxConnections }, 'kafka listener: a connection beyond MaxConnections was closed');
  }

  private serve(socket: Socket): void {
    const connection = { tail: Promise.resolve() };
    const state = newConnectionState();
    this.connections.set(socket, connection);
    socket.setNoDelay(true);
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const frames = new FrameReader(this.opts.maxRequestBytes);
    let pending = 0;
    /**
     * Frames received but not started: one chunk can hold hundreds of small requests, each
     * of which may decompress to MaxRequestBytes of records, so no more than
     * MAX_PENDING_REQUESTS are handled at once and the socket is not read meanwhile.
     */
    const waiting: Buffer[] = [];
    const start = (request: Buffer): void => {
      this.opts.observeRequest?.(request);
      const answer = answerRequest(request, this.context, state);
      answer.catch(() => undefined); // awaited in order below; this only marks it handled meanwhile
      pending++;
      connection.tail = connection.tail.then(async () => {
        try {
          const response = await answer;
          if (response !== undefined && !socket.destroyed) socket.write(frame(response));
        } catch (err) {
          fail(err);
        } finally {
          pending--;
          startWaiting();
        }
      });
    };
    const startWaiting = (): void => {
      if (socket.destroyed) {
        waiting.length = 0;
        return;
      }
      while (waiting.length > 0 && pending < MAX_PENDING_REQUESTS) start(waiting.shift() as Buffer);
      if (waiting.length > 0 || pending >= MAX_PENDING_REQUESTS) socket.pause();
      else socket.resume();
    };
    const fail = (err: unknown): void => {
      if (socket.destroyed) return; // one closing per connection, however many of its requests fail
      const code = err instanceof KafkaProtocolError ? err.code : KafkaProtocolCodes.internal;
      countRefusal(this.refusals, code);
      this.log.warn({ logEvent: 'kafka-listener.connection-closed', code, peer, err: errorMessage(err) }, 'kafka listener: closing a connection whose request cannot be read');
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => {
      let received: Buffer[];
      try {
        received = frames.push(chunk);
      } catch (err) {
        fail(err);
        return;
      }
      waiting.push(...received);
      startWaiting();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.connections.delete(socket));
  }
}

function countRefusal(refusals: Map<string, number>, reason: string): void {
  refusals.set(reason, (refusals.get(reason) ?? 0) + 1);
}

function loggedEvents(log: Logger): KafkaSessionEvents {
  return {
    // counted by the listener; the events above log what the operator must act on
    refused: () => undefined,
    unsupportedCompression: (codec, clientId) =>
      log.warn(
        { logEvent: 'kafka-listener.unsupported-compression', codec, clientId },
        `a producer sent records compressed with ${codec}, which Kafka does not define: set compression.type (compression.codec) to none, gzip, snappy, lz4 or zstd in its configuration (for jobcomp/kafka: the JobCompLoc file)`,
      ),
    refusedBatch: (topic, code, reason, clientId) => log.warn({ logEvent: 'kafka-listener.batch-refused', topic, code, err: reason, clientId }, 'a record batch was refused; the producer was told why'),
    authenticationFailed: (user, clientId) => log.warn({ logEvent: 'kafka-listener.authentication-failed', user, clientId }, 'a client failed SASL/PLAIN authentication'),
    unsupportedRequest: (apiKey, apiVersion, clientId) =>
      log.info({ logEvent: 'kafka-listener.unsupported-request', apiKey, apiVersion, clientId }, 'a request of an API or version the listener does not serve was answered with UNSUPPORTED_VERSION'),
  };
}
