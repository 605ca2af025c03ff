// Small conversions of values Slurm prints, shared by the input mappers.

/** The uid/gid Slurm's "nobody" fallback is genuine for; any other id means a failed lookup. */
export const NOBODY_ID = 65534;

/** Slurm prints a failed user/group lookup as "nobody"; jobcomp/kafka sends null. */
export function identityName(name: string | null | undefined, id: number): string | null {
  if (name === undefined || name === null || name === '' || (name === 'nobody' && id !== NOBODY_ID)) return null;
  return name;
}

/**
 * A time limit as jobcomp/script prints it (mins2time_str): "UNLIMITED", "HH:MM:SS" or
 * "D-HH:MM:SS", in seconds; undefined when there is none (UNLIMITED, Partition_Limit...).
 * undefined also for anything malformed: the caller decides whether that is an error.
 */
export function timeLimitSeconds(s: string): number | undefined {
  const m = /^(?:(\d+)-)?(\d+):(\d{2}):(\d{2})$/.exec(s);
  if (!m) return undefined;
  const [days, hours, mins, secs] = [m[1] ?? '0', m[2], m[3], m[4]].map(Number) as [number, number, number, number];
  const seconds = ((days * 24 + hours) * 60 + mins) * 60 + secs;
  return Number.isSafeInteger(seconds) ? seconds : undefined;
}

/** Total CPUs from SLURM_JOB_CPUS_PER_NODE, e.g. "4(x2),2" -> 10; undefined if malformed. */
export function totalCpus(cpusPerNode: string): number | undefined {
  let total = 0;
  for (const part of cpusPerNode.split(',')) {
    const m = /^(\d+)(?:\(x(\d+)\))?$/.exec(part);
    if (!m) return undefined;
    total += Number(m[1]) * Number(m[2] ?? 1);
  }
  return Number.isSafeInteger(total) ? total : undefined;
}
