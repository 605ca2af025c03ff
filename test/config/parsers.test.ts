// The three configuration parsers: the JobCompLoc file (plugin rules), JobCompParams
// (documented rules, not the plugin's substring bugs) and slurm.conf.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { effectiveProperties, isSecretProperty, parseRdkafkaConf, redactSecrets } from '../../src/config/jobcomploc-file';
import { DEFAULT_PARAMS, parseJobCompParams } from '../../src/config/jobcomp-params';
import { loadDaemonConfig } from '../../src/config/daemon-conf';
import { readSlurmConf } from '../../src/config/slurm-conf';
import { ConfigError } from '../../src/errors';

describe('JobCompLoc (rdkafka.conf) parsing follows the plugin', () => {
  const parse = (text: string) => parseRdkafkaConf(text, '/etc/slurm/rdkafka.conf').entries.map(({ key, value, line }) => [key, value, line]);

  it('skips lines without "=" and splits at the first "="', () => {
    expect(parse('# a comment\n\nbootstrap.servers=k1:9092\nsasl.jaas.config=a=b=c\n')).toEqual([
      ['bootstrap.servers', 'k1:9092', 3],
      ['sasl.jaas.config', 'a=b=c', 4],
    ]);
  });

  it('skips the line when the key holds "#" and cuts the value at "#"', () => {
    expect(parse('#bootstrap.servers=x\nfoo # bar = baz\nlinger.ms=5 # five ms\n')).toEqual([['linger.ms', '5', 3]]);
  });

  it('trims C whitespace around key and value, keeps inner whitespace and quotes', () => {
    expect(parse(' \tclient.id =  "my id" \r\n')).toEqual([['client.id', '"my id"', 1]]);
  });

  it('passes empty keys and values on, for librdkafka to judge', () => {
    expect(parse('=x\nk=\n')).toEqual([
      ['', 'x', 1],
      ['k', '', 2],
    ]);
  });

  it('applies duplicates in order: the last one wins and moves to its position', () => {
    const conf = parseRdkafkaConf('a=1\nb=2\na=3\n', 'f');
    expect([...effectiveProperties(conf).entries()].map(([k, p]) => [k, p.value, p.line])).toEqual([
      ['b', '2', 2],
      ['a', '3', 3],
    ]);
  });

  it('takes for a secret every key that names a password, passphrase, secret, credential, token or private key', () => {
    const secret = ['sasl.password', 'ssl.key.password', 'ssl.keystore.password', 'sasl.oauthbearer.client.secret', 'sasl.oauthbearer.assertion.private.key.passphrase', 'sasl.oauthbearer.assertion.private.key.pem', 'sasl.oauthbearer.token.endpoint.url', 'some.future.credential', 'ssl.private_key', 'ssl_key', 'sasl.jaas.config'];
    const plain = ['bootstrap.servers', 'client.id', 'sasl.username', 'ssl.key.location', 'security.protocol', 'enable.sasl.oauthbearer.unsecure.jwt'];
    expect(secret.filter((k) => !isSecretProperty(k))).toEqual([]);
    expect(plain.filter((k) => isSecretProperty(k))).toEqual([]);
  });

  it('redacts secret values in any text', () => {
    const conf = parseRdkafkaConf('sasl.password=hunter2\nssl.key.password=k3y\nclient.id=hunter2x\n', 'f');
    expect(redactSecrets('bad hunter2 and k3y', conf.entries)).toBe('bad [REDACTED] and [REDACTED]');
  });
});

describe('JobCompParams', () => {
  const at = { file: '/etc/slurm/slurm.conf', line: 12 };
  const parse = (s: string) => parseJobCompParams(s, at);
  const error = (s: string): ConfigError => {
    try {
      parse(s);
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error('expected a ConfigError');
  };

  it('defaults like the plugin documents', () => {
    expect(parse('').params).toEqual(DEFAULT_PARAMS);
    expect(DEFAULT_PARAMS).toMatchObject({ flushTimeoutMs: 500, pollIntervalMs: 2000, enableJobStart: false, sendScript: false });
  });

  it('reads the html guide example, honouring poll_interval (the plugin ignores it)', () => {
    const { params, warnings } = parse('flush_timeout=200,poll_interval=3,requeue_on_msg_timeout,topic=mycluster');
    expect(params).toMatchObject({ flushTimeoutMs: 200, pollIntervalMs: 3000, requeueOnMsgTimeout: true, topic: 'mycluster' });
    expect(warnings).toEqual([]);
  });

  it('tokenises: a flag name inside another option does not switch it on', () => {
    const { params } = parse('requeue_purge_in_flight,topic=requeue_on_msg_timeout_x');
    expect(params).toMatchObject({ requeuePurgeInFlight: true, purgeInFlight: false, requeueOnMsgTimeout: false, topic: 'requeue_on_msg_timeout_x' });
  });

  it('matches option names case-insensitively and trims tokens', () => {
    expect(parse(' Topic = jobs , ENABLE_JOB_START ').params).toMatchObject({ topic: 'jobs', enableJobStart: true });
  });

  it('accepts fractional poll intervals and -1 for flush_timeout', () => {
    expect(parse('poll_interval=0.25,flush_timeout=-1').params).toMatchObject({ pollIntervalMs: 250, flushTimeoutMs: -1 });
  });

  it('warns about unknown options and repeated keys (first wins, as in the plugin)', () => {
    const { params, warnings } = parse('topic=a,colour=blue,topic=b');
    expect(params.topic).toBe('a');
    expect(warnings).toEqual([
      '/etc/slurm/slurm.conf:12: JobCompParams colour: unknown option, ignored',
      '/etc/slurm/slurm.conf:12: JobCompParams topic: given more than once; the first value is used',
    ]);
  });

  it('warns when start and finish records share a topic', () => {
    expect(parse('topic=x,topic_job_start=x').warnings[0]).toMatch(/same value 'x'/);
  });

  it.each([
    ['flush_timeout=abc', 'JobCompParams flush_timeout: must be an integer number of milliseconds in [-1, 2147483647], got "abc"'],
    ['flush_timeout=-2', 'JobCompParams flush_timeout: must be in [-1, 2147483647] milliseconds, got -2'],
    ['poll_interval=0x10', 'JobCompParams poll_interval: must be a number of seconds in [0, 4294967295] (fractions allowed), got "0x10"'],
    ['topic=', 'JobCompParams topic: "" is not a valid Kafka topic name'],
    ['topic=a b', 'JobCompParams topic: "a b" is not a valid Kafka topic name'],
    // a '#' that reached the option string (quoted in jobcompd.conf, "\#" in slurm.conf) is no topic character
    ['topic=a#b', 'JobCompParams topic: "a#b" is not a valid Kafka topic name'],
    ['topic', 'JobCompParams topic: needs a value: topic=<value>'],
    ['enable_job_start=yes', 'JobCompParams enable_job_start: is a flag and takes no value (got "yes")'],
  ])('%s is an error naming file, line and key', (text, message) => {
    const err = error(text);
    expect(err.exitCode).toBe(78);
    expect(err.message).toContain(`/etc/slurm/slurm.conf:12: ${message}`);
  });
});

describe('slurm.conf reading', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jobcompd-slurmconf-'));
  const write = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('finds the jobcomp keys case-insensitively among other pairs, with their lines', () => {
    const file = write(
      'slurm.conf',
      [
        '# cluster',
        'ClusterName=hpc1 SlurmctldHost=head',
        'jobcomptype=jobcomp/kafka',
        'JobCompLoc=/etc/slurm/rdkafka.conf # the file',
        'JobCompParams=flush_timeout=200,\\',
        'topic=jobs',
        'NodeName=n[1-4] CPUs=8',
      ].join('\n'),
    );
    expect(readSlurmConf(file)).toEqual({
      clustername: { value: 'hpc1', file, line: 2 },
      jobcomptype: { value: 'jobcomp/kafka', file, line: 3 },
      jobcomploc: { value: '/etc/slurm/rdkafka.conf', file, line: 4 },
      jobcompparams: { value: 'flush_timeout=200,topic=jobs', file, line: 5 },
    });
  });

  it('follows Include, relative to the including file; later values win', () => {
    write('jobcomp.conf', 'JobCompParams="enable_job_start,topic=x"\n');
    const file = write('main.conf', 'ClusterName=a\nJobCompParams=topic=y\nInclude jobcomp.conf\n');
    const values = readSlurmConf(file);
    expect(values.jobcompparams).toEqual({ value: 'enable_job_start,topic=x', file: join(dir, 'jobcomp.conf'), line: 1 });
  });

  it("ends a JobCompParams value at '#' (a comment), unless it is written '\\#'", () => {
    const file = write('hash.conf', 'ClusterName=hpc1\nJobCompParams=topic=a#b\n');
    expect(readSlurmConf(file).jobcompparams).toEqual({ value: 'topic=a', file, line: 2 });
    const escaped = write('escaped.conf', 'ClusterName=hpc1\nJobCompParams=topic=a\\#b\n');
    expect(readSlurmConf(escaped).jobcompparams).toEqual({ value: 'topic=a#b', file: escaped, line: 2 });
  });

  it('reports an unreadable file as a configuration error', () => {
    expect(() => readSlurmConf(join(dir, 'missing.conf'))).toThrow(/missing\.conf: cannot read slurm\.conf: ENOENT/);
  });

  it("takes SlurmUser as the hook socket's default group and allow list (root and SlurmUser)", () => {
    const slurmConf = write('user.conf', 'ClusterName=hpc1\nSlurmUser=nobody\nJobCompType=jobcomp/kafka\nJobCompLoc=/etc/slurm/rdkafka.conf\n');
    expect(loadDaemonConfig({ slurmConf }).hook).toMatchObject({ allowedUids: [0, 65534], socketGroup: 65534 });
    const own = write('own.ini', '[hook]\nAllowedUsers=root\nSocketGroup=root\n');
    expect(loadDaemonConfig({ slurmConf, configFile: own }).hook).toMatchObject({ allowedUids: [0], socketGroup: 0 });
    const unknown = write('unknown.conf', 'ClusterName=hpc1\nSlurmUser=no-such-user-here\nJobCompType=jobcomp/kafka\nJobCompLoc=/etc/slurm/rdkafka.conf\n');
    expect(() => loadDaemonConfig({ slurmConf: unknown })).toThrow(`${unknown}:2: SlurmUser: no such user: "no-such-user-here"`);
  });
});
