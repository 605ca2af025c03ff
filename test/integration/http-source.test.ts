// The jobcomp/elasticsearch-compatible HTTP endpoint, as Slurm's plugin sees it. No broker
// is needed: every answer is about what is committed to the state file.

import { request } from 'node:http';
import { runCli } from '../helpers/cli';
import { post, startDaemon, type DaemonProcess } from '../helpers/daemon';
import { numberedBodies } from '../helpers/records';

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
  const line = await d.waitForLog((l) => l.msg.startsWith('input cannot be mapped'), 'quarantine log');
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
  await d.waitForLog((l) => l.msg.startsWith('request body larger than [http] MaxBodyBytes'), 'refusal log');
});

it('answers other methods with 405', async () => {
  expect((await send('DELETE', '/slurm/_doc')).status).toBe(405);
});
