// What a serving daemon has loaded: not the Node.js modules of code it never runs. prom-client's
// index would load its Pushgateway (node:https, node:tls, node:zlib), and the Kafka listener's
// gzip and zstd need node:zlib only when a producer compresses: together 3-4 MB of every
// daemon's memory (docs/benchmark-rounds.md#this-round-2026-12-07-nineteenth-session-what-the-daemon-loads).
// The figures are bench/backlog.ts's; this shows which modules are there.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli';
import { freePort, post, startDaemon } from '../helpers/daemon';
import { capturedBodies } from '../helpers/records';

jest.setTimeout(60_000);

/** A --require script that writes the process's loaded Node.js modules to `out` when it exits. */
function moduleProbe(dir: string, out: string): string {
  const probe = join(dir, 'probe.js');
  writeFileSync(probe, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.moduleLoadList)));\n`);
  return probe;
}

test('a daemon that received records and served /metrics has not loaded node:https, node:tls or node:zlib', async () => {
  const dir = tempDir('jobcompd-footprint-');
  const out = join(dir, 'modules.json');
  const d = await startDaemon({
    bootstrapServers: `127.0.0.1:${await freePort()}`,
    kafkaConf: `Listen=127.0.0.1:${await freePort()}`,
    env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${moduleProbe(dir, out)}` },
  });
  const [body] = capturedBodies();
  expect((await post(d.url, body as Buffer)).status).toBe(201);
  expect((await fetch(`${d.adminUrl}/metrics`)).status).toBe(200);
  expect((await d.stop()).code).toBe(0);

  const loaded = new Set((JSON.parse(readFileSync(out, 'utf8')) as string[]).filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice('NativeModule '.length)));
  // the probe sees what the daemon uses: its HTTP server and the default metrics' perf_hooks
  expect(['http', 'perf_hooks'].filter((m) => loaded.has(m))).toEqual(['http', 'perf_hooks']);
  expect(['https', 'tls', 'zlib'].filter((m) => loaded.has(m))).toEqual([]);
});
