// Command line: `jobcompd [run]`, check-config, convert, replay, status.

import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { runCheckConfig } from './commands/check-config';
import { INPUT_FORMATS, runConvert, type InputFormat } from './commands/convert';
import { runDaemon } from './commands/run';
import { runRepairState } from './commands/repair-state';
import { runReplay } from './commands/replay';
import { runStatus } from './commands/status';
import { runTail } from './commands/tail';
import { runTopicsCreate, runTopicsDescribe } from './commands/topics';
import { EXIT_SOFTWARE, JobcompdError } from '../errors';
import { parseTopicConfigs, type LoadOptions } from '../config/daemon-conf';
import { JobEvent } from '../record/job-record';
import { OUTPUT_FORMATS, type OutputFormat } from '../tail/formats';

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

interface ReplayFlags {
  job?: number[];
  event?: 'finish' | 'start';
  since?: number;
  until?: number;
  quarantined?: boolean;
  fromSlurmState?: string;
  dryRun?: boolean;
  json?: boolean;
  timeout?: number;
}

function parseJobIds(v: string): number[] {
  const ids = v.split(',').map((x) => x.trim());
  if (ids.some((x) => !/^\d+$/.test(x))) throw new InvalidArgumentError('job ids are comma-separated numbers, e.g. 4242,4243');
  return ids.map(Number);
}

/** ISO 8601 (a date without zone is UTC, as in the records) or epoch seconds -> ms. */
function parseTime(v: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) || !v.includes('T') ? v : `${v}Z`);
  if (Number.isNaN(ms)) throw new InvalidArgumentError('expected ISO 8601 (2026-11-22T03:50:00) or epoch seconds');
  return ms;
}

function parsePositiveInt(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('expected a positive integer');
  return Number(v);
}

/** Repeatable `--topic-config name=value[,name=value]`. */
function collectTopicConfigs(v: string, previous: Record<string, string>): Record<string, string> {
  try {
    return { ...previous, ...parseTopicConfigs(v, { file: '--topic-config' }) };
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Resolves once everything written to the stream before has been handed to the OS. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
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
    // the process alive (node-rdkafka's exit-hang pitfalls). But first let stdout and
    // stderr drain: on a non-blocking pipe (a parent's spawnSync, some supervisors) Node
    // queues writes, and process.exit would cut `replay --dry-run` output short.
    await Promise.all([drained(process.stdout), drained(process.stderr)]);
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
    .option('--connect', 'also ask the brokers: reachable, authenticated, topics exist (exit 69 if unreachable)')
    .action(action((flags: ConfigFlags & { json?: boolean; connect?: boolean }) => runCheckConfig(loadOptions(flags), flags.json === true, flags.connect === true)));

  program
    .command('convert')
    .description('read one input record on stdin, print the jobcomp/kafka payload on stdout (exact bytes)')
    .addOption(new Option('--from <format>', 'input format: an elasticsearch body, or a script/prolog environment (KEY=VALUE lines)').choices([...INPUT_FORMATS]).makeOptionMandatory())
    .option('--params <JobCompParams>', 'JobCompParams to apply (e.g. send_script)', '')
    .option('--format <release>', 'the Slurm release whose record layout to print, as RecordFormat takes it (e.g. 24.11, 23.11.7; default: the newest, 26.05)')
    .option('--newline', 'end the output with a newline (not part of the payload)')
    .action(
      action((flags: { from: InputFormat; params: string; format?: string; newline?: boolean }) =>
        runConvert({ from: flags.from, params: flags.params, format: flags.format, newline: flags.newline === true }),
      ),
    );

  withConfigOptions(program.command('replay').description('resend the saved state (undelivered records) and exit when it is drained'))
    .option('--job <ids>', 'only these job ids (comma-separated)', parseJobIds)
    .addOption(new Option('--event <event>', 'only job finish or job start records').choices(['finish', 'start']))
    .option('--since <time>', 'only records received at or after this time (ISO 8601 or epoch seconds)', parseTime)
    .option('--until <time>', 'only records received before this time', parseTime)
    .option('--quarantined', 'first move quarantined records back to be sent (after the cause was fixed)')
    .option('--from-slurm-state <file>', "first import Slurm's jobcomp_kafka_state or elasticsearch_state (migration)")
    .option('--dry-run', 'print what would be sent (one payload per line); change nothing, contact nothing')
    .option('--json', 'with --dry-run: one JSON object per record (row, job id, event, topic, payload); otherwise one JSON summary at the end (imported, delivered, quarantined, still saved)')
    .option('--timeout <seconds>', 'give up after this many seconds (records stay saved); exit 75', parseFloat)
    .action(
      action((flags: ConfigFlags & ReplayFlags) =>
        runReplay(loadOptions(flags), {
          filter: { jobIds: flags.job, event: flags.event === undefined ? undefined : flags.event === 'start' ? JobEvent.start : JobEvent.finish, since: flags.since, until: flags.until },
          quarantined: flags.quarantined === true,
          fromSlurmState: flags.fromSlurmState,
          dryRun: flags.dryRun === true,
          json: flags.json === true,
          timeoutSeconds: flags.timeout,
        }),
      ),
    );

  withConfigOptions(program.command('repair-state').description('rebuild a damaged state file from the rows SQLite can still read (the damaged file is kept)')).action(
    action((flags: ConfigFlags) => runRepairState(loadOptions(flags))),
  );

  withConfigOptions(program.command('status').description('backlog, oldest pending record, delivered and quarantined counts'))
    .option('--json', 'machine-readable output')
    .action(action((flags: ConfigFlags & { json?: boolean }) => runStatus(loadOptions(flags), flags.json === true)));

  withConfigOptions(program.command('tail').description('print the records on the topics as they arrive (by default: new ones, following)'))
    .option('--from-beginning', 'start at the oldest record the topics still hold')
    .option('--since <time>', 'start at the first record published at or after this time (ISO 8601 or epoch seconds; Kafka message time)', parseTime)
    .option('-f, --follow', 'keep printing new records (the default when neither --from-beginning nor --since is given); otherwise stop at the records there were when tail started')
    .addOption(new Option('--event <event>', 'only job end or job start records').choices(['start', 'end']))
    .option('--job <ids>', 'only these job ids (comma-separated)', parseJobIds)
    .addOption(new Option('--format <format>', 'output: a table (default on a terminal), JSON lines (the payloads as published; default otherwise), CSV (the plugin\'s columns)').choices([...OUTPUT_FORMATS]))
    .option('--no-header', 'no header line (table, csv): for a sink appending to its file')
    .option('--group <id>', 'consumer group: resume where this group stopped, commit offsets after the output is written and flushed')
    .action(
      action((flags: ConfigFlags & { fromBeginning?: boolean; since?: number; follow?: boolean; event?: 'start' | 'end'; job?: number[]; format?: OutputFormat; header: boolean; group?: string }) =>
        runTail(loadOptions(flags), {
          startAt: flags.since !== undefined ? { from: 'time', ms: flags.since } : flags.fromBeginning === true ? { from: 'beginning' } : { from: 'end' },
          follow: flags.follow === true || (flags.since === undefined && flags.fromBeginning !== true),
          event: flags.event,
          jobIds: flags.job,
          format: flags.format ?? (process.stdout.isTTY ? 'table' : 'json'),
          header: flags.header,
          group: flags.group,
        }),
      ),
    );

  const topics = program.command('topics').description('create or describe the topics this configuration writes (finish, and start when enabled)');
  withConfigOptions(topics.command('describe').description('partitions, replication factor and health of each topic, as the brokers report them'))
    .option('--json', 'machine-readable output')
    .action(action((flags: ConfigFlags & { json?: boolean }) => runTopicsDescribe(loadOptions(flags), flags.json === true)));
  withConfigOptions(topics.command('create').description('create the topics that do not exist yet ([topics] in jobcompd.conf gives the defaults); existing ones are left as they are'))
    .option('--partitions <n>', 'partitions of each new topic (default: [topics] Partitions, else the broker default)', parsePositiveInt)
    .option('--replication-factor <n>', 'replicas of each partition (default: [topics] ReplicationFactor, else the broker default)', parsePositiveInt)
    .option('--topic-config <name=value,...>', 'topic configs, e.g. retention.ms=604800000,min.insync.replicas=2 (repeatable; added to [topics] Config)', collectTopicConfigs, {})
    .option('--json', 'machine-readable output')
    .action(
      action((flags: ConfigFlags & { partitions?: number; replicationFactor?: number; topicConfig: Record<string, string>; json?: boolean }) =>
        runTopicsCreate(loadOptions(flags), { partitions: flags.partitions, replicationFactor: flags.replicationFactor, configs: flags.topicConfig }, flags.json === true),
      ),
    );

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
