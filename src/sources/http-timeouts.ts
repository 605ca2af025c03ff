// The request deadlines every HTTP listener of jobcompd has ([http] and [admin]): a client
// must send its whole request within RequestTimeout, so slow or idle clients cannot hold
// connections for ever.

import { createServer, type RequestListener, type Server } from 'node:http';

export function createBoundedServer(requestTimeoutMs: number, maxConnections: number, listener: RequestListener): Server {
  // Node checks request timeouts every connectionsCheckingInterval (30 s by default).
  const server = createServer({ connectionsCheckingInterval: Math.min(1000, requestTimeoutMs) }, listener);
  server.requestTimeout = requestTimeoutMs;
  server.headersTimeout = Math.min(requestTimeoutMs, 60_000);
  server.maxConnections = maxConnections;
  return server;
}
