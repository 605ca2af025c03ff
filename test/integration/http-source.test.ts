// The jobcomp/elasticsearch-compatible HTTP endpoint, as Slurm's plugin sees it. Most
// tests need no broker: every answer is about what is committed to the state file. Those
// about what a consumer then reads (duplicates, Slurm's resends) run against a real one.

import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { consumeAll, countMessages } from '../../tools/kafka/consume';
import { useBroker } from '../helpers/broker-suite';
import { runCli, runCliBytes } from '../helpers/cli';
import { post, startDaemon, type DaemonProcess } from '../helpers/daemon';
import { ES_FIXTURES, jobIdOf, numberedBodies } from '../helpers/records';

jest.setTimeout(120_000);

let d: DaemonProcess;

beforeAll(async () => {
  // Nothing listens on port 1: the daemon keeps trying to connect, records stay in SQLite.
  d = await startDaemon({ bootstrapServers: '127.0.0.1:1', clusterName: 'httptest', extraConf: '[http]\nMaxBodyBytes=100000' });
});

afterAll(async () => {
  await d.stop('SIGKILL');
});

function send(method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${d.url}${path}`, { method, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

it('answers 201 with an Elasticsearch-like body once the record is committed, at any path', async () => {
  const [first, second] = numberedBodies(2, 70_000);
  const created = await post(d.url, first as Buffer, '/slurm/_doc');
  expect(created.status).toBe(201);
  expect(JSON.parse(created.body)).toMatchObject({ result: 'created', _index: 'slurm', _shards: { successful: 1 } });
  const other = await post(d.url, second as Buffer, '/slurm/_doc?pipeline=x');
  expect(JSON.parse(other.body)).toMatchObject({ result: 'created' });
  const root = await post(d.url, numberedBodies(1, 70_002)[0] as Buffer, '/');
  expect(JSON.parse(root.body)).toMatchObject({ result: 'created', _index: 'jobcompd' });
});

it('a record Slurm sends again (e.g. its stale state file after a crash) is answered 201 and stored once', async () => {
  const [body] = numberedBodies(1, 71_000);
  const first = JSON.parse((await post(d.url, body as Buffer)).body) as { _id: string };
  const again = await post(d.url, body as Buffer);
  expect(again.status).toBe(201);
  expect(JSON.parse(again.body)).toMatchObject({ result: 'duplicate', _id: first._id });
});

it('a requeued job\'s second, different record is not a duplicate', async () => {
  const [body] = numberedBodies(1, 72_000);
  const requeued = Buffer.from((body as Buffer).toString('latin1').replace('"state":"FAILED"', '"state":"NODE_FAIL"').replace(/"@end":"[^"]*"/, '"@end":"2026-11-22T04:00:00"'), 'latin1');
  expect(requeued.equals(body as Buffer)).toBe(false);
  expect(JSON.parse((await post(d.url, body as Buffer)).body)).toMatchObject({ result: 'created' });
  expect(JSON.parse((await post(d.url, requeued)).body)).toMatchObject({ result: 'created' });
});

it('keeps input it cannot map in quarantine and answers 201, so Slurm does not resend it forever', async () => {
  const r = await post(d.url, Buffer.from('{"jobid":42,"state":"COMPLETED"}'));
  expect(r.status).toBe(201);
  expect(JSON.parse(r.body)).toMatchObject({ result: 'quarantined', reason: { type: 'E_RECORD_MISSING_FIELD' } });
  const line = await d.waitForLog((l) => l.logEvent === 'record.quarantined', 'quarantine log');
  expect(line).toMatchObject({ jobId: 42, event: 'job finish', code: 'E_RECORD_MISSING_FIELD' });
  const status = JSON.parse(runCli(['status', '--json', '-c', d.configFile]).stdout) as { quarantined: number };
  expect(status.quarantined).toBeGreaterThanOrEqual(1);
});

it('refuses a body over MaxBodyBytes with 413, whether announced or streamed', async () => {
  const big = Buffer.alloc(200_000, 0x20);
  expect((await send('POST', '/slurm/_doc', big, { 'Content-Type': 'application/json' })).status).toBe(413);
  const chunked = await new Promise<number>((resolve, reject) => {
    const req = request(`${d.url}/slurm/_doc`, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => resolve(res.statusCode ?? 0));
    req.on('error', reject);
    for (let i = 0; i < 20; i++) req.write(Buffer.alloc(10_000, 0x20));
    req.end();
  });
  expect(chunked).toBe(413);
  await d.waitForLog((l) => l.logEvent === 'http.body-too-large', 'refusal log');
});

it('answers other methods with 405', async () => {
  expect((await send('DELETE', '/slurm/_doc')).status).toBe(405);
});

describe('what a consumer reads, against a real broker', () => {
  const suite = useBroker({ autoCreateTopics: true });

  /** The payload `jobcompd convert --from elasticsearch` prints for a body. */
  function converted(body: Buffer): Buffer {
    const r = runCliBytes(['convert', '--from', 'elasticsearch'], body);
    expect(r.code).toBe(0);
    return r.stdout;
  }

  function answer(r: { status: number; body: string }): { result: string; _id: string } {
    expect(r.status).toBe(201);
    return JSON.parse(r.body) as { result: string; _id: string };
  }

  /** Resolves once the wall clock has reached `at` (ms since the epoch). */
  function wallClock(at: number): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        const left = at - Date.now();
        if (left <= 0) resolve();
        else setTimeout(check, left);
      };
      check();
    });
  }

  /**
   * The topic holds exactly `payloads` (in any order) and nothing more is coming: the daemon
   * is stopped and its state file has nothing left to send.
   */
  async function topicHoldsExactly(daemon: DaemonProcess, topic: string, payloads: Buffer[], deduplicated: number): Promise<void> {
    const messages = await consumeAll(suite.broker().bootstrapServers, topic, { count: payloads.length, timeoutMs: 60_000 });
    expect((await daemon.stop('SIGTERM')).code).toBe(0);
    const status = JSON.parse(runCli(['status', '--json', '-c', daemon.configFile]).stdout) as Record<string, unknown>;
    expect(status).toMatchObject({ backlog: 0, delivered: payloads.length, quarantined: 0, deduplicated });
    expect(await countMessages(suite.broker().bootstrapServers, topic)).toBe(payloads.length);
    const hex = (b: Buffer): string => b.toString('hex');
    expect(messages.map((m) => hex(m.value as Buffer)).sort()).toEqual(payloads.map(hex).sort());
  }

  it('DedupWindow: an identical record is published once within the window and again after it', async () => {
    const windowMs = 1000;
    const daemon = await suite.daemon({ clusterName: 'dedupwindow', extraConf: `DedupWindow=${windowMs / 1000}` });
    const [body] = numberedBodies(1, 73_000) as [Buffer];
    const first = answer(await post(daemon.url, body));
    const firstAnsweredAt = Date.now(); // the copy was committed before this
    expect(first.result).toBe('created');
    expect(answer(await post(daemon.url, body))).toMatchObject({ result: 'duplicate', _id: first._id });

    // once the window has passed since the first copy, the same bytes are a new record
    await wallClock(firstAnsweredAt + windowMs);
    const third = answer(await post(daemon.url, body));
    expect(third.result).toBe('created');
    expect(third._id).not.toBe(first._id);
    // and the window now runs from that copy
    expect(answer(await post(daemon.url, body))).toMatchObject({ result: 'duplicate', _id: third._id });

    const payload = converted(body);
    await topicHoldsExactly(daemon, 'dedupwindow', [payload, payload], 2);
  });

  it('DedupWindow=0: every identical copy is published', async () => {
    const daemon = await suite.daemon({ clusterName: 'nodedup', extraConf: 'DedupWindow=0' });
    const [body] = numberedBodies(1, 74_000) as [Buffer];
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const r = answer(await post(daemon.url, body));
      expect(r.result).toBe('created');
      ids.add(r._id);
    }
    expect(ids.size).toBe(3);
    const payload = converted(body);
    await topicHoldsExactly(daemon, 'nodedup', [payload, payload, payload], 0);
  });

  it("Slurm 22.05's captured resends (stale elasticsearch_state after a kill -9): each record in Kafka once, as convert prints it", async () => {
    interface Captured {
      t: number;
      method: string;
      url: string;
      headers: Record<string, string>;
      body: string;
    }
    const read = (name: string): Captured[] =>
      readFileSync(join(ES_FIXTURES, name), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Captured);
    // restart-resend: jobs 21 and 22 from the state file saved at a clean stop; kill9-duplicates,
    // a minute later: the same two again from the stale file, then job 23
    const requests = [...read('restart-resend.jsonl'), ...read('kill9-duplicates.jsonl')].sort((a, b) => a.t - b.t);
    expect(requests.map((r) => jobIdOf(Buffer.from(r.body)))).toEqual([21, 22, 21, 22, 23]);

    const daemon = await suite.daemon({ clusterName: 'resends' });
    const firstIds = new Map<string, string>(); // body -> _id of its first copy
    for (const r of requests) {
      expect(r.method).toBe('POST');
      const body = Buffer.from(r.body, 'utf8');
      expect(body.length).toBe(Number(r.headers['content-length'])); // the exact bytes Slurm sent
      const a = answer(await post(daemon.url, body, r.url));
      const seen = firstIds.get(r.body);
      if (seen === undefined) {
        expect(a.result).toBe('created');
        firstIds.set(r.body, a._id);
      } else {
        expect(a).toMatchObject({ result: 'duplicate', _id: seen });
      }
    }
    expect(firstIds.size).toBe(3);
    await topicHoldsExactly(daemon, 'resends', [...firstIds.keys()].map((b) => converted(Buffer.from(b, 'utf8'))), 2);
  });
});
