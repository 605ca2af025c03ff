// Real file systems that misbehave: an ext4 image on a loop device, which a test can then
// throttle (slow-disk) or freeze (frozen-spool). Needs root.

import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

/** Undo steps, run last-pushed first; every one runs even if another throws. */
export class Cleanups {
  private readonly steps: (() => void)[] = [];

  push(step: () => void): void {
    this.steps.push(step);
  }

  run(): void {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        step();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/** An ext4 filesystem on a loop device mounted at dir; returns the device's major:minor. */
export function loopFilesystem(image: string, dir: string, cleanups: Cleanups): string {
  execFileSync('truncate', ['-s', '64M', image]);
  execFileSync('mkfs.ext4', ['-q', image]);
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-o', 'loop', image, dir]);
  // a loop mount detaches its device when the last reference goes, so umount is enough
  cleanups.push(() => execFileSync('umount', ['-l', dir]));
  const device = execFileSync('findmnt', ['-n', '-o', 'SOURCE', dir], { encoding: 'utf8' }).trim();
  return execFileSync('lsblk', ['-n', '-o', 'MAJ:MIN', device], { encoding: 'utf8' }).trim();
}

/** Freeze the file system mounted at dir: every write to it blocks until the thaw, pushed onto cleanups. */
export function freeze(dir: string, cleanups: Cleanups): void {
  execFileSync('fsfreeze', ['-f', dir]);
  cleanups.push(() => execFileSync('fsfreeze', ['-u', dir]));
}
