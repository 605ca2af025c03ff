// The operator's endpoint, on loopback by default ([admin] Listen):
//   GET /status   what `jobcompd status` shows, as JSON
//   GET /metrics  Prometheus text format
//   GET /healthz  200 while records can be accepted (even with Kafka down: they are kept),
//                 503 when the state file cannot be written or the daemon is stopping

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { ListenAddress } from '../../config/daemon-conf';
import { errorMessage } from '../../errors';
import { createBoundedServer } from '../../sources/http-timeouts';
import type { StatusReport } from '../status';

/** A few scrapers and operators; more are refused rather than let them pile up. */
const MAX_CONNECTIONS = 64;

export interface Health {
  /** ok: accepting and delivering; degraded: accepting, Kafka not confirming; failing: not accepting */
  status: 'ok' | 'degraded' | 'failing';
  reason?: string;
}

export interface AdminSources {
  status(): StatusReport;
  health(): Health;
  metrics: Registry;
}

export class AdminServer {
  private constructor(private readonly server: Server) {}

  /** `requestTimeoutMs`: as [http] RequestTimeout, so a client that trickles its request cannot hold a connection. */
  static async listen(listen: ListenAddress, sources: AdminSources, requestTimeoutMs: number): Promise<AdminServer> {
    const server = createBoundedServer(requestTimeoutMs, MAX_CONNECTIONS, (req, res) => void handle(req, res, sources));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new AdminServer(server);
  }

  get address(): ListenAddress {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    return closed;
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, sources: AdminSources): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  try {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'application/json', JSON.stringify({ error: 'GET only' }));
    if (path === '/status') return send(res, 200, 'application/json', JSON.stringify(sources.status()));
    if (path === '/metrics') return send(res, 200, sources.metrics.contentType, await sources.metrics.metrics());
    if (path === '/healthz') {
      const health = sources.health();
      return send(res, health.status === 'failing' ? 503 : 200, 'application/json', JSON.stringify(health));
    }
    return send(res, 404, 'application/json', JSON.stringify({ error: 'try /status, /metrics or /healthz' }));
  } catch (err) {
    return send(res, 500, 'application/json', JSON.stringify({ error: errorMessage(err) }));
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
