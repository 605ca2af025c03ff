// How native/Makefile links the hook (docs/install.md#the-native-hooks-build): static-pie by
// default, HOOK_LINK=dynamic on request, and dynamically with a warning where the toolchain
// has no static libc (RHEL without glibc-static), never a failed build for want of one.
// Each build goes into a directory of its own (BUILD=...), so native/build is left alone.

import { spawnSync } from 'node:child_process';
import { chmodSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT, tempDir } from '../helpers/cli';
import { elfInterpreter } from '../helpers/hook';

jest.setTimeout(60_000);

const work = tempDir('jobcompd-hook-build-');

afterAll(() => rmSync(work, { recursive: true, force: true }));

function buildHook(name: string, vars: string[]): { code: number | null; stderr: string; hook: string } {
  const build = join(work, name);
  const r = spawnSync('make', ['-s', '-C', join(PROJECT_ROOT, 'native'), `BUILD=${build}`, ...vars], { encoding: 'utf8', timeout: 50_000 });
  if (r.error) throw r.error;
  return { code: r.status, stderr: r.stderr, hook: join(build, 'jobcompd-hook') };
}

it('links the hook static-pie by default', () => {
  const r = buildHook('default', []);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(elfInterpreter(r.hook)).toBeNull();
});

it('links it against the shared libc with HOOK_LINK=dynamic', () => {
  const r = buildHook('dynamic', ['HOOK_LINK=dynamic']);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(elfInterpreter(r.hook)).toMatch(/\/ld-linux[^/]*\.so\.\d+$/);
});

it('relinks a built hook when HOOK_LINK changes, and only then', () => {
  expect(elfInterpreter(buildHook('switched', []).hook)).toBeNull();
  const dynamic = buildHook('switched', ['HOOK_LINK=dynamic']);
  expect(elfInterpreter(dynamic.hook)).not.toBeNull();
  const built = statSync(dynamic.hook).mtimeMs;
  expect(buildHook('switched', ['HOOK_LINK=dynamic']).code).toBe(0);
  expect(statSync(dynamic.hook).mtimeMs).toBe(built);
});

it('links it dynamically, and says so, when the compiler has no static libc', () => {
  // a compiler that finds no libc.a or rcrt1.o, as gcc does on RHEL without glibc-static
  const cc = join(work, 'cc-without-static-libc');
  writeFileSync(cc, '#!/bin/sh\ncase "$1" in -print-file-name=*) echo "${1#-print-file-name=}"; exit 0;; esac\nexec cc "$@"\n');
  chmodSync(cc, 0o755);
  const r = buildHook('no-static-libc', [`CC=${cc}`]);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/no static libc.*HOOK_LINK=dynamic/);
  expect(elfInterpreter(r.hook)).not.toBeNull();
});

it('refuses a HOOK_LINK it does not know, naming it', () => {
  const r = buildHook('bad', ['HOOK_LINK=shared']);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/HOOK_LINK must be static or dynamic, not "shared"/);
});
