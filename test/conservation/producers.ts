// Real Kafka producers as senders of the conservation test through the Kafka listener:
// the Java producer of the broker's own jars (idempotence on, acks=all) and kcat -P
// (Debian's librdkafka 2.0.2). Each runs as one child process for the whole sequence, reads
// the records' values from stdin, one per line, and says on its output which deliveries
// it was told succeeded or failed: that is what the sender was told committed.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { compiledJavaClasspath } from '../helpers/kafka-producers';

export type ProducerClient = 'java' | 'kcat';
export const PRODUCER_CLIENTS: ProducerClient[] = ['java', 'kcat'];

/** How long a producer keeps a record it could not yet deliver: long enough for every restart of a run. */
const DELIVERY_TIMEOUT_MS = 600_000;

const JAVA_SEQUENCE_PRODUCER = `
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import org.apache.kafka.clients.producer.*;

// args: topic, then property/value pairs. One record per line of stdin (the value); prints
// "ack <line>" for each acknowledged record and "fail <line> <error>" for each failed one.
public class SequenceProducer {
  public static void main(String[] args) throws Exception {
    Properties p = new Properties();
    for (int i = 1; i + 1 < args.length; i += 2) p.put(args[i], args[i + 1]);
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
      String line;
      int i = 0;
      while ((line = in.readLine()) != null) {
        final int n = i++;
        producer.send(new ProducerRecord<>(args[0], 0, null, null, line.getBytes(StandardCharsets.UTF_8)), (meta, err) -> {
          if (err == null) out.println("ack " + n);
          else out.println("fail " + n + " " + err);
        });
      }
      producer.flush();
    }
    out.println("done");
  }
}
`;

/** One line of a producer's report: a record acknowledged, failed, or something else (logged). */
type ReportLine = 'ack' | 'fail' | 'other';

interface ClientProcess {
  child: ChildProcessWithoutNullStreams;
  /** the stream whose lines report deliveries */
  report: NodeJS.ReadableStream;
  classify(line: string): ReportLine;
  /**
   * Whether it reports deliveries while it waits for input: kcat serves its delivery
   * reports only between the lines it reads, so holding its input back to wait for them
   * would wait for ever.
   */
  reportsWhileIdle: boolean;
}

const BYTES = 'org.apache.kafka.common.serialization.ByteArraySerializer';

async function startJava(bootstrap: string, topic: string): Promise<ClientProcess> {
  const classpath = await compiledJavaClasspath('SequenceProducer', JAVA_SEQUENCE_PRODUCER);
  const properties = {
    'bootstrap.servers': bootstrap,
    'enable.idempotence': 'true',
    acks: 'all',
    'linger.ms': '5',
    'delivery.timeout.ms': String(DELIVERY_TIMEOUT_MS),
    'key.serializer': BYTES,
    'value.serializer': BYTES,
  };
  const child = spawn('java', ['-cp', classpath, 'SequenceProducer', topic, ...Object.entries(properties).flat()]);
  return { child, report: child.stdout, classify: (l) => (l.startsWith('ack ') ? 'ack' : l.startsWith('fail ') ? 'fail' : 'other'), reportsWhileIdle: true };
}

function startKcat(bootstrap: string, topic: string): ClientProcess {
  // -v -v: kcat reports each delivery on stderr ("Message delivered"), each failure ("Delivery
  // failed"); -E: without it kcat exits at "All broker connections are down", i.e. at every
  // restart of jobcompd, and what it still held is gone unreported
  const args = ['-P', '-b', bootstrap, '-t', topic, '-p', '0', '-v', '-v', '-E', '-X', `message.timeout.ms=${DELIVERY_TIMEOUT_MS}`];
  const child = spawn('kcat', args);
  return {
    child,
    report: child.stderr,
    classify: (l) => (l.includes('Message delivered') ? 'ack' : l.includes('Delivery failed') ? 'fail' : 'other'),
    reportsWhileIdle: false,
  };
}

export interface ProducerOutcome {
  acknowledged: number;
  failed: number;
  exitCode: number | null;
  /** the first lines the client wrote other than acknowledgements, for the report */
  otherLines: string[];
}

export interface ProducerPace {
  /** records written to the client per second */
  perSecond: number;
  /** no more records are written while this many written ones wait for their answer (for clients that report while idle) */
  ahead: number;
}

/**
 * Runs one client over `values` (one line each, no newline inside), written to it at
 * `pace`; `progressed` gets the count of acknowledged records after each acknowledgement.
 */
export async function produceSequence(
  client: ProducerClient,
  bootstrap: string,
  topic: string,
  values: readonly string[],
  pace: ProducerPace,
  progressed: (acknowledged: number) => void,
): Promise<ProducerOutcome> {
  const proc = client === 'java' ? await startJava(bootstrap, topic) : startKcat(bootstrap, topic);
  const outcome: ProducerOutcome = { acknowledged: 0, failed: 0, exitCode: null, otherLines: [] };
  let answered: () => void = () => undefined;
  createInterface({ input: proc.report }).on('line', (line) => {
    const kind = proc.classify(line);
    if (kind === 'ack') {
      outcome.acknowledged += 1;
      progressed(outcome.acknowledged);
    } else if (kind === 'fail') {
      outcome.failed += 1;
    }
    if (kind !== 'ack' && outcome.otherLines.length < 40) outcome.otherLines.push(line);
    answered();
  });
  const other = proc.report === proc.child.stdout ? proc.child.stderr : proc.child.stdout;
  other.on('data', (c: Buffer) => {
    if (outcome.otherLines.length < 40) outcome.otherLines.push(c.toString().trimEnd());
  });
  let running = true;
  const exited = new Promise<number | null>((resolve) =>
    proc.child.on('close', (code) => {
      running = false;
      answered();
      resolve(code);
    }),
  );

  const started = Date.now();
  const CHUNK = Math.max(1, Math.floor(pace.perSecond / 20));
  for (let i = 0; i < values.length && running; i += CHUNK) {
    const due = started + (i * 1000) / pace.perSecond - Date.now();
    if (due > 0) await new Promise((resolve) => setTimeout(resolve, due)); // the pace is the point
    // an acknowledgement (or a failure) is the event that lets the writer go on
    while (running && proc.reportsWhileIdle && i - outcome.acknowledged - outcome.failed > pace.ahead) await new Promise<void>((resolve) => (answered = resolve));
    const chunk = values.slice(i, i + CHUNK).join('\n') + '\n';
    if (!proc.child.stdin.write(chunk)) await new Promise((resolve) => proc.child.stdin.once('drain', resolve));
  }
  proc.child.stdin.end();
  outcome.exitCode = await exited;
  return outcome;
}
