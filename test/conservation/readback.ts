// Reading a conservation run back: the sequence from the topic (missing ids, duplicates),
// the daemon's backlog, and what each kill hit, for the report.

import { consumeAll, ConsumeTimeoutError, type ConsumedMessage } from '../../tools/kafka/consume';
import type { DaemonProcess } from '../helpers/daemon';
import { records } from '../helpers/slurm-suite';
import type { Kill, RestartableDaemon } from './faults';

/**
 * Read the topic until every job id of [first, first+n) is there; the message count shows
 * duplicates. `before`: messages already in the topic ahead of the sequence.
 * `moreThanTwice`: job ids that came out three times or more (in flight at two kills).
 * A read that waits 120 s for more messages in vain ends it: what is missing then is lost.
 */
export async function consumeSequence(bootstrapServers: string, topic: string, first: number, n: number, before = 0): Promise<{ messages: number; missing: number[]; moreThanTwice: number }> {
  let count = before + n;
  for (let attempt = 0; attempt < 20; attempt++) {
    let consumed: ConsumedMessage[];
    let exhausted = false;
    try {
      consumed = await consumeAll(bootstrapServers, topic, { count, timeoutMs: 120_000 });
    } catch (err) {
      if (!(err instanceof ConsumeTimeoutError)) throw err;
      consumed = err.received;
      exhausted = true;
    }
    const recs = records(consumed);
    const seen = new Map<number, number>();
    for (const r of recs) seen.set(r.jobid, (seen.get(r.jobid) ?? 0) + 1);
    const missing = Array.from({ length: n }, (_, i) => first + i).filter((id) => !seen.has(id));
    const moreThanTwice = [...seen.values()].filter((c) => c > 2).length;
    if (missing.length === 0 || exhausted) return { messages: recs.length - before, missing, moreThanTwice };
    count = recs.length + missing.length;
  }
  throw new Error(`records still missing from ${topic} after 20 reads`);
}

/** The counters of `jobcompd status` a run reports; undefined while the daemon does not answer. */
export async function statusCounters(d: DaemonProcess): Promise<{ backlog: number; deduplicated: number } | undefined> {
  const res = await fetch(`${d.adminUrl}/status`).catch(() => undefined);
  return res ? ((await res.json()) as { backlog: number; deduplicated: number }) : undefined;
}

export async function backlog(d: DaemonProcess): Promise<number> {
  return (await statusCounters(d))?.backlog ?? -1;
}

function describeKill(k: Kill, i: number): string {
  return (
    `  kill ${i + 1}: in the wait before it +${k.committed} committed, +${k.produced} produced, +${k.delivered} delivered; ` +
    `${k.inFlight} in flight, backlog ${k.backlog}; ${k.inStateAtRestart} rows at the restart, bound ${k.duplicateBound}`
  );
}


/**
 * Reports a run read back and checks it against the kill -9 bound of
 * docs/delivery-guarantees.md: duplicates at most the sum over the kills of
 * min(MaxInFlight, rows at the restart), and the kills fell while records were being
 * committed, were in flight, and while delivery reports were being served.
 */
export function expectWithinKillBound(label: string, n: number, sentInMs: number, read: { messages: number; moreThanTwice: number }, daemon: RestartableDaemon): void {
  const duplicates = read.messages - n;
  const { kills } = daemon;
  process.stdout.write(
    `${label}: ${n} records sent in ${(sentInMs / 1000).toFixed(1)} s with ${kills.length} kills and 2 broker outages; ` +
      `${read.messages} messages, ${duplicates} duplicate(s), ${read.moreThanTwice} job id(s) more than twice; ` +
      `bound: the sum over the kills of min(MaxInFlight=${daemon.maxInFlight}, rows at the restart) = ${daemon.duplicateBound}\n` +
      `${kills.map(describeKill).join('\n')}\n`,
  );
  expect(kills).toHaveLength(10);
  expect(duplicates).toBeLessThanOrEqual(daemon.duplicateBound);
  expect(kills.filter((k) => k.committed > 0).length).toBeGreaterThan(0);
  expect(kills.filter((k) => k.inFlight > 0).length).toBeGreaterThan(0);
  expect(kills.filter((k) => k.delivered > 0).length).toBeGreaterThan(0);
}
