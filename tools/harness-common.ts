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

// A port the kernel handed out with listen(0) comes from its ephemeral range, the same range
// it picks the local port of an outgoing connection from: between closing it here and the
// daemon binding it, a parallel test's connection can take it (EADDRINUSE, seen in CI).
// Ports below that range are never picked by the kernel on its own; each process walks its
// own slice of them (a jest worker per slice) and keeps only ports it can bind right now.
const EPHEMERAL_RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range';
const LOWEST_PORT = 10000;
const SLICES = 16;

function ephemeralRangeStart(): number {
  try {
    const low = Number(fs.readFileSync(EPHEMERAL_RANGE_FILE, 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32768;
  } catch {
    return 32768;
  }
}

interface PortSlice {
  first: number;
  size: number;
  next: number;
}

let slice: PortSlice | undefined;

function portSlice(): PortSlice {
  if (slice !== undefined) return slice;
  const span = ephemeralRangeStart() - LOWEST_PORT;
  const worker = Number(process.env.JEST_WORKER_ID ?? process.pid);
  const size = Math.floor(span / SLICES);
  const first = LOWEST_PORT + (worker % SLICES) * size;
  slice = { first, size, next: Math.floor(Math.random() * size) };
  return slice;
}

function bindLoopback(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** Free loopback ports outside the kernel's ephemeral range (held together so they differ). */
export async function reserveLoopbackPorts(count: number): Promise<number[]> {
  const s = portSlice();
  const held: net.Server[] = [];
  for (let tries = 0; held.length < count; tries++) {
    if (s.size < count || tries >= s.size) throw new Error(`no free loopback port in ${s.first}-${s.first + s.size - 1}`);
    const server = await bindLoopback(s.first + s.next);
    s.next = (s.next + 1) % s.size;
    if (server !== undefined) held.push(server);
  }
  const ports = held.map((h) => (h.address() as net.AddressInfo).port);
  await Promise.all(held.map((h) => new Promise<void>((resolve) => h.close(() => resolve()))));
  return ports;
}
