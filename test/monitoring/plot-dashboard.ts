// docs/dashboard.png: the shipped dashboard's panels, drawn by gnuplot from the data its
// queries return through Prometheus's range API (what Grafana would draw; Grafana itself
// cannot be installed here). Used by dashboard.test.ts when DASHBOARD_PNG names the output.

import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli';
import type { PrometheusServer } from '../helpers/prometheus';

export interface DashboardPanel {
  title: string;
  targets: { expr: string; refId: string; legendFormat?: string }[];
}

const COLUMNS = 2;

/** "{{source}} x" with the series' labels filled in. */
function legend(format: string | undefined, labels: Record<string, string>, fallback: string): string {
  if (format === undefined || format === '') return fallback;
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_m, name: string) => labels[name] ?? '');
}

export async function plotDashboard(
  prom: PrometheusServer,
  panels: DashboardPanel[],
  asGrafanaSends: (expr: string) => string,
  window: { start: number; end: number },
  out: string,
): Promise<void> {
  const dir = tempDir('jobcompd-dashboard-plot-');
  try {
    const plots: string[] = [];
    for (const [i, panel] of panels.entries()) {
      const lines: string[] = [];
      for (const target of panel.targets) {
        const series = await prom.queryRange(asGrafanaSends(target.expr), window.start, window.end, 1);
        for (const [j, s] of series.entries()) {
          const file = join(dir, `p${i}-${target.refId}-${j}.dat`);
          writeFileSync(file, s.values.map(([t, v]) => `${(t - window.start).toFixed(0)} ${v}`).join('\n') + '\n');
          lines.push(`"${file}" using 1:2 with lines lw 2 title "${legend(target.legendFormat, s.metric, target.refId).replace(/"/g, "'")}"`);
        }
      }
      plots.push(`set title "${panel.title.replace(/"/g, "'")}"`, lines.length > 0 ? `plot ${lines.join(', ')}` : 'plot NaN notitle');
    }
    const rows = Math.ceil(panels.length / COLUMNS);
    const script = [
      `set terminal pngcairo size 1400,${rows * 260} font "sans,9"`,
      `set output "${out}"`,
      `set multiplot layout ${rows},${COLUMNS}`,
      'set grid',
      'set key top left',
      'set xlabel "seconds into the run"',
      'set yrange [0:*]',
      ...plots,
      'unset multiplot',
    ].join('\n');
    const r = spawnSync('gnuplot', [], { input: script, encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`gnuplot failed: ${r.error?.message ?? r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
