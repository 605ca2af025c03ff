// A real Prometheus server (Debian's package) for the monitoring tests: its own config,
// data directory and port on loopback; readiness from its /-/ready endpoint.

import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitUntil } from '../hostile/fuzz-kit';
import { freePort } from './daemon';
import { tempDir } from './cli';

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

export class PrometheusServer {
  private constructor(
    private readonly proc: ChildProcess,
    readonly url: string,
    private readonly output: () => string,
  ) {}

  /** Scrapes each target (host:port of a jobcompd admin listener) every second as job "jobcompd". */
  static async start(targets: string[], ruleFiles: string[] = []): Promise<PrometheusServer> {
    const dir = tempDir('jobcompd-prometheus-');
    const port = await freePort();
    const config = [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      `rule_files: ${JSON.stringify(ruleFiles)}`,
      'scrape_configs:',
      '  - job_name: jobcompd',
      `    static_configs: [{ targets: ${JSON.stringify(targets)} }]`,
      '',
    ].join('\n');
    writeFileSync(join(dir, 'prometheus.yml'), config);
    const proc = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    const server = new PrometheusServer(proc, `http://127.0.0.1:${port}`, () => out);
    let exited = false;
    proc.once('exit', () => (exited = true));
    await waitUntil(
      async () => {
        if (exited) throw new Error(`prometheus exited: ${out.slice(-2000)}`);
        return (await fetch(`${server.url}/-/ready`).catch(() => undefined))?.ok === true;
      },
      30_000,
      'prometheus /-/ready',
      100,
    );
    return server;
  }

  /** An instant query through the HTTP API; throws on an error answer (a bad expression). */
  async query(expr: string): Promise<PromSample[]> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
    if (body.status !== 'success' || !body.data) throw new Error(`query ${expr} failed: ${body.error ?? res.status}`);
    return body.data.result;
  }

  /** A range query (start and end in epoch seconds), as a Grafana time series panel sends it. */
  async queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<PromSeries[]> {
    const params = new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(stepSeconds) });
    return (await this.get<{ result: PromSeries[] }>(`/api/v1/query_range?${params.toString()}`)).result;
  }

  async get<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`);
    return ((await res.json()) as { data: T }).data;
  }

  get log(): string {
    return this.output();
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.kill('SIGKILL');
    await exited;
  }
}
