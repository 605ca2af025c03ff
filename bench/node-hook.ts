// What a naive hook costs: the same record sent by a Node.js one-shot client (a fresh Node
// process per record, as jobcomp/script would start it). Used by hook-latency.ts only.
//   JOBCOMPD_SOCKET=/run/jobcompd/hook.sock node dist/bench/node-hook.js

import { connect } from 'node:net';
import { encodeRequest } from '../src/sources/hook-protocol';

const env = Object.entries(process.env)
  .filter(([k]) => k !== 'JOBCOMPD_SOCKET')
  .map(([k, v]) => `${k}=${v ?? ''}\0`)
  .join('');
const socket = connect(process.env.JOBCOMPD_SOCKET ?? '/run/jobcompd/hook.sock');
const chunks: Buffer[] = [];
socket.on('data', (c: Buffer) => chunks.push(c));
socket.on('error', () => process.exit(1));
socket.on('close', () => process.exit(Buffer.concat(chunks).toString('latin1', 0, 1) === 'A' ? 0 : 1));
socket.end(encodeRequest(Buffer.from(env, 'latin1')));
