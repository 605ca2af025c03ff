// The LazyFS harness itself (tools/lazyfs/lazyfs.ts). LazyFS 0.3.0 takes a --config-path
// value containing "-o" for a FUSE option and aborts; mkdtemp names such as
// /tmp/jobcompd-syncfail-oyzw2W made CI's power-loss tests fail at random. A path that
// holds "-o" and "-O" on purpose must mount, keep unsynced data until told, and lose it then.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli';
import { useLazyFs } from './helpers/lazyfs';

const lazyfs = useLazyFs();

it('mounts a directory whose path contains "-o", and clear-cache drops what was not synced', async () => {
  const mount = await lazyfs.mount(join(tempDir('jobcompd-lazyfs-o-O-'), 'state-on'));
  const file = join(mount.dir, 'unsynced');
  writeFileSync(file, 'lost on a power cut');
  expect(readFileSync(file, 'utf8')).toBe('lost on a power cut');
  await mount.clearCache();
  expect(existsSync(join(mount.backing, 'unsynced')) ? readFileSync(join(mount.backing, 'unsynced'), 'utf8') : '').toBe('');
});
