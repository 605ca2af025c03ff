// xxHash32 (seed 0 by default), the checksum of the LZ4 frame format's header, blocks and
// content (docs/kafka-listener.md#compression). No package in the lockfile provides it.

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function round(acc: number, lane: number): number {
  return Math.imul(rotl((acc + Math.imul(lane, P2)) | 0, 13), P1);
}

/** The little-endian 32-bit word at `i` (the caller has checked that 4 bytes are there). */
function word(data: Uint8Array, i: number): number {
  return (data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24);
}

export function xxhash32(data: Uint8Array, seed = 0): number {
  const len = data.length;
  let i = 0;
  let acc: number;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) | 0;
    let v2 = (seed + P2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P1) | 0;
    for (const last = len - 16; i <= last; i += 16) {
      v1 = round(v1, word(data, i));
      v2 = round(v2, word(data, i + 4));
      v3 = round(v3, word(data, i + 8));
      v4 = round(v4, word(data, i + 12));
    }
    acc = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    acc = (seed + P5) | 0;
  }
  acc = (acc + len) | 0;
  for (; i + 4 <= len; i += 4) acc = Math.imul(rotl((acc + Math.imul(word(data, i), P3)) | 0, 17), P4);
  for (; i < len; i++) acc = Math.imul(rotl((acc + Math.imul(data[i] as number, P5)) | 0, 11), P1);
  acc ^= acc >>> 15;
  acc = Math.imul(acc, P2);
  acc ^= acc >>> 13;
  acc = Math.imul(acc, P3);
  acc ^= acc >>> 16;
  return acc >>> 0;
}
