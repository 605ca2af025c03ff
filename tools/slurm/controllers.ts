// A primary and a backup slurmctld on one machine (docs/operations.md "Backup controllers").
// slurmctld picks its role by comparing its host name with the SlurmctldHost lines and, with
// NoCtldInAddrAny, listens on the address that name resolves to. So each controller runs in
// its own UTS namespace (its host name) and mount namespace, where its own /etc/hosts, log
// directory and run directory (pid file) are bind-mounted over the shared ones. The network,
// StateSaveLocation (shared, as a site shares it between its controllers), munge and the
// rest stay the machine's. Needs root (unshare, mount).

import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { ControllerHost, Layout } from './config';

const IN_NAMESPACE = 'mount --bind "$1" /etc/hosts && mount --bind "$2" "$3" && mount --bind "$4" "$5" && hostname "$6" && shift 6 && exec "$@"';

/** The command that runs `executable args` as controller `ctl` (of `all`), its files under the cluster's directory. */
export async function asControllerHost(paths: Layout, ctl: ControllerHost, all: readonly ControllerHost[], executable: string, args: string[]): Promise<{ executable: string; args: string[] }> {
  const own = path.join(paths.dir, 'hosts', ctl.name);
  const [log, run, hosts] = [path.join(own, 'log'), path.join(own, 'run'), path.join(own, 'hosts')];
  for (const d of [log, run]) await fsp.mkdir(d, { recursive: true });
  const names = [...all.map((c): [string, string] => [c.name, c.address]), ...Object.entries(ctl.hosts ?? {})];
  const machine = await fsp.readFile('/etc/hosts', 'utf8');
  await fsp.writeFile(hosts, `${machine.trimEnd()}\n${names.map(([name, address]) => `${address} ${name}`).join('\n')}\n`);
  return {
    executable: 'unshare',
    args: ['--uts', '--mount', '--', 'sh', '-c', IN_NAMESPACE, 'sh', hosts, log, paths.log, run, paths.run, ctl.name, executable, ...args],
  };
}

/** Where controller `name` writes its own log (the cluster's log/ seen from its namespace). */
export function controllerLogDir(paths: Layout, name: string): string {
  return path.join(paths.dir, 'hosts', name, 'log');
}
