// Resource limits against slow and greedy clients: a sender that stops (or trickles) must be
// cut off within its timeout, and more connections than allowed must not stop the daemon
// from serving once they are gone. Slurm's elasticsearch plugin has no timeout of its own,
// so a request jobcompd leaves hanging stalls slurmctld's sender thread; the hook waits
// for its answer only timeout_ms, but a hung connection still holds a slot.
//
// No broker is needed: these are about the sources; records stay in SQLite.

import { request } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { runCli, tempDir, writeFiles } from '../helpers/cli';
import { post, startDaemon, type DaemonOptions, type DaemonProcess } from '../helpers/daemon';
import { numberedBodies } from '../helpers/records';
import { installHook, runHook } from '../helpers/hook';
import { Rng } from '../helpers/random';
import { envBlock, frame, isAlive, waitUntil } from './fuzz-kit';
import { jobcompEnv } from './hook-inputs';

jest.setTimeout(60_000);

const running: DaemonProcess[] = [];

async function daemon(opts: Partial<DaemonOptions>): Promise<DaemonProcess> {
  const d = await startDaemon({ bootstrapServers: '127.0.0.1:1', clusterName: 'limits', ...opts });
  running.push(d);
  return d;
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop('SIGKILL')));
});

interface Watched {
  socket: Socket;
  received: Buffer;
  /** ms after `since` at which the server closed it (undefined: still open) */
  closedAfterMs: number | undefined;
  /** resolves with closedAfterMs when the connection closes */
  closed: Promise<number>;
  since: number;
}

/** A connection whose close (by the server) and received bytes we watch. */
function watch(socket: Socket): Watched {
  const since = Date.now();
  let w: Watched | undefined;
  const closed = new Promise<number>((resolve) =>
    socket.on('close', () => {
      const watched = w as Watched;
      watched.closedAfterMs ??= Date.now() - since;
      resolve(watched.closedAfterMs);
    }),
  );
  w = { socket, received: Buffer.alloc(0), closedAfterMs: undefined, closed, since };
  const watched = w;
  socket.on('data', (c: Buffer) => (watched.received = Buffer.concat([watched.received, c])));
  socket.on('error', () => undefined);
  return watched;
}

/** Resolves with `value` after `ms`: the deadline of a wait, never a wait of its own. */
function deadline<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms).unref());
}

/** Resolves once `count` of these connections were closed, or at `maxMs` (the caller asserts). */
function closedCount(ws: Watched[], count: number, maxMs: number): Promise<void> {
  let seen = 0;
  const enough = new Promise<void>((resolve) => {
    if (count <= 0) resolve();
    for (const w of ws) void w.closed.then(() => (++seen >= count ? resolve() : undefined));
  });
  return Promise.race([enough, deadline(maxMs, undefined)]);
}

function openTcp(port: number): Promise<Watched> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(port, '127.0.0.1');
    s.once('connect', () => resolve(watch(s)));
    s.once('error', reject);
  });
}

function openUnix(path: string): Promise<Watched> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(path);
    s.once('connect', () => resolve(watch(s)));
    s.once('error', reject);
  });
}

/** Wait until the server closed the connection or `maxMs` passed. */
function closedWithin(w: Watched, maxMs: number): Promise<number | undefined> {
  return Promise.race([w.closed, deadline<undefined>(w.since + maxMs - Date.now(), undefined)]);
}

/** Send `bytes` one at a time, every `everyMs`, until the socket closes or they run out. */
function trickle(w: Watched, bytes: Buffer, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (w.closedAfterMs !== undefined || w.socket.destroyed || i >= bytes.length) {
      clearInterval(timer);
      return;
    }
    w.socket.write(bytes.subarray(i, i + 1));
    i += 1;
  }, everyMs);
  w.socket.once('close', () => clearInterval(timer));
}

const HTTP_HEAD = 'POST /slurm/_doc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 800\r\n\r\n';

describe('[http] RequestTimeout=1', () => {
  // "Seconds a client has to send its whole request" (docs/configuration.md). Node checks
  // request and header timeouts only every server.connectionsCheckingInterval (30 s by
  // default), so without a shorter interval a stalled client is cut off up to 30 s late.
  const conf = { extraConf: '[http]\nRequestTimeout=1' };
  const LIMIT_MS = 3500;

  it('a client that sends the headers and then nothing is answered 408 or closed within a few seconds', async () => {
    const d = await daemon(conf);
    const w = await openTcp(d.port);
    w.socket.write(HTTP_HEAD);
    const closed = await closedWithin(w, LIMIT_MS);
    const answer = w.received.toString('latin1').split('\r\n')[0] ?? '';
    expect({ closedAfterMs: closed === undefined ? `still open after ${LIMIT_MS} ms` : 'closed', answer: answer === '' || /^HTTP\/1\.1 408/.test(answer) ? 'none or 408' : answer }).toEqual({ closedAfterMs: 'closed', answer: 'none or 408' });
    expect(isAlive(d)).toBe(true);
  });

  it('a client that sends half the headers and then nothing is cut off within a few seconds', async () => {
    const d = await daemon(conf);
    const w = await openTcp(d.port);
    w.socket.write('POST /slurm/_doc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le');
    const closed = await closedWithin(w, LIMIT_MS);
    expect(closed === undefined ? `still open after ${LIMIT_MS} ms` : 'closed').toBe('closed');
  });

  it('a client that trickles its body (one byte every 200 ms) is cut off within a few seconds', async () => {
    const d = await daemon(conf);
    const w = await openTcp(d.port);
    w.socket.write(HTTP_HEAD);
    trickle(w, Buffer.alloc(800, 0x20), 200);
    const closed = await closedWithin(w, LIMIT_MS);
    expect(closed === undefined ? `still open after ${LIMIT_MS} ms` : 'closed').toBe('closed');
  });

  it('the admin endpoint has the same deadline: a client that sends half the headers is cut off within a few seconds', async () => {
    const d = await daemon(conf);
    const w = await openTcp(d.adminPort);
    w.socket.write('GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAcc');
    const closed = await closedWithin(w, LIMIT_MS);
    expect(closed === undefined ? `still open after ${LIMIT_MS} ms` : 'closed').toBe('closed');
  });

  it('meanwhile, other clients are served', async () => {
    const d = await daemon(conf);
    const stalled = await openTcp(d.port);
    stalled.socket.write(HTTP_HEAD);
    const [body] = numberedBodies(1, 80_001);
    const r = await post(d.url, body as Buffer);
    expect(r.status).toBe(201);
    stalled.socket.destroy();
  });
});

describe('[http] MaxBufferedBytes=1500 (MaxBodyBytes=1000)', () => {
  // What all requests hold in memory at once is bounded, whatever MaxConnections x MaxBodyBytes.
  it('a request that would pass the budget is answered 503 (the sender retries); once the holder is gone, it is accepted', async () => {
    const d = await daemon({ httpConf: 'MaxBodyBytes=1000\nMaxBufferedBytes=1500' });
    const holder = await openTcp(d.port);
    holder.socket.write('POST /slurm/_doc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{"jobid":');
    const [body] = numberedBodies(1, 80_100);
    const padded = Buffer.concat([body as Buffer, Buffer.alloc(900 - (body as Buffer).length, 0x20)]);
    const refused = await post(d.url, padded);
    expect({ status: refused.status, type: (JSON.parse(refused.body) as { error?: { type?: string } }).error?.type }).toEqual({ status: 503, type: 'busy' });
    holder.socket.destroy();
    await waitUntil(async () => (await post(d.url, padded)).status === 201, 10_000, 'the budget given back');
  });

  it('a configuration where one body could not fit is refused', () => {
    const dir = tempDir();
    writeFiles(dir, { 'rdkafka.conf': 'bootstrap.servers=127.0.0.1:1\n', 'jobcompd.conf': 'ClusterName=x\nJobCompLoc=rdkafka.conf\n[http]\nMaxBodyBytes=2000\nMaxBufferedBytes=1000\n' });
    const r = runCli(['check-config', '-c', join(dir, 'jobcompd.conf')]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('jobcompd.conf: [http] MaxBufferedBytes');
    writeFiles(dir, { 'jobcompd.conf': 'ClusterName=x\nJobCompLoc=rdkafka.conf\n[http]\nMaxBodyBytes=2000\nMaxBufferedBytes=2000\n' });
    expect(runCli(['check-config', '-c', join(dir, 'jobcompd.conf')]).code).toBe(0);
  });
});

describe('[jobcompd] MaxQuarantineBytes=2000', () => {
  it('bad inputs are quarantined until the quota; then answered 503 (kept by the sender), while good records are still accepted', async () => {
    const d = await daemon({ extraConf: 'MaxQuarantineBytes=2000' });
    const bad = Buffer.from('x'.repeat(800));
    expect((await post(d.url, bad)).status).toBe(201);
    expect((await post(d.url, Buffer.from('y'.repeat(800)))).status).toBe(201);
    const over = await post(d.url, Buffer.from('z'.repeat(800)));
    expect({ status: over.status, code: (JSON.parse(over.body) as { error?: { code?: string } }).error?.code }).toEqual({ status: 503, code: 'E_QUARANTINE_FULL' });
    expect((await post(d.url, numberedBodies(1, 80_200)[0] as Buffer)).status).toBe(201);
    expect(JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout)).toMatchObject({ quarantined: 2 });
  });
});

describe('[hook] Timeout=1', () => {
  // "Seconds a hook connection may take to send its message" (docs/configuration.md).
  const conf = { hookConf: 'Timeout=1' };

  it('a hook client that sends half a message and waits is closed after about Timeout, without an answer', async () => {
    const d = await daemon(conf);
    const msg = frame(envBlock(jobcompEnv(new Rng(1), 81_001)));
    const w = await openUnix(d.hookSocket);
    w.socket.write(msg.subarray(0, Math.floor(msg.length / 2)));
    const closed = await closedWithin(w, 5000);
    expect(closed).toBeDefined();
    expect(closed as number).toBeGreaterThanOrEqual(900);
    expect(closed as number).toBeLessThan(2500);
    expect(w.received.length).toBe(0);
    expect(isAlive(d)).toBe(true);
  });

  it('a hook client that sends only part of the header is closed after about Timeout', async () => {
    const d = await daemon(conf);
    const w = await openUnix(d.hookSocket);
    w.socket.write('JCH');
    const closed = await closedWithin(w, 5000);
    expect(closed).toBeDefined();
    expect(closed as number).toBeLessThan(2500);
  });

  it('a hook client that trickles its message (one byte every 300 ms) is cut off after about Timeout, not kept for the whole message', async () => {
    const d = await daemon(conf);
    const msg = frame(envBlock(jobcompEnv(new Rng(2), 81_002)));
    const w = await openUnix(d.hookSocket);
    trickle(w, msg, 300);
    const closed = await closedWithin(w, 4000);
    expect(closed === undefined ? 'still open after 4 s (the timeout is an idle timeout)' : 'closed').toBe('closed');
  });

  it('a complete message is still answered', async () => {
    const d = await daemon(conf);
    const w = await openUnix(d.hookSocket);
    w.socket.write(frame(envBlock(jobcompEnv(new Rng(3), 81_003))));
    await closedWithin(w, 3000);
    expect(String.fromCharCode(w.received[0] ?? 0)).toBe('A');
  });
});

describe('[http] MaxConnections=20', () => {
  it('100 idle connections: the extra ones are closed, the daemon keeps serving, and once they go a POST gets 201', async () => {
    const d = await daemon({ extraConf: '[http]\nMaxConnections=20' });
    const idle = await Promise.all(Array.from({ length: 100 }, () => openTcp(d.port).catch(() => undefined)));
    const opened = idle.filter((w): w is Watched => w !== undefined);
    await closedCount(opened, opened.length - 20, 5000);
    const stillOpen = opened.filter((w) => w.closedAfterMs === undefined);
    const refused = 100 - stillOpen.length;
    // The daemon refuses what is over the limit...
    expect(stillOpen.length).toBeLessThanOrEqual(20);
    expect(refused).toBeGreaterThanOrEqual(80);

    // ...and keeps serving its other sources (the hook socket, the admin endpoint) meanwhile.
    const hook = await openUnix(d.hookSocket);
    hook.socket.write(frame(envBlock(jobcompEnv(new Rng(4), 82_001))));
    await closedWithin(hook, 3000);
    expect(String.fromCharCode(hook.received[0] ?? 0)).toBe('A');
    const health = await new Promise<number>((resolve, reject) => {
      request(`${d.adminUrl}/healthz`, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(health).toBeGreaterThan(0);

    // While the slots are held, an HTTP client's connection is closed without an answer:
    // Slurm's plugin sees a failed POST, keeps the record and sends it again later.
    const during = await post(d.url, numberedBodies(1, 82_002)[0] as Buffer).then(
      (r) => ({ answered: r.status }),
      (err: NodeJS.ErrnoException) => ({ refused: err.code }),
    );
    expect(during).toEqual({ refused: expect.stringMatching(/^(ECONNRESET|EPIPE)$/) });

    // the daemon sees those closes a moment later: the first POST answered is a 201
    for (const w of stillOpen) w.socket.destroy();
    await Promise.all(stillOpen.map((w) => w.closed));
    const body = numberedBodies(1, 82_003)[0] as Buffer;
    let after: { status: number } | undefined;
    await waitUntil(
      async () => (after = await post(d.url, body).catch(() => undefined)) !== undefined,
      5000,
      'a POST answered once the idle connections are gone',
    );
    expect(after?.status).toBe(201);
    expect(isAlive(d)).toBe(true);
  });

  it('idle connections that hold every slot are closed by the daemon within RequestTimeout', async () => {
    // A client that connects and sends nothing holds a slot until the headers timeout
    // (min(RequestTimeout, 60 s)), checked every connectionsCheckingInterval.
    const d = await daemon({ extraConf: '[http]\nMaxConnections=20\nRequestTimeout=1' });
    const idle = (await Promise.all(Array.from({ length: 20 }, () => openTcp(d.port).catch(() => undefined)))).filter((w): w is Watched => w !== undefined);
    await closedCount(idle, idle.length, 4000);
    const open = idle.filter((w) => w.closedAfterMs === undefined).length;
    for (const w of idle) w.socket.destroy();
    expect(open === 0 ? 'all closed' : `${open} of 20 idle connections still open after 4 s`).toBe('all closed');
  });
});

describe('[hook] MaxConnections=5', () => {
  it('connections over the limit are closed at once; a hook run meanwhile spools its record, which is imported; once they go, the socket answers', async () => {
    const d = await daemon({ hookConf: 'MaxConnections=5\nTimeout=30' });
    const held = await Promise.all(Array.from({ length: 20 }, () => openUnix(d.hookSocket)));
    // the 15 over the limit are closed by the daemon; the 5 within it stay open (Timeout=30)
    const closed = await Promise.all(held.map((w) => closedWithin(w, 2000)));
    expect(closed.filter((c) => c !== undefined)).toHaveLength(15);

    // the real hook, as slurmctld would run it now: no slot, so it spools and exits 0
    const hook = installHook(d.dir, 'jobcomp-hook', { socket: d.hookSocket, spool: d.spoolDir, timeoutMs: 500 });
    const run = await runHook(hook, new Map(jobcompEnv(new Rng(5), 83_001)));
    expect(run.code).toBe(0);
    await d.waitForLog((l) => l.logEvent === 'record.committed' && l.source === 'spool' && l.jobId === 83_001, 'the spooled record imported');

    for (const w of held) w.socket.destroy();
    // the daemon sees those closes a moment later: wait until a connection is served again
    let probe: Watched | undefined;
    for (let attempt = 0; attempt < 50 && String.fromCharCode(probe?.received[0] ?? 0) !== 'A'; attempt++) {
      probe = await openUnix(d.hookSocket);
      probe.socket.write(frame(envBlock(jobcompEnv(new Rng(6), 83_002))));
      await closedWithin(probe, 2000);
    }
    expect(String.fromCharCode(probe?.received[0] ?? 0)).toBe('A');
    const after = await runHook(hook, new Map(jobcompEnv(new Rng(7), 83_003)));
    expect(after.code).toBe(0);
    await d.waitForLog((l) => l.logEvent === 'record.committed' && l.source === 'socket' && l.jobId === 83_003, 'answered over the socket');
    expect(isAlive(d)).toBe(true);
  });
});
