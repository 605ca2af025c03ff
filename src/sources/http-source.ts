// An HTTP endpoint that Slurm's jobcomp/elasticsearch plugin can POST to unchanged
// (JobCompLoc=http://127.0.0.1:9200/slurm/_doc, or any other path: the plugin uses the
// URL as given). The plugin counts only 200/201 as success and retries anything else
// every 30 s, forever; it has no timeout, so a request left hanging stalls slurmctld's
// sender thread. Hence:
//   - 201 only after the record is committed to SQLite;
//   - input that cannot be mapped is committed to quarantine and also answered 201
//     (with "result":"quarantined"): answering an error would make Slurm resend the same
//     bytes every 30 s forever, and the record is already safe;
//   - 503 when nothing could be committed (disk full...): Slurm keeps the record, retries;
//   - every request is answered or cut off within RequestTimeout (to send it) plus
//     CommitTimeout (to commit it): a commit stalled by a slow disk is answered 503, and
//     if it lands afterwards, Slurm's resend 30 s later is recognised as a duplicate;
//   - with [http] BasicAuthUser/BasicAuthPassword, a POST without them gets 401 (the plugin
//     sends them when JobCompLoc is http://user:password@host:port/...).

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { ListenAddress } from '../config/daemon-conf';
import { StateError, errorMessage, failedRecord } from '../errors';
import type { AcceptResult, Ingest } from '../ingest';
import { JobEvent, eventName } from '../record/job-record';
import { ByteBudget } from './byte-budget';
import { createBoundedServer } from './http-timeouts';

/** At most one http.auth-refused line per this interval (docs/operations.md). */
const AUTH_LOG_INTERVAL_MS = 60_000;

export interface HttpSourceOptions {
  listen: ListenAddress;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  commitTimeoutMs: number;
  maxConnections: number;
  /** bytes of request bodies held in memory at once, across all connections */
  maxBufferedBytes: number;
  basicAuth: { user: string; password: string } | undefined;
}

export class HttpSource {
  private readonly server: Server;
  private accepting = true;
  /** 401s since the last http.auth-refused line */
  private readonly refusals = { count: 0, loggedAt: 0 };
  private readonly buffered: ByteBudget;

  private constructor(
    private readonly ingest: Ingest,
    private readonly opts: HttpSourceOptions,
    private readonly log: Logger,
  ) {
    this.server = createBoundedServer(opts.requestTimeoutMs, opts.maxConnections, (req, res) => this.handle(req, res));
    this.buffered = new ByteBudget(opts.maxBufferedBytes);
    // Answer "Expect: 100-continue" (curl sends it for bodies over 1 MiB) ourselves, so an
    // oversized body is refused before it is sent.
    this.server.on('checkContinue', (req, res) => {
      if (this.tooLarge(req)) this.refuseTooLarge(res);
      else {
        res.writeContinue();
        this.handle(req, res);
      }
    });
  }

  static async listen(ingest: Ingest, opts: HttpSourceOptions, log: Logger): Promise<HttpSource> {
    const source = new HttpSource(ingest, opts, log);
    await new Promise<void>((resolve, reject) => {
      source.server.once('error', reject);
      source.server.listen(opts.listen.port, opts.listen.host, () => {
        source.server.off('error', reject);
        resolve();
      });
    });
    return source;
  }

  get address(): ListenAddress {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Stop accepting connections; requests already being committed are answered first. */
  async close(): Promise<void> {
    this.accepting = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    await closed;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'GET' && path === '/') {
      send(res, 200, { name: 'jobcompd', tagline: 'jobcomp/elasticsearch-compatible endpoint publishing to Kafka' });
      return;
    }
    if (!this.authorized(req)) {
      this.logRefusal(req.socket.remoteAddress);
      send(res, 401, esError('security_exception', 'missing or wrong credentials', 401), { 'WWW-Authenticate': 'Basic realm="jobcompd"' });
      return;
    }
    if (req.method !== 'POST' && req.method !== 'PUT') {
      res.setHeader('Allow', 'POST, PUT');
      send(res, 405, esError('method_not_allowed', `${req.method ?? ''} is not supported; POST job records`, 405));
      return;
    }
    if (!this.accepting) {
      send(res, 503, esError('shutting_down', 'jobcompd is shutting down; retry later', 503), { 'Retry-After': '30', Connection: 'close' });
      return;
    }
    if (this.tooLarge(req)) {
      this.refuseTooLarge(res);
      return;
    }
    this.readBody(req, res, (body) => this.accept(body, path, res));
  }

  private authorized(req: IncomingMessage): boolean {
    const auth = this.opts.basicAuth;
    if (!auth) return true;
    const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    // Digests of equal length, compared in constant time: neither the content nor the
    // length of the credentials shows in the time a refusal takes.
    const expected = createHash('sha256').update(`${auth.user}:${auth.password}`, 'utf8').digest();
    const given = createHash('sha256').update(Buffer.from(m[1] ?? '', 'base64')).digest();
    return timingSafeEqual(given, expected);
  }

  /**
   * One log line per AUTH_LOG_INTERVAL_MS at most, with the count of refusals since the
   * last: a client retrying with wrong credentials (Slurm retries every 30 s, an attacker
   * far more often) must not fill the disk with log lines.
   */
  private logRefusal(remote: string | undefined): void {
    this.refusals.count += 1;
    const now = Date.now();
    if (now - this.refusals.loggedAt < AUTH_LOG_INTERVAL_MS) return;
    this.log.error(
      { logEvent: 'http.auth-refused', remote, refused: this.refusals.count },
      'POST without valid basic auth refused ([http] BasicAuthUser); the sender keeps its record and retries',
    );
    this.refusals.count = 0;
    this.refusals.loggedAt = now;
  }

  private tooLarge(req: IncomingMessage): boolean {
    const length = Number(req.headers['content-length'] ?? 0);
    return length > this.opts.maxBodyBytes;
  }

  private refuseBusy(res: ServerResponse): void {
    this.log.warn({ logEvent: 'http.busy', maxBufferedBytes: this.opts.maxBufferedBytes }, 'request bodies in memory reached [http] MaxBufferedBytes; the sender keeps its record and retries');
    send(res, 503, esError('busy', `request bodies in memory reached MaxBufferedBytes=${this.opts.maxBufferedBytes}; retry later`, 503), { 'Retry-After': '30', Connection: 'close' });
  }

  private refuseTooLarge(res: ServerResponse): void {
    this.log.error({ logEvent: 'http.body-too-large', maxBodyBytes: this.opts.maxBodyBytes }, 'request body larger than [http] MaxBodyBytes refused; raise the limit to accept it');
    send(res, 413, esError('content_too_long', `body larger than MaxBodyBytes=${this.opts.maxBodyBytes}`, 413), { Connection: 'close' });
  }

  /**
   * The body, within MaxBodyBytes and within the bytes all requests may hold at once
   * (MaxBufferedBytes): its Content-Length is taken from that budget before it is read, a
   * body without one as it arrives; over the budget the sender is told to retry (503).
   * The bytes are given back once the answer is sent or the client is gone.
   */
  private readBody(req: IncomingMessage, res: ServerResponse, done: (body: Buffer) => void): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let held = Number(req.headers['content-length'] ?? 0);
    if (!this.buffered.take(held)) {
      this.refuseBusy(res);
      return;
    }
    res.on('close', () => this.buffered.give(held));
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > this.opts.maxBodyBytes) {
        refused = true;
        this.refuseTooLarge(res);
        req.destroy();
        return;
      }
      if (size > held) {
        if (!this.buffered.take(size - held)) {
          refused = true;
          this.refuseBusy(res);
          req.destroy();
          return;
        }
        held = size;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!refused) done(Buffer.concat(chunks, size));
    });
    req.on('error', () => undefined); // the client went away; nothing was acknowledged
  }

  private accept(body: Buffer, path: string, res: ServerResponse): void {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      const reason = `not committed within CommitTimeout=${this.opts.commitTimeoutMs / 1000}s (the state file's disk is slow); retry later`;
      this.log.error({ logEvent: 'http.commit-timeout', ...bodyRecord(body), status: 503, commitTimeoutMs: this.opts.commitTimeoutMs }, 'commit took longer than [http] CommitTimeout; the sender keeps its record and retries');
      send(res, 503, esError('commit_timeout', reason, 503), { 'Retry-After': '30' });
    }, this.opts.commitTimeoutMs);
    this.ingest.acceptElasticsearch(body, 'http').then(
      (result) => {
        clearTimeout(timer);
        if (timedOut) this.log.warn({ logEvent: 'http.late-commit', ...bodyRecord(body), result: result.kind }, 'record committed after its sender was told to retry; the resend will be answered as a duplicate');
        send(res, 201, esCreated(result, path));
      },
      (err: unknown) => {
        clearTimeout(timer);
        const status = err instanceof StateError ? 503 : 500;
        this.log.error({ logEvent: 'http.not-accepted', ...failedRecord(err), err: errorMessage(err), status }, 'record not accepted; the sender keeps it and retries');
        send(res, status, esError('not_committed', errorMessage(err), status, err instanceof StateError ? err.code : undefined), { 'Retry-After': '30' });
      },
    );
  }
}

/**
 * Job id and event of a body for log lines written before it is mapped: the plugin writes
 * "jobid" first, and every body it sends is a job end record.
 */
function bodyRecord(body: Buffer): { jobId?: number; event: string } {
  const event = eventName(JobEvent.finish);
  const m = /^\s*\{\s*"jobid"\s*:\s*(\d+)/.exec(body.subarray(0, 64).toString('latin1'));
  return m ? { jobId: Number(m[1]), event } : { event };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The shape of an Elasticsearch index response, which is what the sender expects. */
function esCreated(result: AcceptResult, path: string): Record<string, unknown> {
  const _index = path.split('/').filter(Boolean)[0] ?? 'jobcompd';
  const _shards = { total: 1, successful: 1, failed: 0 };
  switch (result.kind) {
    case 'stored':
      return { _index, _id: `r${result.id}`, _version: 1, result: 'created', _shards, _seq_no: result.id, _primary_term: 1 };
    case 'duplicate':
      return { _index, _id: `r${result.id}`, _version: 1, result: 'duplicate', _shards };
    case 'quarantined':
      return { _index, _id: `q${result.id}`, _version: 1, result: 'quarantined', _shards, reason: { type: result.code, reason: result.reason } };
    case 'ignored':
      return { _index, result: 'ignored', _shards, reason: { type: 'ignored', reason: result.reason } };
  }
}

/** `code`: jobcompd's error code (docs/errors.md), when there is one. */
function esError(type: string, reason: string, status: number, code?: string): Record<string, unknown> {
  return { error: { type, reason, ...(code === undefined ? {} : { code }) }, status };
}
