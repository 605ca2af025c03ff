// The Kafka version this project pins and the broker jars (tools/kafka/fetch.sh).
import { spawn } from 'node:child_process';
import { findProjectRoot } from '../harness-common';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KafkaJarsError } from './broker-types';

/** The version pinned in tools/kafka/pom.xml, the single place that names it. */
export function kafkaVersion(root: string = findProjectRoot()): string {
  const pom = path.join(root, 'tools', 'kafka', 'pom.xml');
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(fs.readFileSync(pom, 'utf8'));
  if (match?.[1] === undefined) throw new KafkaJarsError(`no <kafka.version> in ${pom}`);
  return match[1].trim();
}

let jarsDirPromise: Promise<string> | undefined;

/** Runs fetch.sh (instant when the jars are already there) once per process. */
export function ensureKafkaJars(root: string = findProjectRoot()): Promise<string> {
  jarsDirPromise ??= runFetchScript(root).catch((err: unknown) => {
    jarsDirPromise = undefined;
    throw err;
  });
  return jarsDirPromise;
}

function runFetchScript(root: string): Promise<string> {
  const script = path.join(root, 'tools', 'kafka', 'fetch.sh');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (err) => reject(new KafkaJarsError(`cannot run ${script}: ${err.message}`, { cause: err })));
    child.on('close', (code) => {
      const libs = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && libs !== '' && fs.existsSync(libs)) resolve(libs);
      else reject(new KafkaJarsError(`${script} failed (exit ${String(code)}):\n${stderr.trim()}`));
    });
  });
}

