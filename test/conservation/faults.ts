// What the conservation tests share: a seeded random source, a fault schedule, and a
// daemon that can be killed and restarted in place while records keep coming.

import { startDaemon, type DaemonOptions, type DaemonProcess } from '../helpers/daemon';

export { mulberry32 as prng } from '../helpers/random';

export type Fault =
  /** SIGKILL jobcompd `afterMs` later, then start it again */
  | { at: number; kind: 'kill'; afterMs: number }
  /** stop the broker, start it again after `downMs` */
  | { at: number; kind: 'broker'; downMs: number };

/** `kills` kills and `brokerOutages` outages at random points of a run of n records, in order. */
export function faultSchedule(random: () => number, n: number, kills: number, brokerOutages: number): Fault[] {
  const at = (): number => Math.floor((0.05 + random() * 0.85) * n);
  const faults: Fault[] = [];
  for (let i = 0; i < kills; i++) faults.push({ at: at(), kind: 'kill', afterMs: Math.floor(random() * 400) });
  for (let i = 0; i < brokerOutages; i++) faults.push({ at: at(), kind: 'broker', downMs: 500 + Math.floor(random() * 1500) });
  return faults.sort((a, b) => a.at - b.at);
}

/**
 * A daemon that is killed and restarted in place (same directory, ports, configuration).
 * `current` is the live process; `inStateAtRestart` the rows each restart found in the
 * state file: the only records that can come out twice.
 */
export class RestartableDaemon {
  readonly inStateAtRestart: number[] = [];
  kills = 0;

  private constructor(
    public current: DaemonProcess,
    private readonly opts: DaemonOptions,
  ) {}

  static async start(opts: DaemonOptions): Promise<RestartableDaemon> {
    return new RestartableDaemon(await startDaemon(opts), opts);
  }

  /**
   * SIGKILL at a random moment while records stream in: commits, produce calls and
   * delivery reports are all going on then, so over ten kills each phase gets hit.
   */
  async killAfter(ms: number): Promise<void> {
    const d = this.current;
    await new Promise((resolve) => setTimeout(resolve, ms)); // the moment is the point: random
    d.proc.kill('SIGKILL');
    await d.exited;
    this.kills += 1;
    this.current = await startDaemon({ ...this.opts, dir: d.dir, port: d.port, adminPort: d.adminPort });
    this.inStateAtRestart.push(Number((await this.current.waitForLog((l) => l.msg === 'publisher starting')).backlog));
  }

  /** Records that may legitimately appear twice: those in the state file at each restart. */
  get duplicateBound(): number {
    return this.inStateAtRestart.reduce((a, b) => a + b, 0);
  }
}

/** Poll a condition that no event announces (the backlog reaching zero), within a deadline. */
export async function until(what: string, condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
