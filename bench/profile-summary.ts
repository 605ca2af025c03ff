// Self time by function of V8 CPU profiles (the .cpuprofile files BENCH_CPU_PROF writes).
//
//   node dist/bench/profile-summary.js <file.cpuprofile>... [--top 25]

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { option, root, runBench } from './lib';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function where(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url === '') return name;
  const file = url.startsWith('file://') ? relative(root, url.slice('file://'.length)) : url;
  return `${name} ${file}:${lineNumber + 1}`;
}

/** µs of self time per function, summed over the files. */
function selfTimes(files: string[]): { byFunction: Map<string, number>; total: number } {
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const file of files) {
    const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const dt = p.timeDeltas[i] ?? 0;
      const node = byId.get(id);
      if (node === undefined) return;
      const key = where(node);
      byFunction.set(key, (byFunction.get(key) ?? 0) + dt);
      total += dt;
    });
  }
  return { byFunction, total };
}

if (require.main === module) {
  runBench(async () => {
    const top = option('top', 25);
    const files = process.argv.slice(2).filter((a, i, all) => a.endsWith('.cpuprofile') && all[i - 1] !== '--top');
    if (files.length === 0) throw new Error('usage: profile-summary <file.cpuprofile>... [--top N]');
    const { byFunction, total } = selfTimes(files);
    const rows = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top);
    const lines = ['| self % | self ms | function |', '|---|---|---|', ...rows.map(([f, us]) => `| ${((100 * us) / total).toFixed(1)} | ${(us / 1000).toFixed(0)} | ${f} |`)];
    process.stdout.write(`${lines.join('\n')}\n\n${(total / 1e6).toFixed(1)} s sampled\n`);
    await Promise.resolve();
  });
}
