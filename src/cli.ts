// Command line: `jobcompd [run]`, check-config, convert, replay, status.

import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { runCheckConfig } from './commands/check-config';
import { INPUT_FORMATS, runConvert, type InputFormat } from './commands/convert';
import { runDaemon } from './commands/run';
import { runReplay } from './commands/replay';
import { runStatus } from './commands/status';
import { EXIT_SOFTWARE, JobcompdError } from './errors';
import type { LoadOptions } from './config/daemon-conf';

export const DEFAULT_CONFIG_FILE = '/etc/jobcompd/jobcompd.conf';

interface ConfigFlags {
  config?: string;
  slurmConf?: string;
}

function loadOptions(flags: ConfigFlags): LoadOptions {
  const fromEnv = process.env.JOBCOMPD_CONFIG;
  const configFile = flags.config ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  return { configFile, slurmConf: flags.slurmConf };
}

function withConfigOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', `jobcompd.conf (default: $JOBCOMPD_CONFIG, else ${DEFAULT_CONFIG_FILE} if it exists)`)
    .option('--slurm-conf <file>', 'take ClusterName, JobCompLoc and JobCompParams from this slurm.conf (jobcompd.conf keys win)');
}

/** Run a command's action; a JobcompdError ends the process with its exit code and message. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    let code: number;
    try {
      code = await fn(...args);
    } catch (err) {
      if (err instanceof JobcompdError) {
        process.stderr.write(`jobcompd: ${err.message}\n`);
        code = err.exitCode;
      } else {
        process.stderr.write(`jobcompd: internal error: ${(err as Error).stack ?? String(err)}\n`);
        code = EXIT_SOFTWARE;
      }
    }
    // Exit explicitly: a librdkafka handle that is still being torn down must not keep
    // the process alive (node-rdkafka's exit-hang pitfalls). Logs and stdout are synchronous.
    process.exit(code);
  };
}

export function buildProgram(): Command {
  const program = new Command('jobcompd')
    .description('Publishes Slurm job records to Kafka exactly as jobcomp/kafka does, durably (SQLite outbox, at-least-once).')
    .showHelpAfterError();

  withConfigOptions(program.command('run', { isDefault: true }).description('run the daemon (the default command)')).action(
    action((flags: ConfigFlags) => runDaemon(loadOptions(flags))),
  );

  withConfigOptions(program.command('check-config').description('validate the configuration, including through librdkafka, without starting'))
    .option('--json', 'print the effective configuration as JSON')
    .action(action((flags: ConfigFlags & { json?: boolean }) => runCheckConfig(loadOptions(flags), flags.json === true)));

  program
    .command('convert')
    .description('read one input record on stdin, print the jobcomp/kafka payload on stdout (exact bytes)')
    .addOption(new Option('--from <format>', 'input format: an elasticsearch body, or a script/prolog environment (KEY=VALUE lines)').choices([...INPUT_FORMATS]).makeOptionMandatory())
    .option('--params <JobCompParams>', 'JobCompParams to apply (e.g. send_script)', '')
    .option('--newline', 'end the output with a newline (not part of the payload)')
    .action(action((flags: { from: InputFormat; params: string; newline?: boolean }) => runConvert(flags.from, flags.params, flags.newline === true)));

  withConfigOptions(program.command('replay').description('resend the saved state (undelivered records) and exit when it is drained'))
    .option('--timeout <seconds>', 'give up after this many seconds (records stay saved); exit 75', parseFloat)
    .action(action((flags: ConfigFlags & { timeout?: number }) => runReplay(loadOptions(flags), flags.timeout)));

  withConfigOptions(program.command('status').description('backlog, oldest pending record, delivered and quarantined counts'))
    .option('--json', 'machine-readable output')
    .action(action((flags: ConfigFlags & { json?: boolean }) => runStatus(loadOptions(flags), flags.json === true)));

  return program;
}

export function main(argv: string[] = process.argv): void {
  buildProgram()
    .parseAsync(argv)
    .catch((err: unknown) => {
      process.stderr.write(`jobcompd: ${(err as Error).message}\n`);
      process.exit(EXIT_SOFTWARE);
    });
}

if (require.main === module) main();
