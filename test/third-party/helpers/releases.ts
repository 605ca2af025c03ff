// The Slurm releases the conformance suite runs (their archives: tools/slurm/releases.tsv).

import { buildRelease, type SlurmInstallation } from '../../../tools/slurm/cluster';
import { stopRun, type PathRun } from './runs';

/** A fresh machine builds each release here, once (cached outside the checkout after). */
const BUILD_TIMEOUT_MS = 60 * 60_000;

export interface Release {
  /** the archive's version, as build-release.sh takes it */
  version: string;
  /** jobcompd's RecordFormat for it */
  format: string;
  /** jobcomp/kafka has enable_job_start (25.05+) */
  jobStart: boolean;
}

export const RELEASES: readonly Release[] = [
  { version: '24.11.7', format: '24.11', jobStart: false },
  { version: '25.11.7', format: '25.11', jobStart: true },
  { version: '26.05.3', format: '26.05', jobStart: true },
];

/** CONFORMANCE_RELEASES=25.11.7,26.05.3 runs only those (by hand; make conformance runs all). */
export function selectedReleases(): Release[] {
  const only = process.env['CONFORMANCE_RELEASES'];
  if (only === undefined || only === '') return [...RELEASES];
  const wanted = only.split(',');
  const unknown = wanted.filter((v) => !RELEASES.some((r) => r.version === v));
  if (unknown.length > 0) throw new Error(`CONFORMANCE_RELEASES names unknown releases: ${unknown.join(', ')}`);
  return RELEASES.filter((r) => wanted.includes(r.version));
}

/**
 * In a describe block of one release: its installation, built before the block's tests, and
 * the list of runs those tests start, all stopped after the block.
 */
export function useRelease(release: Release): { installation: () => SlurmInstallation; runs: PathRun[] } {
  let installation: SlurmInstallation | undefined;
  const runs: PathRun[] = [];
  beforeAll(async () => {
    installation = await buildRelease(release.version);
  }, BUILD_TIMEOUT_MS);
  afterAll(async () => {
    await Promise.all(runs.splice(0).map((r) => stopRun(r)));
  });
  return {
    installation: () => {
      if (installation === undefined) throw new Error(`Slurm ${release.version} is not built yet`);
      return installation;
    },
    runs,
  };
}
