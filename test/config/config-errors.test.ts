// Bad configuration, through the real executable: exit code 78 (EX_CONFIG) and a message
// that names the file, the line and the key, compared whole (the first line of stderr is
// exactly what the admin reads). librdkafka's own validation is used.

import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { NOBODY_ID } from '../../src/record/slurm-values';
import { runCli, tempDir, writeFiles } from '../helpers/cli';

const GOOD_RDKAFKA = 'bootstrap.servers=127.0.0.1:9092\n';

interface Case {
  name: string;
  /** jobcompd.conf; "@rdkafka" is replaced by the rdkafka.conf path */
  conf: string | undefined;
  rdkafka?: string;
  slurmConf?: string;
  args?: string[];
  /** file modes to set (name in the test's directory -> mode) before running */
  modes?: Record<string, number>;
  /** run as nobody (tests run as root, who may read any file) */
  asNobody?: boolean;
  /** the whole first line of stderr after "jobcompd: ", "@dir" standing for the test's directory */
  message: string;
}


const cases: Case[] = [
  { name: 'missing jobcompd.conf', conf: undefined, args: ['-c', '@dir/nope.conf'], message: '@dir/nope.conf: cannot read the configuration file: ENOENT' },
  {
    name: 'unknown key',
    conf: '[jobcompd]\nClusterName=hpc1\nJobCompLoc=@rdkafka\nClustrName=x\n',
    message: '@dir/jobcompd.conf:4: ClustrName: unknown key in [jobcompd]',
  },
  {
    name: 'unknown section',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n[rdkafka]\nlinger=5\n',
    message: '@dir/jobcompd.conf:4: linger: unknown section [rdkafka] (known: [jobcompd], [hook], [admin], [http], [kafka], [topics], [producer])',
  },
  { name: 'no ClusterName', conf: 'JobCompLoc=@rdkafka\n', message: '@dir/jobcompd.conf: ClusterName: is not set: set it in jobcompd.conf or point SlurmConf at slurm.conf' },
  { name: 'no JobCompLoc', conf: 'ClusterName=hpc1\n', message: '@dir/jobcompd.conf: JobCompLoc: is not set: it must name the librdkafka properties file (as for jobcomp/kafka)' },
  {
    name: 'ClusterName that is no topic name',
    conf: 'ClusterName=my cluster\nJobCompLoc=@rdkafka\n',
    message: '@dir/jobcompd.conf: ClusterName: "my cluster" is not a valid Kafka topic name (1-249 characters of a-z A-Z 0-9 . _ -, not "." or "..")',
  },
  {
    name: 'bad LogLevel',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\nLogLevel=loud\n',
    message: '@dir/jobcompd.conf:3: LogLevel: must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
  },
  {
    name: 'RecordFormat of a release without jobcomp/kafka',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\nRecordFormat=22.05\n',
    message: '@dir/jobcompd.conf:3: RecordFormat: must be a Slurm release with jobcomp/kafka (23.02, 23.11, 24.05, 24.11, 25.05, 25.11, 26.05, or one of their patch releases such as 24.11.7), got "22.05"',
  },
  {
    name: 'RecordFormat of a series whose record changed between patch releases',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\nRecordFormat=23.11\n',
    message: '@dir/jobcompd.conf:3: RecordFormat: "23.11" is ambiguous: the record changed within 23.11 (23.02-23.11.0, 23.11.1-23.11.6, 23.11.7-23.11.8, 23.11.9+); give the patch release, e.g. 23.11.9',
  },
  {
    name: '[hook] JournalBytes too small to be a journal (not 0, which turns it off)',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n[hook]\nJournalBytes=4096\n',
    message: '@dir/jobcompd.conf:4: JournalBytes: must be 0 (no journal) or a number of bytes from 65536 to 1073741824, got "4096"',
  },
  {
    name: 'bad Listen',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n[http]\nListen=9200\n',
    message: '@dir/jobcompd.conf:4: Listen: must be host:port (e.g. 127.0.0.1:9200) or "off", got "9200"',
  },
  {
    name: 'Kafka listener on a non-loopback address without SASL credentials',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n[kafka]\nListen=0.0.0.0:9292\n',
    message:
      '@dir/jobcompd.conf:4: Listen: 0.0.0.0 is not a loopback address: set SaslUser and SaslPassword (the producers then need security.protocol=SASL_PLAINTEXT, sasl.mechanisms=PLAIN and those credentials), or listen on loopback beside slurmctld',
  },
  {
    name: 'Kafka listener SaslUser without SaslPassword',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n[kafka]\nListen=0.0.0.0:9292\nSaslUser=slurm\n',
    message: '@dir/jobcompd.conf: [kafka] SaslUser/SaslPassword: set both, or neither',
  },
  {
    name: 'upstream rdkafka.conf pointing back at the Kafka listener',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n[kafka]\nListen=127.0.0.1:9292\n',
    rdkafka: 'linger.ms=5\nbootstrap.servers=kafka1:9092,localhost:9292\n',
    message: "@dir/rdkafka.conf:2: bootstrap.servers: localhost:9292 is jobcompd's own [kafka] Listen: this file must name the upstream Kafka cluster; the plugin's JobCompLoc file is the one that points at jobcompd",
  },
  {
    name: "Kafka listener on: slurm.conf's JobCompLoc (the plugin's file) is not taken for the upstream one",
    conf: '[kafka]\nListen=127.0.0.1:9292\n',
    slurmConf: 'ClusterName=hpc1\nJobCompType=jobcomp/kafka\nJobCompLoc=@rdkafka\n',
    args: ['-c', '@dir/jobcompd.conf', '--slurm-conf', '@dir/slurm.conf'],
    message:
      "@dir/jobcompd.conf: JobCompLoc: is not set in jobcompd.conf: with [kafka] Listen on, slurm.conf's JobCompLoc is the plugin's file (pointing at jobcompd); name the upstream cluster's librdkafka file here",
  },
  {
    name: "'#' glued to a value (ini would cut the value there)",
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n[http]\nListen=0.0.0.0:9200\nBasicAuthUser=slurm\nBasicAuthPassword=s3cr#t\n',
    message:
      "@dir/jobcompd.conf:6: BasicAuthPassword: '#' starts a comment in this file, so the value would end before it; write the whole value in double quotes to keep the '#', or put a space before a comment",
  },
  {
    name: "';' glued to a value",
    conf: 'ClusterName=hpc1;prod\nJobCompLoc=@rdkafka\n',
    message:
      "@dir/jobcompd.conf:1: ClusterName: ';' starts a comment in this file, so the value would end before it; write the whole value in double quotes to keep the ';', or put a space before a comment",
  },
  {
    name: "'#' glued to a JobCompParams value (topic=a#b)",
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\nJobCompParams=topic=a#b\n',
    message:
      "@dir/jobcompd.conf:3: JobCompParams: '#' starts a comment in this file, so the value would end before it; write the whole value in double quotes to keep the '#', or put a space before a comment",
  },
  {
    name: "'#' kept in a quoted JobCompParams: the topic name check refuses it",
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\nJobCompParams="enable_job_start,topic=a#b"\n',
    message: '@dir/jobcompd.conf:3: JobCompParams topic: "a#b" is not a valid Kafka topic name (1-249 characters of a-z A-Z 0-9 . _ -, not "." or "..")',
  },
  {
    name: "'\\#' in slurm.conf's JobCompParams keeps the '#': the topic name check refuses it",
    conf: undefined,
    slurmConf: 'ClusterName=hpc1\nJobCompType=jobcomp/kafka\nJobCompLoc=@rdkafka\nJobCompParams=topic=a\\#b\n',
    args: ['--slurm-conf', '@dir/slurm.conf'],
    message: '@dir/slurm.conf:4: JobCompParams topic: "a#b" is not a valid Kafka topic name (1-249 characters of a-z A-Z 0-9 . _ -, not "." or "..")',
  },
  {
    name: 'malformed JobCompParams',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\nJobCompParams=flush_timeout=soon\n',
    message: '@dir/jobcompd.conf:3: JobCompParams flush_timeout: must be an integer number of milliseconds in [-1, 2147483647], got "soon"',
  },
  { name: 'jobcompd.conf that is a directory', conf: undefined, args: ['-c', '@dir'], message: '@dir: cannot read the configuration file: EISDIR' },
  {
    name: 'JobCompLoc that is a directory',
    conf: 'ClusterName=hpc1\nJobCompLoc=@dir\n',
    message: '@dir: cannot read the librdkafka properties file (JobCompLoc): EISDIR',
  },
  {
    name: 'unreadable JobCompLoc',
    conf: 'ClusterName=hpc1\nJobCompLoc=@dir/missing-rdkafka.conf\n',
    message: '@dir/missing-rdkafka.conf: cannot read the librdkafka properties file (JobCompLoc): ENOENT',
  },
  {
    name: 'jobcompd.conf the user may not read (EACCES)',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n',
    modes: { 'jobcompd.conf': 0o000 },
    asNobody: true,
    message: '@dir/jobcompd.conf: cannot read the configuration file: EACCES',
  },
  {
    name: 'JobCompLoc the user may not read (EACCES)',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n',
    modes: { 'rdkafka.conf': 0o000 },
    asNobody: true,
    message: '@dir/rdkafka.conf: cannot read the librdkafka properties file (JobCompLoc): EACCES',
  },
  {
    name: 'unknown librdkafka property',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n',
    rdkafka: '# brokers\nbootstrap.servers=127.0.0.1:9092\nfoo.bar=1\n',
    message: '@dir/rdkafka.conf:3: foo.bar: librdkafka refused the value "1": No such configuration property: "foo.bar"',
  },
  {
    name: 'bad librdkafka value',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n',
    rdkafka: 'bootstrap.servers=127.0.0.1:9092\nlinger.ms=abc\n',
    message: '@dir/rdkafka.conf:2: linger.ms: librdkafka refused the value "abc": Invalid value for configuration property "queue.buffering.max.ms"',
  },
  {
    name: 'no bootstrap.servers',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n',
    rdkafka: 'linger.ms=5\n',
    message: '@dir/rdkafka.conf: bootstrap.servers: is not set: name at least one broker, e.g. bootstrap.servers=kafka1:9092',
  },
  {
    name: 'delivery reports switched off',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n',
    rdkafka: 'bootstrap.servers=127.0.0.1:9092\ndelivery.report.only.error=true\n',
    message: '@dir/rdkafka.conf:2: delivery.report.only.error: jobcompd deletes a record only when Kafka confirms it, so it needs a delivery report for every message',
  },
  {
    name: 'properties librdkafka refuses together',
    conf: 'ClusterName=hpc1\nJobCompLoc=@rdkafka\n',
    rdkafka: 'bootstrap.servers=127.0.0.1:9092\nenable.idempotence=true\nmax.in.flight=10\n',
    message: '@dir/rdkafka.conf:3: max.in.flight: librdkafka cannot create a producer with these properties: `max.in.flight` must be set <= 5 when `enable.idempotence` is true',
  },
  {
    name: 'JobCompParams from slurm.conf, located there',
    conf: undefined,
    slurmConf: 'ClusterName=hpc1\nJobCompType=jobcomp/kafka\nJobCompLoc=@rdkafka\nJobCompParams=enable_job_start,poll_interval=often\n',
    args: ['--slurm-conf', '@dir/slurm.conf'],
    message: '@dir/slurm.conf:4: JobCompParams poll_interval: must be a number of seconds in [0, 4294967295] (fractions allowed), got "often"',
  },
];

// The daemon itself (`run`) must refuse the same way, before it opens the state file.
describe.each(['check-config', 'run'])('%s refuses broken configuration with exit 78 and file:line: key', (command) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const dir = tempDir();
    const sub = (s: string): string => s.replace(/@rdkafka/g, join(dir, 'rdkafka.conf')).replace(/@dir/g, dir);
    writeFiles(dir, { 'rdkafka.conf': c.rdkafka ?? GOOD_RDKAFKA });
    if (c.conf !== undefined) writeFiles(dir, { 'jobcompd.conf': sub(c.conf) });
    if (c.slurmConf !== undefined) writeFiles(dir, { 'slurm.conf': sub(c.slurmConf) });
    for (const [name, mode] of Object.entries(c.modes ?? {})) chmodSync(join(dir, name), mode);
    const args = c.args ? c.args.map(sub) : ['-c', join(dir, 'jobcompd.conf')];
    if (c.asNobody === true) chmodSync(dir, 0o755); // tempDir() is 0700
    const r = runCli([command, ...args], c.asNobody === true ? { asUid: NOBODY_ID } : {});
    expect(r.stderr.split('\n')[0]).toBe(`jobcompd: ${sub(c.message)}`);
    expect(r.code).toBe(78);
  });
});

test('check-config: a Kafka listener off loopback with SASL credentials is accepted, and the password not shown', () => {
  const dir = tempDir();
  writeFiles(dir, {
    'rdkafka.conf': GOOD_RDKAFKA,
    'jobcompd.conf': `ClusterName=hpc1\nJobCompLoc=${join(dir, 'rdkafka.conf')}\n[kafka]\nListen=0.0.0.0:9292\nSaslUser=slurm\nSaslPassword=kafka-secret-do-not-print\n`,
  });
  const r = runCli(['check-config', '--json', '-c', join(dir, 'jobcompd.conf')]);
  expect(r.code).toBe(0);
  expect(r.stdout + r.stderr).not.toContain('kafka-secret-do-not-print');
  expect((JSON.parse(r.stdout) as { kafkaListener: { listen: unknown } }).kafkaListener.listen).toEqual({ host: '0.0.0.0', port: 9292 });
});

describe('check-config on a good configuration', () => {
  it('exits 0, shows the effective settings and never the secrets', () => {
    const dir = tempDir();
    const files = writeFiles(dir, {
      'rdkafka.conf': 'bootstrap.servers=127.0.0.1:9092\nsecurity.protocol=sasl_plaintext\nsasl.mechanism=SCRAM-SHA-256\nsasl.username=slurm\nsasl.password=hunter2\n',
    });
    writeFiles(dir, { 'jobcompd.conf': `ClusterName=hpc1\nJobCompLoc=${files['rdkafka.conf'] ?? ''}\nJobCompParams=enable_job_start,colour=blue\n` });
    const r = runCli(['check-config', '-c', join(dir, 'jobcompd.conf')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('configuration OK');
    expect(r.stdout).toContain('finish -> hpc1, start -> hpc1-job-start');
    expect(r.stdout).toContain('sasl.password=[REDACTED]');
    expect(r.stderr).toContain('JobCompParams colour: unknown option, ignored');
    expect(`${r.stdout}${r.stderr}`).not.toContain('hunter2');
  });

  it('prints the values of known-safe properties only: any other value may be a secret under an innocent name', () => {
    const dir = tempDir();
    const files = writeFiles(dir, {
      'rdkafka.conf': [
        'bootstrap.servers=127.0.0.1:9092',
        'sasl.kerberos.kinit.cmd=kinit -S hunter2',
        'sasl.oauthbearer.extensions=logicalCluster=hunter3',
        'sasl.oauthbearer.token.endpoint.url=https://u:hunter4@idp.example/token',
        '',
      ].join('\n'),
    });
    writeFiles(dir, { 'jobcompd.conf': `ClusterName=hpc1\nJobCompLoc=${files['rdkafka.conf'] ?? ''}\n` });
    for (const args of [['check-config'], ['check-config', '--json']]) {
      const r = runCli([...args, '-c', join(dir, 'jobcompd.conf')]);
      expect(r.code).toBe(0);
      expect(`${r.stdout}${r.stderr}`).not.toMatch(/hunter[234]/);
      expect(r.stdout).toContain('127.0.0.1:9092');
    }
    expect(runCli(['check-config', '-c', join(dir, 'jobcompd.conf')]).stdout).toContain('sasl.kerberos.kinit.cmd=[REDACTED]');
  });

  it('check-config --connect passes the probe\'s error through the redaction', () => {
    // The probe's message quotes bootstrap.servers; a secret value that occurs in it (here,
    // by coincidence, the broker's address) must not come out.
    const dir = tempDir();
    const files = writeFiles(dir, { 'rdkafka.conf': 'bootstrap.servers=127.0.0.1:1\nsecurity.protocol=sasl_plaintext\nsasl.mechanism=PLAIN\nsasl.username=u\nsasl.password=127.0.0.1:1\n' });
    writeFiles(dir, { 'jobcompd.conf': `ClusterName=hpc1\nJobCompLoc=${files['rdkafka.conf'] ?? ''}\n` });
    const r = runCli(['check-config', '--connect', '-c', join(dir, 'jobcompd.conf')], { timeoutMs: 60_000 });
    expect(r.code).toBe(69);
    const kafkaLine = r.stdout.split('\n').find((l) => l.includes('Kafka:')) ?? '';
    expect(kafkaLine).toMatch(/UNREACHABLE: cannot read metadata from \[REDACTED\]/);
    expect(kafkaLine).not.toContain('127.0.0.1:1');
  });

  it('prints the record format in force: the default 26.05, or the layout of the release in RecordFormat', () => {
    const dir = tempDir();
    const files = writeFiles(dir, { 'rdkafka.conf': GOOD_RDKAFKA });
    writeFiles(dir, { 'default.conf': `ClusterName=hpc1\nJobCompLoc=${files['rdkafka.conf'] ?? ''}\nJobCompParams=enable_job_start\n` });
    writeFiles(dir, { 'old.conf': `ClusterName=hpc1\nJobCompLoc=${files['rdkafka.conf'] ?? ''}\nJobCompParams=enable_job_start\nRecordFormat=24.11.7\n` });
    const byDefault = runCli(['check-config', '-c', join(dir, 'default.conf')]);
    expect(byDefault.code).toBe(0);
    expect(byDefault.stdout).toContain('  record format: jobcomp/kafka 26.05\n');
    expect(byDefault.stdout).toContain('finish -> hpc1, start -> hpc1-job-start\n');
    const old = runCli(['check-config', '-c', join(dir, 'old.conf')]);
    expect(old.code).toBe(0);
    expect(old.stdout).toContain('  record format: jobcomp/kafka 24.05.1-24.11 (RecordFormat=24.11.7)\n');
    expect(old.stdout).toContain('start -> hpc1-job-start (start records disabled: the 24.05.1-24.11 record format has none, Slurm added them in 25.05)\n');
    const json = JSON.parse(runCli(['check-config', '--json', '-c', join(dir, 'old.conf')]).stdout) as { recordFormat: { release: string; layout: { name: string; trailingNul: boolean; script: string } } };
    expect(json.recordFormat).toMatchObject({ release: '24.11.7', layout: { name: '24.05.1-24.11', trailingNul: false, script: 'always' } });
  });

  it("keeps a quoted '#' in jobcompd.conf, allows comments after a space, and warns when rdkafka.conf cuts a value at '#'", () => {
    const dir = tempDir();
    writeFiles(dir, { 'rdkafka.conf': 'bootstrap.servers=127.0.0.1:9092 # the broker\nclient.id=slurm#1\n' });
    writeFiles(dir, {
      'jobcompd.conf': `ClusterName=hpc1   # the topic\nJobCompLoc=${join(dir, 'rdkafka.conf')}\n[http]\nListen=127.0.0.1:9200\nBasicAuthUser=slurm\nBasicAuthPassword="pa#ss;word"\n`,
    });
    const r = runCli(['check-config', '-c', join(dir, 'jobcompd.conf')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('finish -> hpc1, start -> hpc1-job-start');
    expect(r.stdout).toContain('client.id=slurm\n');
    expect(r.stderr).toContain(`${join(dir, 'rdkafka.conf')}:2: client.id: the value is cut at '#'`);
    expect(r.stderr).not.toContain('bootstrap.servers: the value is cut');
    expect(`${r.stdout}${r.stderr}`).not.toContain('pa#ss;word');
  });

  it("ends slurm.conf's JobCompParams at '#', as slurm.conf(5) and slurmctld do (topic=a#b is topic a)", () => {
    const dir = tempDir();
    writeFiles(dir, { 'rdkafka.conf': GOOD_RDKAFKA });
    writeFiles(dir, { 'slurm.conf': `ClusterName=hpc1\nJobCompType=jobcomp/kafka\nJobCompLoc=${join(dir, 'rdkafka.conf')}\nJobCompParams=topic=a#b\n` });
    const r = runCli(['check-config', '--slurm-conf', join(dir, 'slurm.conf')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('topics:        finish -> a, start -> hpc1-job-start (start records disabled: no enable_job_start in JobCompParams)\n');
  });

  it('redacts a secret even when librdkafka refuses the configuration', () => {
    const dir = tempDir();
    writeFiles(dir, { 'rdkafka.conf': 'bootstrap.servers=127.0.0.1:9092\nsecurity.protocol=sasl_plaintext\nsasl.mechanism=BOGUS\nsasl.password=hunter2\n' });
    writeFiles(dir, { 'jobcompd.conf': `ClusterName=hpc1\nJobCompLoc=${join(dir, 'rdkafka.conf')}\n` });
    const r = runCli(['check-config', '-c', join(dir, 'jobcompd.conf')]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('rdkafka.conf:3: sasl.mechanism: librdkafka cannot create a producer with these properties: Unsupported SASL mechanism: BOGUS');
    expect(r.stderr).not.toContain('hunter2');
  });
});
