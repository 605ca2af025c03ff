// The Kafka listener (docs/kafka-listener.md): a TCP server that is the broker of Slurm's
// jobcomp/kafka plugin. Each connection's bytes are cut into frames (MaxRequestBytes),
// answered by kafka-session.ts, and the answers written in request order while later
// requests of the same connection are already being committed (a producer pipelines up
// to five). A frame that does not parse closes its connection with a log line.

import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { KafkaProtocolError, errorMessage } from '../errors';
import { FrameReader, frame } from '../kafka-protocol/frame';
import { answerRequest, type KafkaSessionContext } from './kafka-session';

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
  private readonly connections = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly opts: KafkaListenerOptions,
    private readonly context: KafkaSessionContext,
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
    const listener = new KafkaListener(server, opts, { ...context, broker: { nodeId: 0, host: opts.host, port } }, log);
    server.on('connection', (socket) => listener.serve(socket));
    return listener;
  }

  get port(): number {
    return this.context.broker.port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.connections) socket.end();
    await closed;
  }

  private serve(socket: Socket): void {
    this.connections.add(socket);
    socket.setNoDelay(true);
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const frames = new FrameReader(this.opts.maxRequestBytes);
    let tail: Promise<void> = Promise.resolve();
    let pending = 0;
    const fail = (err: unknown): void => {
      const code = err instanceof KafkaProtocolError ? err.code : 'E_KAFKA_INTERNAL';
      this.log.warn({ logEvent: 'kafka.connection-closed', code, peer, err: errorMessage(err) }, 'kafka listener: closing a connection whose request cannot be read');
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
      for (const request of received) {
        this.opts.observeRequest?.(request);
        const answer = answerRequest(request, this.context);
        answer.catch(() => undefined); // awaited in order below; this only marks it handled meanwhile
        pending++;
        if (pending >= MAX_PENDING_REQUESTS) socket.pause();
        tail = tail.then(async () => {
          try {
            const response = await answer;
            if (response !== undefined && !socket.destroyed) socket.write(frame(response));
          } catch (err) {
            fail(err);
          } finally {
            pending--;
            if (pending < MAX_PENDING_REQUESTS && !socket.destroyed) socket.resume();
          }
        });
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.connections.delete(socket));
  }
}
