// Keeping what Slurm handed to jobcompd, for the fixtures: the elasticsearch bodies (a
// pass-through HTTP relay in front of jobcompd's listener) and the script and prolog
// environments (a wrapper that saves its own initial environment, then execs the hook).

import { createServer, request, type Server } from 'node:http';
import { chmodSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface RelayedBody {
  path: string;
  body: Buffer;
  status: number;
}

/** Relays every POST to `target` unchanged and answers with its status; keeps the bodies. */
export class BodyRelay {
  private constructor(
    private readonly server: Server,
    readonly url: string,
    /** every POST, in arrival order, with jobcompd's answer */
    readonly bodies: readonly RelayedBody[],
  ) {}

  static async start(target: string): Promise<BodyRelay> {
    const bodies: RelayedBody[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const out = request(`${target}${req.url ?? '/'}`, { method: req.method, headers: { 'content-type': req.headers['content-type'] ?? 'application/json' } }, (answer) => {
          answer.resume();
          answer.on('end', () => {
            const status = answer.statusCode ?? 502;
            bodies.push({ path: req.url ?? '/', body, status });
            res.writeHead(status).end();
          });
        });
        out.on('error', () => res.writeHead(502).end());
        out.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new BodyRelay(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies);
  }

  /** Bodies jobcompd accepted (a retry of a refused one comes again). */
  accepted(): Buffer[] {
    return this.bodies.filter((b) => b.status === 200 || b.status === 201).map((b) => b.body);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * `<dir>/<name>`: a script that saves the environment it was started with (from /proc, so
 * nothing the shell adds) as `<dumps>/<name>.<pid>.env` (NUL-separated), then execs `hook`
 * with that environment.
 */
export function environmentRecorder(dir: string, name: string, hook: string, dumps: string): string {
  mkdirSync(dumps, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\ncat /proc/$$/environ > '${dumps}/${name}.'$$'.env'\nexec env -u PWD -u OLDPWD -u SHLVL '${hook}'\n`);
  chmodSync(path, 0o755);
  return path;
}

/** The saved environments whose file name starts with `name`, as maps of byte strings (latin1). */
export function recordedEnvironments(dumps: string, name: string): Map<string, string>[] {
  return readdirSync(dumps)
    .filter((f) => f.startsWith(`${name}.`))
    .map((f) => {
      const env = new Map<string, string>();
      for (const entry of readFileSync(join(dumps, f), 'latin1').split('\0')) {
        const at = entry.indexOf('=');
        if (at > 0) env.set(entry.slice(0, at), entry.slice(at + 1));
      }
      return env;
    });
}
