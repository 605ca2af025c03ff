// Slurm's "%FT%T" UTC times, both ways: parseUtc must accept exactly the strings formatUtc
// produces and give back their time, whatever its fast path does (docs/record-mapping.md).
// The reference is the definition by Date: a match of the pattern whose fields Date.UTC
// takes without normalising any of them.

import { formatUtc, parseUtc } from '../../src/record/slurm-time';
import { mulberry32 } from '../helpers/random';

function byDate(s: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 19) === s ? ms / 1000 : undefined;
}

test('every time formatUtc renders parses back to itself', () => {
  const rng = mulberry32(20261205);
  const edges = [1, 59, 86399, 86400, 951782400 /* 2000-02-29 */, 1709164800 /* 2024-02-29 */, 4107542399, 253402300799];
  const random = Array.from({ length: 20_000 }, () => Math.floor(rng() * 253402300799) + 1);
  for (const t of [...edges, ...random]) expect([t, parseUtc(formatUtc(t))]).toEqual([t, t]);
});

test('strings that are not such a time, or whose fields are out of range, are refused as the reference refuses them', () => {
  const cases = [
    '2023-02-29T00:00:00', '1900-02-29T00:00:00', '2000-02-29T00:00:00', '2024-02-29T12:00:00', '2024-04-31T00:00:00',
    '2024-00-10T00:00:00', '2024-13-10T00:00:00', '2024-01-00T00:00:00', '2024-01-32T00:00:00', '2024-01-10T24:00:00',
    '2024-01-10T23:60:00', '2024-01-10T23:59:60', '0050-01-01T00:00:00', '0099-12-31T23:59:59', '0100-01-01T00:00:00',
    '9999-12-31T23:59:59', '2024-01-10 00:00:00', '2024-01-10T00:00:00Z', '2024-1-10T00:00:00', '+024-01-10T00:00:00',
    '２０２４-01-10T00:00:00', 'Unknown', 'None', '', '1970-01-01T00:00:00',
  ];
  for (const s of cases) expect([s, parseUtc(s)]).toEqual([s, byDate(s)]);
  // single-character changes of valid times
  const rng = mulberry32(5);
  const chars = '0123456789-T: x';
  for (let i = 0; i < 20_000; i++) {
    const base = formatUtc(Math.floor(rng() * 4102444800) + 1);
    const at = Math.floor(rng() * base.length);
    const s = base.slice(0, at) + chars[Math.floor(rng() * chars.length)] + base.slice(at + 1);
    expect([s, parseUtc(s)]).toEqual([s, byDate(s)]);
  }
});
