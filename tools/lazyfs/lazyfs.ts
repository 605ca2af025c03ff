// LazyFS (tools/lazyfs/build.sh) mounted over a directory for a test: a FUSE file system
// that keeps written data in its own cache until it is fsync'd. clearCache() drops what was
// not synced, which is what a power cut does to the page cache; crashBefore() makes LazyFS
// kill itself before an operation, after which every I/O on the mount fails (ENOTCONN), a
// disk that dies under the process. docs/development.md "Power loss".

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import * as path from 'node:path';
import { dieWithParent, findProjectRoot, onRealProcessExit } from '../harness-common';
import { describeExit, lastLines, runCommand } from '../slurm/commands';

/** A fresh machine builds LazyFS here once (about a minute; cached outside the checkout after). */
const BUILD_TIMEOUT_MS = 20 * 60_000;
const MOUNT_TIMEOUT_MS = 30_000;
/** for LazyFS to act on a command */
const CLEAR_CACHE_TIMEOUT_MS = 30_000;

export class LazyFsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LazyFsError';
  }
}

/**
 * Builds LazyFS (once: build.sh caches it) and returns the directory holding its binary. A
 * missing archive (TOOLS_SRC) or a failed build throws LazyFsError with the log's tail. The
 * caller holds the machine's heavy lock (make conformance does).
 */
export async function buildLazyFs(root: string = findProjectRoot()): Promise<string> {
  const script = path.join(root, 'tools', 'lazyfs', 'build.sh');
  const result = await runCommand(script, [], { cwd: root, env: process.env, timeoutMs: BUILD_TIMEOUT_MS });
  const prefix = result.stdout.trim().split('\n').pop();
  if (result.error !== undefined || result.code !== 0 || prefix === undefined || prefix === '') {
    throw new LazyFsError(`${script} failed (${describeExit(result)}):\n${lastLines(result.stderr, 40)}`);
  }
  return prefix;
}

/** Whether `dir` is a mount point now (its own line in mountinfo). */
function isMounted(dir: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === dir);
}

function unmount(dir: string): void {
  // -z: a test that failed may still hold a file open there
  spawnSync('fusermount3', ['-u', '-z', dir], { stdio: 'ignore', timeout: 10_000 });
}

export class LazyFsMount {
  private readonly done: Socket;
  private completions: (() => void)[] = [];
  private pendingText = '';
  readonly exited: Promise<void>;

  private constructor(
    /** the directory the tests use */
    readonly dir: string,
    /** where LazyFS keeps what reached "disk" */
    readonly backing: string,
    private readonly faultsFifo: string,
    doneFifo: string,
    private readonly proc: ChildProcess,
    private readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    // LazyFS opens the completion FIFO for writing and keeps it: hold it open for reading
    // (O_RDWR never blocks on a FIFO) for the mount's whole life, so no answer is lost.
    this.done = new Socket({ fd: openSync(doneFifo, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
    this.done.on('data', (chunk: Buffer) => this.onDone(chunk.toString('utf8')));
  }

  /**
   * Mounts LazyFS (built in `prefix`) over `dir` (created if missing); what reaches its
   * "disk" goes to `dir` + '.lazyfs'. Resolves once the mount is there.
   */
  static async mount(prefix: string, dir: string, cacheSize = '64mb'): Promise<LazyFsMount> {
    const backing = `${dir}.lazyfs`;
    const control = `${dir}.lazyfs-control`;
    for (const d of [dir, backing, control]) mkdirSync(d, { recursive: true });
    const faultsFifo = path.join(control, 'faults.fifo');
    const doneFifo = path.join(control, 'done.fifo');
    const logFile = path.join(control, 'lazyfs.log');
    const config = path.join(control, 'lazyfs.toml');
    writeFileSync(
      config,
      [
        '[faults]',
        `fifo_path="${faultsFifo}"`,
        `fifo_path_completed="${doneFifo}"`,
        '[cache]',
        'apply_eviction=false',
        '[cache.simple]',
        `custom_size="${cacheSize}"`,
        'blocks_per_page=1',
        '[filesystem]',
        'log_all_operations=false',
        `logfile="${logFile}"`,
        '',
      ].join('\n'),
    );
    // LazyFS 0.3.0 takes a --config-path value containing "-o" (any case, as in
    // /tmp/jobcompd-syncfail-oyzw2W) for a FUSE option, falls back to config/default.toml
    // and aborts: name the file relative to its own directory, which LazyFS starts in.
    const argv = dieWithParent([path.join(prefix, 'lazyfs'), dir, '--config-path', path.basename(config), '-o', 'allow_other', '-o', 'modules=subdir', '-o', `subdir=${backing}`, '-f']);
    const proc = spawn(argv[0] as string, argv.slice(1), { cwd: control, stdio: 'ignore' });
    onRealProcessExit(() => {
      if (isMounted(dir)) unmount(dir);
    });
    let exitedEarly: string | undefined;
    proc.once('exit', (code, signal) => (exitedEarly = describeExit({ code, signal })));
    const deadline = Date.now() + MOUNT_TIMEOUT_MS;
    while (!(isMounted(dir) && existsSync(doneFifo))) {
      if (exitedEarly !== undefined) throw new LazyFsError(`lazyfs ${exitedEarly} before mounting ${dir}; its log: ${logFile}`);
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new LazyFsError(`lazyfs did not mount ${dir} within ${MOUNT_TIMEOUT_MS} ms; its log: ${logFile}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20)); // mountinfo announces nothing: poll it
    }
    return new LazyFsMount(dir, backing, faultsFifo, doneFifo, proc, logFile);
  }

  private onDone(text: string): void {
    this.pendingText += text;
    const lines = this.pendingText.split('\n');
    this.pendingText = lines.pop() ?? '';
    for (const line of lines) if (line === 'finished::clear-cache') this.completions.shift()?.();
  }

  /** One command per write: LazyFS reads its FIFO in chunks and takes each as one command. */
  private command(text: string): void {
    writeFileSync(this.faultsFifo, `${text}\n`);
  }

  /** Drop every byte written since its file's last fsync, as a power cut would; resolves when done. */
  clearCache(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new LazyFsError(`lazyfs did not confirm clear-cache within ${CLEAR_CACHE_TIMEOUT_MS} ms; its log: ${this.logFile}`)), CLEAR_CACHE_TIMEOUT_MS);
      this.completions.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.command('lazyfs::clear-cache');
    });
  }

  /**
   * LazyFS kills itself just before the next `op` (e.g. fsync) on a path matching
   * `pathRegex`: that operation and every later one on the mount fail. Resolves once LazyFS
   * has taken the fault (its log says so; nothing else does).
   */
  async crashBefore(op: 'fsync' | 'write', pathRegex: string): Promise<void> {
    const taken = (): number => (existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8').split('received: VALID crash fault').length - 1 : 0);
    const before = taken();
    this.command(`lazyfs::crash::timing=before::op=${op}::from_rgx=${pathRegex}`);
    const deadline = Date.now() + CLEAR_CACHE_TIMEOUT_MS;
    while (taken() === before) {
      if (Date.now() > deadline) throw new LazyFsError(`lazyfs did not take the crash fault within ${CLEAR_CACHE_TIMEOUT_MS} ms; its log: ${this.logFile}`);
      await new Promise((resolve) => setTimeout(resolve, 20)); // only the log file tells: poll it
    }
  }

  /** fusermount3 -u, and LazyFS gone. */
  async unmount(): Promise<void> {
    this.done.destroy();
    if (isMounted(this.dir)) unmount(this.dir);
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = this.exited;
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  }
}
