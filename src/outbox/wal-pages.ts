// Which database pages a SQLite write-ahead log holds in committed transactions, read from
// the file itself (https://www.sqlite.org/fileformat.html, "The WAL File Format"): a
// 32-byte header, then frames of a 24-byte header and one page. A frame counts when its
// salts match the header's and its cumulative checksum holds, up to the last frame that
// ends a transaction; whatever follows was never committed. open.ts asks this when the
// database file is shorter than its header says: a checkpoint cut short by kill -9 writes
// page 1 (with the new page count) before the pages that extend the file, and those pages
// are still in the log.

import { readFileSync } from 'node:fs';

const WAL_HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;
/** The magic number's low bit says whether checksums read the words big-endian. */
const WAL_MAGIC = 0x377f0682;

export interface WalPages {
  pageSize: number;
  /** pages written by committed transactions */
  pages: Set<number>;
}

/** The committed pages of the log at `walFile`; undefined when it is missing, empty or not a log. */
export function committedWalPages(walFile: string): WalPages | undefined {
  let wal: Buffer;
  try {
    wal = readFileSync(walFile);
  } catch {
    return undefined;
  }
  if (wal.length < WAL_HEADER_BYTES) return undefined;
  const magic = wal.readUInt32BE(0);
  if ((magic & ~1) >>> 0 !== WAL_MAGIC) return undefined;
  const bigEndian = (magic & 1) === 1;
  const pageSize = wal.readUInt32BE(8);
  const header = checksum(wal, 0, 24, bigEndian, [0, 0]);
  if (header[0] !== wal.readUInt32BE(24) || header[1] !== wal.readUInt32BE(28)) return undefined;
  const salt1 = wal.readUInt32BE(16);
  const salt2 = wal.readUInt32BE(20);

  const pages = new Set<number>();
  const uncommitted: number[] = [];
  let sum = header;
  for (let at = WAL_HEADER_BYTES; at + FRAME_HEADER_BYTES + pageSize <= wal.length; at += FRAME_HEADER_BYTES + pageSize) {
    if (wal.readUInt32BE(at + 8) !== salt1 || wal.readUInt32BE(at + 12) !== salt2) break;
    sum = checksum(wal, at, 8, bigEndian, sum);
    sum = checksum(wal, at + FRAME_HEADER_BYTES, pageSize, bigEndian, sum);
    if (sum[0] !== wal.readUInt32BE(at + 16) || sum[1] !== wal.readUInt32BE(at + 20)) break;
    uncommitted.push(wal.readUInt32BE(at));
    if (wal.readUInt32BE(at + 4) !== 0) {
      // a commit frame: the transaction's pages are in the log for good
      for (const page of uncommitted) pages.add(page);
      uncommitted.length = 0;
    }
  }
  return { pageSize, pages };
}

/** SQLite's WAL checksum over `length` bytes (a multiple of 8) from `start`, continuing `from`. */
function checksum(buf: Buffer, start: number, length: number, bigEndian: boolean, from: [number, number]): [number, number] {
  let [s0, s1] = from;
  for (let i = start; i < start + length; i += 8) {
    const x0 = bigEndian ? buf.readUInt32BE(i) : buf.readUInt32LE(i);
    const x1 = bigEndian ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4);
    s0 = (s0 + x0 + s1) >>> 0;
    s1 = (s1 + x1 + s0) >>> 0;
  }
  return [s0, s1];
}
