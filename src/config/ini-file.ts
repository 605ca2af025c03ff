// jobcompd.conf is INI, parsed with the `ini` package. `ini` does not report line
// numbers, so this module also remembers where each key was written, for error messages.
// Section and key names are case-insensitive, like slurm.conf's.

import { readFileSync } from 'node:fs';
import * as ini from 'ini';
import { ConfigCodes, ConfigError, type ConfigLocation } from '../errors';

/** Keys written outside any section belong to this one. */
export const MAIN_SECTION = 'jobcompd';

export interface IniEntry {
  section: string;
  /** as written in the file */
  key: string;
  value: string;
  location: ConfigLocation;
}

export function readIniFile(file: string): IniEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(ConfigCodes.unreadable, { file }, `cannot read the configuration file: ${reason}`);
  }
  return parseIni(text, file);
}

export function parseIni(text: string, file: string): IniEntry[] {
  refuseGluedComments(text, file);
  const decoded = ini.parse(text) as Record<string, unknown>;
  const lines = keyLines(text);
  const out: IniEntry[] = [];
  for (const [name, value] of Object.entries(decoded)) {
    if (isPlainObject(value)) {
      for (const [key, v] of Object.entries(value)) out.push(entry(file, lines, name, key, v));
    } else {
      out.push(entry(file, lines, MAIN_SECTION, name, value));
    }
  }
  return out;
}

function entry(file: string, lines: Map<string, number>, section: string, key: string, value: unknown): IniEntry {
  const sectionName = section.toLowerCase();
  const line = lines.get(`${sectionName}\0${key.toLowerCase()}`);
  const location: ConfigLocation = line === undefined ? { file, key } : { file, line, key };
  if (isPlainObject(value) || Array.isArray(value)) {
    throw new ConfigError(ConfigCodes.syntax, location, 'nested sections and array keys are not supported');
  }
  // ini turns true/false/null into booleans and null; keep everything as text here.
  return { section: sectionName, key, value: value === null || value === undefined ? '' : String(value), location };
}

/** section\0key (lower case) -> line of its last occurrence. */
function keyLines(text: string): Map<string, number> {
  const out = new Map<string, number>();
  let section = MAIN_SECTION;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = (header[1] ?? '').trim().toLowerCase();
      return;
    }
    const kv = /^([^=;#]+?)\s*=/.exec(line);
    if (kv) out.set(`${section}\0${(kv[1] ?? '').toLowerCase()}`, i + 1);
  });
  return out;
}

/**
 * `ini` ends an unquoted value at '#' or ';' wherever they are, so `BasicAuthPassword=pa#ss`
 * would silently mean "pa". A comment after a space reads as a comment and is allowed; a
 * '#' or ';' glued to the value is refused, with the way to keep it.
 */
function refuseGluedComments(text: string, file: string): void {
  text.split(/\r?\n/).forEach((raw, i) => {
    const kv = /^\s*([^=;#[\s][^=]*?)\s*=\s*(.*)$/.exec(raw);
    // (the value is not repeated in the message: it may be a password)
    const value = kv?.[2] ?? '';
    if (kv === null || /^["']/.test(value)) return;
    const at = value.search(/[#;]/);
    if (at <= 0 || /\s/.test(value.charAt(at - 1))) return;
    const mark = value.charAt(at);
    throw new ConfigError(
      ConfigCodes.syntax,
      { file, line: i + 1, key: kv[1] ?? '' },
      `'${mark}' starts a comment in this file, so the value would end before it; write the whole value in double quotes to keep the '${mark}', or put a space before a comment`,
    );
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
