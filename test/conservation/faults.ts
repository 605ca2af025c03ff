// What the conservation tests share: a seeded random source, a fault schedule, and a
// daemon that can be killed and restarted in place while records keep coming.

import { defaultDaemonConfig } from '../../src/config/daemon-conf';
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

/** The daemon's own counters (GET /metrics), since its start. */
interface Counters {
  stored: number;
  produced: number;
  delivered: number;
  inFlight: number;
  backlog: number;
}

/** The sum of a metric's samples whose labels contain `labels` (e.g. 'outcome="stored"'). */
function metric(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!line.slice(name.length).split(' ')[0]?.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** undefined when the daemon did not answer within 5 s (its kill is then not described) */
async function counters(d: DaemonProcess): Promise<Counters | undefined> {
  const res = await fetch(`${d.adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
  const text = res?.ok ? await res.text().catch(() => undefined) : undefined;
  if (text === undefined) return undefined;
  return {
    stored: metric(text, 'jobcompd_records_accepted_total', 'outcome="stored"'),
    produced: metric(text, 'jobcompd_records_produced_total'),
    delivered: metric(text, 'jobcompd_records_delivered_total'),
    inFlight: metric(text, 'jobcompd_in_flight_records'),
    backlog: metric(text, 'jobcompd_backlog_records'),
  };
}

/**
 * What one kill hit: the counters' movement during the wait before the SIGKILL (from two
 * samples, the second taken just before it), what was in flight then, and the rows the
 * restart found in the state file.
 */
export interface Kill {
  /** records committed, produced and confirmed by delivery reports during the wait */
  committed: number;
  produced: number;
  delivered: number;
  /** at the second sample */
  inFlight: number;
  backlog: number;
  /** rows in the state file at the restart */
  inStateAtRestart: number;
  /**
   * The most records this kill can make appear twice: a row is produced again only if the
   * killed process had produced it and not yet deleted it, and it held at most MaxInFlight.
   */
  duplicateBound: number;
}

/**
 * A daemon (with the default MaxInFlight) that is killed and restarted in place (same
 * directory, ports, configuration). `current` is the live process; `kills` what each kill
 * hit. `whileDown` runs between the kill and the restart (the power-loss test drops the
 * unsynced data there).
 */
export class RestartableDaemon {
  readonly kills: Kill[] = [];
  /** every process so far, the killed ones with the log lines they wrote */
  readonly processes: DaemonProcess[];
  readonly maxInFlight = defaultDaemonConfig().producer.maxInFlight;

  private constructor(
    public current: DaemonProcess,
    private readonly opts: DaemonOptions,
    private readonly whileDown: () => Promise<void>,
  ) {
    this.processes = [current];
  }

  static async start(opts: DaemonOptions, whileDown: () => Promise<void> = () => Promise.resolve()): Promise<RestartableDaemon> {
    return new RestartableDaemon(await startDaemon(opts), opts, whileDown);
  }

  /** SIGKILL at a random moment while records stream in, then start again. */
  async killAfter(ms: number): Promise<void> {
    const d = this.current;
    const before = await counters(d);
    await new Promise((resolve) => setTimeout(resolve, ms)); // the moment is the point: random
    const at = await counters(d);
    d.proc.kill('SIGKILL');
    await d.exited;
    await this.whileDown();
    this.current = await startDaemon({ ...this.opts, dir: d.dir, port: d.port, adminPort: d.adminPort });
    this.processes.push(this.current);
    const inStateAtRestart = Number((await this.current.waitForLog((l) => l.logEvent === 'publisher.starting')).backlog);
    const moved = (k: keyof Counters): number => (before && at ? at[k] - before[k] : 0);
    this.kills.push({
      committed: moved('stored'),
      produced: moved('produced'),
      delivered: moved('delivered'),
      inFlight: at?.inFlight ?? 0,
      backlog: at?.backlog ?? 0,
      inStateAtRestart,
      duplicateBound: Math.min(this.maxInFlight, inStateAtRestart),
    });
  }

  get duplicateBound(): number {
    return this.kills.reduce((sum, k) => sum + k.duplicateBound, 0);
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
