// `make demo`: jobcompd's main job end to end on an embedded default.
//   1. start a local single-node Kafka (KRaft, loopback) in a temporary directory
//   2. start the real jobcompd daemon against it (its own state dir and config)
//   3. POST it job records captured from a real Slurm 22.05 slurmctld (jobcomp/elasticsearch)
//   4. print what a Kafka consumer reads back from the topic
// Everything it started is stopped at the end.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { KafkaBroker, findProjectRoot } from './kafka/broker';
import { consumeAll } from './kafka/consume';

const CLUSTER = 'democluster';
const root = findProjectRoot();
const say = (s: string): void => void process.stdout.write(`${s}\n`);

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'jobcompd-demo-'));
  say('» starting a local Apache Kafka broker (KRaft, 127.0.0.1)...');
  const broker = await KafkaBroker.start({ autoCreateTopics: true });
  let daemon: ChildProcess | undefined;
  try {
    say(`  broker ready at ${broker.bootstrapServers}`);
    writeFileSync(join(work, 'rdkafka.conf'), `bootstrap.servers=${broker.bootstrapServers}\n`);
    writeFileSync(
      join(work, 'jobcompd.conf'),
      `ClusterName=${CLUSTER}\nStateDir=${join(work, 'state')}\nJobCompLoc=${join(work, 'rdkafka.conf')}\nJobCompParams=poll_interval=0.1\n[admin]\nListen=off\n[http]\nListen=127.0.0.1:0\n[hook]\nSocket=${join(work, 'hook.sock')}\nSpool=${join(work, 'spool')}\n`,
    );
    say(`» starting jobcompd (config ${join(work, 'jobcompd.conf')})...`);
    daemon = spawn(join(root, 'bin/jobcompd'), ['run', '-c', join(work, 'jobcompd.conf')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await readyPort(daemon);
    say(`  jobcompd listening on 127.0.0.1:${port}, as jobcomp/elasticsearch expects (JobCompLoc=http://127.0.0.1:${port}/slurm/_doc)`);

    const dir = join(root, 'test/fixtures/es-22.05');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort((a, b) => a.localeCompare(b, 'en', { numeric: true })); // job9 before job10
    say(`» POSTing ${files.length} job records captured from a real Slurm 22.05 slurmctld...`);
    for (const f of files) {
      const answer = await post(port, readFileSync(join(dir, f)));
      say(`  ${f.padEnd(28)} -> HTTP ${answer.status} ${answer.result}`);
    }

    say(`» consuming topic "${CLUSTER}" (the jobcomp/kafka default topic is ClusterName):`);
    const messages = await consumeAll(broker.bootstrapServers, CLUSTER, { count: files.length, timeoutMs: 60_000 });
    for (const m of messages) {
      say(`\n  partition ${m.partition} offset ${m.offset}, key ${m.key === null ? 'null' : m.key.toString()}, ${m.value?.length ?? 0} bytes:`);
      say(`  ${m.value?.toString('utf8') ?? ''}`);
    }
    say(`\n✓ ${messages.length} records published byte-compatible with jobcomp/kafka (RecordFormat: the newest layout, 26.05)`);
  } finally {
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((resolve) => daemon?.once('exit', resolve));
      daemon.kill('SIGTERM');
      await exited;
    }
    await broker.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

/** The port from the daemon's "jobcompd ready" JSON log line. */
function readyPort(daemon: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    if (!daemon.stdout) return reject(new Error('no stdout'));
    const lines = createInterface({ input: daemon.stdout });
    lines.on('line', (line) => {
      let entry: { msg?: string; http?: { port: number } };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (entry.msg === 'jobcompd ready' && entry.http) resolve(entry.http.port);
    });
    daemon.once('exit', (code) => reject(new Error(`jobcompd exited with code ${String(code)} before it was ready`)));
  });
}

function post(port: number, body: Buffer): Promise<{ status: number; result: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/slurm/_doc', method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, result: (JSON.parse(text) as { result?: string }).result ?? text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
