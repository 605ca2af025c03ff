// The sd_notify(3) protocol against a real Unix datagram socket in NOTIFY_SOCKET, the way
// systemd runs a Type=notify unit: READY=1 once listening, WATCHDOG=1 pings when
// WATCHDOG_USEC is set, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 at SIGTERM.

import { connect } from 'node:net';
import { join } from 'node:path';
import { spawnCli, tempDir } from '../helpers/cli';
import { DaemonProcess, freePort, post, startDaemon, writeDaemonConfig } from '../helpers/daemon';
import { NotifySocket } from '../helpers/notify-socket';
import { numberedBodies } from '../helpers/records';

let notify: NotifySocket;
let d: DaemonProcess;

beforeAll(async () => {
  const dir = tempDir('jobcompd-notify-');
  notify = await NotifySocket.open(dir);
  // no broker: the daemon must still be ready (it keeps records until Kafka answers)
  d = await startDaemon({ bootstrapServers: '127.0.0.1:1', dir, env: { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '400000' } });
});

afterAll(async () => {
  if (d.proc.exitCode === null) await d.stop('SIGKILL');
  notify.close();
});

it('sends READY=1 with a status line once it is listening', async () => {
  const ready = await notify.waitFor((m) => m.startsWith('READY=1'));
  expect(ready).toMatch(/^READY=1\nSTATUS=backlog 0, delivered 0, quarantined 0$/);
  expect(notify.messages[0]).toBe(ready); // nothing before it
});

it('pings the watchdog at half of WATCHDOG_USEC', async () => {
  const pings = (): number => notify.messages.filter((m) => m === 'WATCHDOG=1').length;
  await notify.waitFor(() => pings() >= 3);
  expect(pings()).toBeGreaterThanOrEqual(3);
});

it('reports RELOADING=1 then READY=1 around a SIGHUP reload', async () => {
  const before = notify.messages.length;
  d.proc.kill('SIGHUP');
  await notify.waitFor((m) => m.startsWith('READY=1'), before);
  const after = notify.messages.slice(before).filter((m) => m !== 'WATCHDOG=1');
  expect(after[0]).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+$/);
  expect(after[1]).toMatch(/^READY=1\n/);
});

it('sends STOPPING=1 at SIGTERM and exits 0', async () => {
  const exit = await d.stop('SIGTERM');
  await notify.waitFor((m) => m.startsWith('STOPPING=1'));
  expect(exit.code).toBe(0);
});

it('at READY=1 every listener already accepts: HTTP commits a record, the hook socket and the admin endpoint connect', async () => {
  // its own daemon, started by hand: startDaemon() waits for the log line, READY=1 must suffice
  const dir = tempDir('jobcompd-notify-ready-');
  const socket = await NotifySocket.open(dir);
  const [port, adminPort] = [await freePort(), await freePort()];
  writeDaemonConfig(dir, port, adminPort, { bootstrapServers: '127.0.0.1:1' });
  const e = new DaemonProcess(spawnCli(['run', '-c', join(dir, 'jobcompd.conf')], { NOTIFY_SOCKET: socket.path }), dir, port, adminPort);
  try {
    await socket.waitFor((m) => m.startsWith('READY=1'));
    expect((await post(e.url, numberedBodies(1, 90_000)[0] as Buffer)).status).toBe(201);
    const hook = connect(e.hookSocket);
    await new Promise<void>((resolve, reject) => hook.once('connect', () => resolve()).once('error', reject));
    hook.destroy();
    expect((await fetch(`${e.adminUrl}/healthz`)).status).toBe(200);
  } finally {
    await e.stop('SIGKILL');
    socket.close();
  }
});
