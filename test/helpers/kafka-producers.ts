// Real producer clients for the Kafka listener's tests: node-rdkafka (librdkafka 2.12) in
// this process, kcat -P (Debian's librdkafka) and the Java producer of tools/kafka's jars
// as child processes. Each produces the same messages and reports what was acknowledged.

import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type DeliveryReport, type LibrdKafkaError, Producer, type ProducerGlobalConfig, type ProducerTopicConfig } from 'node-rdkafka';
import { librdkafkaCode } from '../../src/producer/delivery-errors';
import { findProjectRoot } from '../../tools/harness-common';
import { ensureKafkaJars } from '../../tools/kafka/jars';

export interface TestMessage {
  key: Buffer | null;
  value: Buffer;
  headers: { key: string; value: Buffer }[];
}

export interface ProduceOutcome {
  delivered: number;
  /** librdkafka's error codes of the failed deliveries */
  errors: number[];
}

const TOPIC_PROPERTIES = new Set(['acks', 'request.required.acks', 'message.timeout.ms', 'compression.codec', 'compression.type']);

/** Produces `messages` to `topic` and waits for every delivery report. */
export async function produceWithRdkafka(bootstrap: string, topic: string, messages: readonly TestMessage[], config: Record<string, string | number | boolean> = {}): Promise<ProduceOutcome> {
  // topic properties go in the topic configuration: node-rdkafka ignores them in the global one (docs/development.md)
  const all: Record<string, string | number | boolean> = { 'metadata.broker.list': bootstrap, dr_cb: true, 'message.timeout.ms': 20_000, ...config };
  const global: Record<string, string | number | boolean> = {};
  const topicConfig: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(all)) (TOPIC_PROPERTIES.has(k) ? topicConfig : global)[k] = v;
  const producer = new Producer(global as ProducerGlobalConfig, topicConfig as ProducerTopicConfig);
  const outcome: ProduceOutcome = { delivered: 0, errors: [] };
  await new Promise<void>((resolve, reject) => {
    producer.connect({ timeout: 10_000 }, (err) => (err ? reject(new Error(`connect: ${err.message}`)) : resolve()));
  });
  producer.setPollInterval(20);
  const done = new Promise<void>((resolve) => {
    producer.on('delivery-report', (err: LibrdKafkaError | null, _report: DeliveryReport) => {
      if (err) outcome.errors.push(librdkafkaCode(err));
      else outcome.delivered++;
      if (outcome.delivered + outcome.errors.length === messages.length) resolve();
    });
  });
  for (const m of messages) {
    producer.produce(topic, null, m.value, m.key ?? undefined, Date.now(), undefined, m.headers.map((h) => ({ [h.key]: h.value })));
  }
  await done;
  await new Promise<void>((resolve) => producer.disconnect(0, () => resolve()));
  return outcome;
}

/** The messages of a test: keys, values and headers that a byte-changing path would betray. */
export function testMessages(n: number, tag: string): TestMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    key: i % 3 === 0 ? null : Buffer.from(`key-${tag}-${i}`),
    value: Buffer.from(JSON.stringify({ job_id: 1000 + i, tag, text: 'é\u0000\t"x"'.repeat(1 + (i % 7)) })),
    headers: i % 2 === 0 ? [] : [{ key: 'h1', value: Buffer.from([0x7f, 0xc3, 0xa9, 0x41 + (i % 26)]) }, { key: 'h2', value: Buffer.from(tag) }],
  }));
}

const execFileAsync = promisify(execFile);

/** kcat -P: one message per line of value, with -K key separator and -H headers (kcat 1.7). */
export async function produceWithKcat(bootstrap: string, topic: string, messages: readonly TestMessage[], config: Record<string, string> = {}): Promise<void> {
  for (const m of messages) {
    const args = ['-P', '-b', bootstrap, '-t', topic, '-p', '0', '-X', 'message.timeout.ms=20000'];
    for (const [k, v] of Object.entries(config)) args.push('-X', `${k}=${v}`);
    if (m.key !== null) args.push('-k', m.key.toString('utf8'));
    // an argument is a C string: header values must be UTF-8 without NUL for kcat
    for (const h of m.headers) args.push('-H', `${h.key}=${h.value.toString('utf8')}`);
    await new Promise<void>((resolve, reject) => {
      const child = spawn('kcat', args, { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`kcat exited ${String(code)}: ${stderr}`))));
      child.stdin.end(m.value);
    });
  }
}

const JAVA_PRODUCER = `
import java.nio.file.*;
import java.util.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.ByteArraySerializer;

// args: bootstrap topic messageFile compression [property value]...; the file: per message
// keyLen(int, -1 null) key valueLen value headerCount (keyLen key valueLen value)*
public class TestProducer {
  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    p.put("bootstrap.servers", args[0]);
    p.put("enable.idempotence", "true");
    p.put("acks", "all");
    p.put("compression.type", args[3]);
    for (int i = 4; i + 1 < args.length; i += 2) p.put(args[i], args[i + 1]);
    p.put("request.timeout.ms", "15000");
    p.put("delivery.timeout.ms", "30000");
    p.put("key.serializer", ByteArraySerializer.class.getName());
    p.put("value.serializer", ByteArraySerializer.class.getName());
    java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(Files.readAllBytes(Paths.get(args[2])));
    int failed = 0;
    List<java.util.concurrent.Future<RecordMetadata>> sent = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
      while (in.hasRemaining()) {
        byte[] key = read(in);
        byte[] value = read(in);
        int n = in.getInt();
        List<org.apache.kafka.common.header.Header> headers = new ArrayList<>();
        for (int i = 0; i < n; i++) {
          String hk = new String(read(in), "UTF-8");
          headers.add(new org.apache.kafka.common.header.internals.RecordHeader(hk, read(in)));
        }
        sent.add(producer.send(new ProducerRecord<>(args[1], 0, null, key, value, headers)));
      }
      for (java.util.concurrent.Future<RecordMetadata> f : sent) {
        try { f.get(); } catch (Exception e) { failed++; System.err.println(e.getCause()); }
      }
    }
    System.out.println("delivered " + (sent.size() - failed) + " failed " + failed);
  }
  static byte[] read(java.nio.ByteBuffer in) {
    int n = in.getInt();
    if (n < 0) return null;
    byte[] b = new byte[n];
    in.get(b);
    return b;
  }
}
`;

function encodeForJava(messages: readonly TestMessage[]): Buffer {
  const parts: Buffer[] = [];
  const bytes = (b: Buffer | null): void => {
    const n = Buffer.alloc(4);
    n.writeInt32BE(b === null ? -1 : b.length);
    parts.push(n);
    if (b !== null) parts.push(b);
  };
  for (const m of messages) {
    bytes(m.key);
    bytes(m.value);
    const n = Buffer.alloc(4);
    n.writeInt32BE(m.headers.length);
    parts.push(n);
    for (const h of m.headers) {
      bytes(Buffer.from(h.key));
      bytes(h.value);
    }
  }
  return Buffer.concat(parts);
}

/** Compiles a Java program (class `className`, source `source`) once into .cache/ and returns its classpath. */
export async function compiledJavaClasspath(className: string, source: string): Promise<string> {
  const libs = await ensureKafkaJars();
  // a directory per source text, so a changed program is compiled again
  const dir = join(findProjectRoot(), '.cache', 'kafka-listener-java', createHash('sha256').update(source).digest('hex').slice(0, 12));
  const classpath = `${dir}:${libs}/*`;
  if (!existsSync(join(dir, `${className}.class`))) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${className}.java`), source);
    await execFileAsync('javac', ['-cp', `${libs}/*`, '-d', dir, join(dir, `${className}.java`)]);
  }
  return classpath;
}

/** The Java producer (idempotence on, acks=all): resolves with its delivered and failed counts. */
export async function produceWithJava(
  bootstrap: string,
  topic: string,
  messages: readonly TestMessage[],
  compression: string,
  workDir: string,
  properties: Record<string, string> = {},
): Promise<{ delivered: number; failed: number }> {
  const classpath = await compiledJavaClasspath('TestProducer', JAVA_PRODUCER);
  const file = join(workDir, `messages-${compression}.bin`);
  writeFileSync(file, encodeForJava(messages));
  const { stdout } = await execFileAsync('java', ['-cp', classpath, 'TestProducer', bootstrap, topic, file, compression, ...Object.entries(properties).flat()], { timeout: 60_000 });
  const match = /delivered (\d+) failed (\d+)/.exec(stdout);
  if (match === null) throw new Error(`the Java producer said: ${stdout}`);
  return { delivered: Number(match[1]), failed: Number(match[2]) };
}
