// Reads the few slurm.conf parameters jobcompd can take over from a site that used
// jobcomp/kafka: ClusterName, JobCompType, JobCompLoc, JobCompParams; and SlurmUser, who
// runs the native hook (the hook socket's default group and allow list).
// slurm.conf syntax (slurm.conf(5)): case-insensitive "Key=Value" pairs separated by
// whitespace, values optionally double-quoted, '#' starts a comment (unless written
// "\#"), a trailing '\' continues the line, and "Include FILE" pulls in another file.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigCodes, ConfigError } from '../errors';

export interface SlurmConfValue {
  value: string;
  file: string;
  line: number;
}

const WANTED = ['clustername', 'jobcomptype', 'jobcomploc', 'jobcompparams', 'slurmuser'] as const;
export type SlurmConfKey = (typeof WANTED)[number];
export type SlurmConfValues = Partial<Record<SlurmConfKey, SlurmConfValue>>;

const MAX_INCLUDE_DEPTH = 8;

export function readSlurmConf(file: string): SlurmConfValues {
  const out: SlurmConfValues = {};
  readInto(resolve(file), out, 0);
  return out;
}

function readInto(file: string, out: SlurmConfValues, depth: number): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(ConfigCodes.unreadable, { file }, `cannot read slurm.conf: ${reason}`);
  }
  for (const { line, text: content } of logicalLines(text)) {
    const include = /^include\s+(.+)$/i.exec(content);
    if (include) {
      if (depth >= MAX_INCLUDE_DEPTH) throw new ConfigError(ConfigCodes.syntax, { file, line }, 'Include nested too deeply');
      readInto(resolve(dirname(file), unquote(include[1] ?? '')), out, depth + 1);
      continue;
    }
    for (const [key, value] of pairs(content)) {
      const k = key.toLowerCase();
      if ((WANTED as readonly string[]).includes(k)) out[k as SlurmConfKey] = { value, file, line };
    }
  }
}

/** Lines with comments removed and '\'-continuations joined; `line` is where each starts. */
function logicalLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    if (pending === '') startLine = i + 1;
    let content = stripComment(raw.replace(/\r$/, ''));
    const continued = content.endsWith('\\');
    if (continued) content = content.slice(0, -1);
    pending += content;
    if (continued) return;
    if (pending.trim() !== '') out.push({ line: startLine, text: pending.trim() });
    pending = '';
  });
  if (pending.trim() !== '') out.push({ line: startLine, text: pending.trim() });
  return out;
}

function stripComment(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && s[i + 1] === '#') {
      out += '#';
      i++;
    } else if (c === '#') {
      break;
    } else {
      out += c;
    }
  }
  return out;
}

/** Key=Value pairs of one logical line; a value may be "quoted" to contain spaces. */
function pairs(content: string): [string, string][] {
  const out: [string, string][] = [];
  const re = /([A-Za-z][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g;
  for (let m = re.exec(content); m !== null; m = re.exec(content)) {
    out.push([m[1] ?? '', m[3] ?? m[2] ?? '']);
  }
  return out;
}

function unquote(s: string): string {
  const t = s.trim();
  return t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}
