// The errors the Slurm harness throws; tests match on the classes.

export class SlurmHarnessError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** tools/slurm/install.sh failed. */
export class SlurmInstallError extends SlurmHarnessError {}

/** A daemon died, or the node did not become ready in time. */
export class SlurmStartError extends SlurmHarnessError {
  constructor(
    message: string,
    readonly logTail: string,
  ) {
    super(`${message}\n${logTail}`);
  }
}

/** A Slurm client command (sbatch, scontrol...) failed. */
export class SlurmCommandError extends SlurmHarnessError {
  constructor(
    readonly command: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command.join(' ')} failed (exit ${String(exitCode)}): ${stderr.trim() || '(no output on stderr)'}`);
  }
}

/** An option slurmctld would accept but not act on (it only logs an error), e.g. a non-executable JobCompLoc. */
export class SlurmOptionsError extends SlurmHarnessError {}

/** waitForJobState() ran out of time. */
export class SlurmTimeoutError extends SlurmHarnessError {}

/** A daemon had to be SIGKILLed (slurmctld: its saved state may be stale). */
export class SlurmStopError extends SlurmHarnessError {}
