// What the harnesses (tools/kafka, tools/slurm) share: finding the project, free loopback
// ports, and making sure the daemons they start never outlive the process that started them.

import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as vm from 'node:vm';

/** The nearest directory above `from` that holds package.json (works from src and dist). */
export function findProjectRoot(from: string = __dirname): string {
  let dir = path.resolve(from);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json found above ${from}`);
    dir = parent;
  }
}

/**
 * Jest hands each test file a copy of `process` whose 'exit' listeners never fire. Code
 * run by vm.runInThisContext is evaluated in Node's main context, where `process` is the
 * real one (outside jest this is the same object).
 */
function realProcess(): NodeJS.Process {
  const candidate: unknown = vm.runInThisContext('process');
  return candidate instanceof EventEmitter ? (candidate as NodeJS.Process) : process;
}

const exitHandlers = new Set<() => void>();

/** Run `fn` synchronously when the real process exits (also under jest). */
export function onRealProcessExit(fn: () => void): void {
  if (exitHandlers.size === 0) realProcess().on('exit', () => exitHandlers.forEach((h) => h()));
  exitHandlers.add(fn);
}

// setpriv's parent-death signal also covers a Node process that is itself SIGKILLed (no
// 'exit' event then). Without setpriv the exit hook is all there is.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));

/** argv that makes the kernel SIGKILL the command when its parent dies. */
export function dieWithParent(argv: string[]): string[] {
  return SETPRIV !== undefined ? [SETPRIV, '--pdeathsig', 'SIGKILL', '--', ...argv] : argv;
}

/** Asks the kernel for free loopback ports (held together so they differ). */
export async function reserveLoopbackPorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      return new Promise<net.Server>((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve(server));
      });
    }),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}
