// User and group names to ids, through the system's NSS (LDAP, sssd... included): Node has
// no getpwnam, so `id` and `getent` answer. Used once, when the configuration is read.

import { execFileSync } from 'node:child_process';

/** uid of a user name (or a numeric uid as is); undefined if there is no such user. */
export function userId(nameOrId: string): number | undefined {
  if (/^\d+$/.test(nameOrId)) return Number(nameOrId);
  return lookup('id', ['-u', '--', nameOrId], (out) => Number(out.trim()));
}

/** The primary gid of a user (name or numeric uid); undefined if there is no such user. */
export function primaryGroupId(nameOrId: string): number | undefined {
  return lookup('id', ['-g', '--', nameOrId], (out) => Number(out.trim()));
}

/** gid of a group name (or a numeric gid as is); undefined if there is no such group. */
export function groupId(nameOrId: string): number | undefined {
  if (/^\d+$/.test(nameOrId)) return Number(nameOrId);
  return lookup('getent', ['group', nameOrId], (out) => Number(out.split(':')[2]));
}

function lookup(cmd: string, args: string[], parse: (out: string) => number): number | undefined {
  try {
    const id = parse(execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    return Number.isSafeInteger(id) ? id : undefined;
  } catch {
    return undefined;
  }
}
