// Every benchmark in one run, one after the other (never two at once: two cores), then
// the tables (bench/results/summary.md) and the chart (docs/benchmarks.png).
//
//   make bench        (or: node dist/bench/run-all.js [--quick])
//
// --quick: fewer runs and shorter windows, to check that everything works (minutes, not
// an hour); the figures of docs/benchmarks.md come from a full run.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backlogBench, backlogTable } from './backlog';
import { drawChart } from './chart';
import { hookLatencyBench, hookLatencyTable, launcherTable } from './hook-latency';
import { machine, note, option, root, runBench, saveResult } from './lib';
import { peerOptions, rsyslogPeerBench, rsyslogPeerTable } from './rsyslog-peer';
import { listenerBench, listenerTable } from './listener';
import { floorTable, pairedRatioLine, throughputBench, throughputTable } from './throughput';

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  // Each figure can be scaled: --hook-runs, --node-runs, --seconds, --partition-seconds, --runs, --records, --listener-records.
  const q = (small: number, full: number): number => (quick ? small : full);
  const runs = option('runs', q(1, 3));
  const hook = await hookLatencyBench({ runs: option('hook-runs', q(500, 10_000)), nodeRuns: option('node-runs', q(50, 1000)), series: option('hook-series', q(1, 3)) });
  saveResult('hook-latency', hook);
  const throughput = await throughputBench({ seconds: option('seconds', q(5, 60)), runs, partitionSeconds: option('partition-seconds', q(5, 20)) });
  saveResult('throughput', throughput);
  const backlog = await backlogBench({ records: option('records', q(50_000, 1_000_000)), runs: option('backlog-runs', runs) });
  saveResult('backlog', backlog);
  // --peer-seconds, --peer-runs, --kill-records, --kills, --kill-seed (bench/rsyslog-peer.ts)
  const peer = await rsyslogPeerBench(peerOptions(quick));
  saveResult(quick ? 'rsyslog-peer-quick' : 'rsyslog-peer', peer);
  const listener = await listenerBench({ records: option('listener-records', q(50_000, 500_000)), runs });
  saveResult('listener', listener);

  const m = machine();
  const summary = [
    `# Benchmark run of ${new Date().toISOString().slice(0, 16)}Z${quick ? ' (--quick)' : ''}`,
    '',
    `Machine: ${Object.entries(m).map(([k, v]) => `${k} ${String(v)}`).join(', ')}`,
    '',
    '## Hook latency',
    '',
    hookLatencyTable(hook),
    '',
    launcherTable(hook),
    '',
    '## Durable end-to-end throughput',
    '',
    throughputTable(throughput.rows),
    '',
    pairedRatioLine(throughput.socketOverHttp),
    '',
    floorTable(throughput.floor),
    '',
    '## Backlog, memory, start-up',
    '',
    backlogTable(backlog),
    '',
    '## A durable peer: rsyslog (RELP in, disk queue, omkafka out) and kill -9 both ways',
    '',
    rsyslogPeerTable(peer),
    '',
    '## Kafka listener: kcat -P through jobcompd (durable) and straight to the broker',
    '',
    listenerTable(listener),
    '',
  ].join('\n');
  const file = join(root, 'bench/results/summary.md');
  writeFileSync(file, summary);
  process.stdout.write(summary);
  note(`tables in ${file}; chart in ${drawChart(hook, throughput.rows, backlog)}`);
}

runBench(main);
