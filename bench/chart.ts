// docs/benchmarks.png from the figures, drawn by gnuplot (Debian's gnuplot-nox): three
// panels, hook latency, throughput against kcat, and the backlog drain against kcat.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BacklogFigures } from './backlog';
import type { HookLatency } from './hook-latency';
import { root } from './lib';

interface ThroughputRow {
  what: string;
  partitions: number;
  jobcompd: { median: number };
  kcat: { median: number };
}

export function drawChart(hook: HookLatency, throughput: ThroughputRow[], backlog: BacklogFigures, out = join(root, 'docs/benchmarks.png')): string {
  const dir = mkdtempSync(join(tmpdir(), 'jobcompd-chart-'));
  try {
    const latency = join(dir, 'latency.dat');
    writeFileSync(
      latency,
      [
        '"/bin/true" ' + `${hook.floor.p50} ${hook.floor.p99}`,
        '"hook, jobcomp/script" ' + `${hook.hook.p50} ${hook.hook.p99}`,
        '"hook, prolog" ' + `${hook.prolog.p50} ${hook.prolog.p99}`,
        '"Node one-shot" ' + `${hook.node.p50} ${hook.node.p99}`,
      ].join('\n'),
    );
    const rates = join(dir, 'rates.dat');
    writeFileSync(
      rates,
      [
        ...throughput.map((r) => `"${r.what}, ${r.partitions}p" ${r.jobcompd.median.toFixed(0)} ${r.kcat.median.toFixed(0)}`),
        `"drain ${Math.round(backlog.records / 1000)}k" ${backlog.drainPerSecond.median.toFixed(0)} ${backlog.kcatPerSecond.median.toFixed(0)}`,
      ].join('\n'),
    );
    const script = [
      `set terminal pngcairo size 1200,480 font "sans,10"`,
      `set output "${out}"`,
      'set multiplot layout 1,2',
      'set style data histograms',
      'set style histogram clustered gap 1',
      'set style fill solid 0.85 border -1',
      'set boxwidth 0.9',
      'set grid ytics',
      'set key top left',
      'set xtics rotate by -20',
      'set title "What slurmctld waits per record (sequential runs)"',
      'set ylabel "milliseconds"',
      'set yrange [0:*]',
      `plot "${latency}" using 2:xtic(1) title "p50" lc rgb "#4477aa", "" using 3 title "p99" lc rgb "#aa7744"`,
      'set title "Records/s, first byte in to delivery report (median; log scale)"',
      'set ylabel "records/s"',
      'set logscale y',
      'set yrange [100:*]',
      `plot "${rates}" using 2:xtic(1) title "jobcompd (durable)" lc rgb "#228833", "" using 3 title "kcat -P (no durability)" lc rgb "#bbbbbb"`,
      'unset multiplot',
    ].join('\n');
    const r = spawnSync('gnuplot', [], { input: script, encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`gnuplot failed: ${r.error?.message ?? r.stderr}`);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
