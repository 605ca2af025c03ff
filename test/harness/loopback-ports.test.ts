// The harnesses' free ports (tools/harness-common.ts): never from the range the kernel
// draws the local ports of outgoing connections from, where a parallel test's connection
// could take one between its reservation and the daemon's bind (EADDRINUSE, seen in CI).
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { reserveLoopbackPorts } from '../../tools/harness-common';

function ephemeralRange(): [number, number] {
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  return [low as number, high as number];
}

function listenOn(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('reserveLoopbackPorts', () => {
  it('hands out distinct ports below the ephemeral range, each free to bind', async () => {
    const [low] = ephemeralRange();
    const ports = [...(await reserveLoopbackPorts(3)), ...(await reserveLoopbackPorts(3))];
    expect(new Set(ports).size).toBe(6);
    for (const port of ports) expect(port).toBeLessThan(low);
    const servers = await Promise.all(ports.map(listenOn));
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  it('skips a port something already listens on', async () => {
    const [first] = await reserveLoopbackPorts(1);
    const held = await listenOn((first as number) + 1);
    try {
      const [next] = await reserveLoopbackPorts(1);
      expect(next).not.toBe((first as number) + 1);
    } finally {
      await new Promise<void>((resolve) => held.close(() => resolve()));
    }
  });
});
