// LazyFS for a test file: built once before its tests (tools/lazyfs/build.sh, cached outside
// the checkout), and every mount a test made unmounted after it.

import { buildLazyFs, LazyFsMount } from '../../../tools/lazyfs/lazyfs';

/** A fresh machine builds LazyFS here, once (about a minute). */
const BUILD_TIMEOUT_MS = 20 * 60_000;

export function useLazyFs(): { mount: (dir: string) => Promise<LazyFsMount> } {
  let prefix: string | undefined;
  const mounts: LazyFsMount[] = [];
  beforeAll(async () => {
    prefix = await buildLazyFs();
  }, BUILD_TIMEOUT_MS);
  afterEach(async () => {
    await Promise.all(mounts.splice(0).map((m) => m.unmount()));
  });
  return {
    async mount(dir) {
      if (prefix === undefined) throw new Error('LazyFS is not built yet');
      const m = await LazyFsMount.mount(prefix, dir, '256mb');
      mounts.push(m);
      return m;
    },
  };
}
