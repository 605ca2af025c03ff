// The job ids a topic holds, for tests that expect an exact set: waits for `want` records,
// then reads once more for one extra, which must not be there (it would show in the result).

import { consumeAll, ConsumeTimeoutError } from '../../tools/kafka/consume';
import { jobIdOf } from './records';

export async function jobIdsOnTopic(bootstrap: string, topic: string, want: number, timeoutMs = 60_000): Promise<number[]> {
  await consumeAll(bootstrap, topic, { count: want, timeoutMs });
  const all = await consumeAll(bootstrap, topic, { count: want + 1, timeoutMs: 3_000 }).catch((err: unknown) => {
    if (err instanceof ConsumeTimeoutError) return err.received;
    throw err;
  });
  return all.map((m) => jobIdOf(m.value as Buffer)).sort((a, b) => a - b);
}
