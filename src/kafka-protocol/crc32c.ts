// CRC-32C (Castagnoli), the checksum of RecordBatch v2. No package in the lockfile
// provides it; slicing-by-8 keeps it near memory speed for batches of many records.

const POLY = 0x82f63b78;
const TABLES: Uint32Array[] = [];
{
  const first = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    first[n] = c >>> 0;
  }
  TABLES.push(first);
  for (let t = 1; t < 8; t++) {
    const prev = TABLES[t - 1] as Uint32Array;
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      const p = prev[n] as number;
      table[n] = ((p >>> 8) ^ (first[p & 0xff] as number)) >>> 0;
    }
    TABLES.push(table);
  }
}
const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];

export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  let i = 0;
  const end8 = data.length - (data.length % 8);
  while (i < end8) {
    const a = (crc ^ ((data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24))) >>> 0;
    crc =
      (T7[a & 0xff] as number) ^
      (T6[(a >>> 8) & 0xff] as number) ^
      (T5[(a >>> 16) & 0xff] as number) ^
      (T4[a >>> 24] as number) ^
      (T3[data[i + 4] as number] as number) ^
      (T2[data[i + 5] as number] as number) ^
      (T1[data[i + 6] as number] as number) ^
      (T0[data[i + 7] as number] as number);
    i += 8;
  }
  while (i < data.length) crc = (T0[(crc ^ (data[i++] as number)) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
