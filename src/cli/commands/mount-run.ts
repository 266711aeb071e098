/**
 * What `sreg mount DIR` does once its command line is read (by yargs in mount.ts, or by
 * fast-mount.ts): the parent of a background mount loads only daemon.ts, the mount itself
 * (--foreground) only serve.ts and the log.
 */
import path from 'node:path';
import { parseAdapter } from '../../app/fuse-adapter.js';
import { StartAborted } from '../../app/lifecycle.js';
import type { MountChild } from '../../app/mount-child.js';
import { UsageError } from '../../registry/errors.js';
import { parseBytes } from '../../util/bytes.js';
import { run, type GlobalArgs } from '../run.js';

export interface MountArgs extends GlobalArgs {
  dir: string;
  foreground?: boolean;
  'cache-size': string;
  'log-file'?: string;
  fuse?: string;
}

/**
 * Exits once the command is done: a probe of a mount that does not answer (a stopped process)
 * was given up after its deadline, but its readdir still occupies a libuv thread and would keep
 * the process alive. stdout/stderr are synchronous on Linux (files, pipes, terminals).
 */
export function exitWhenDone(): void {
  setImmediate(() => process.exit(process.exitCode ?? 0));
}

/** The mount process of a background mount: its modules loaded, it waits for its parent's `go` (ready-signal.ts). */
async function awaitParentGo(): Promise<void> {
  const { parentChannel } = await import('../../app/ready-signal.js');
  const parent = parentChannel();
  if (!parent) return;
  await Promise.all([import('../../app/mount-log.js'), import('../../app/serve.js')]);
  // The parent's checks failed, or it is gone: nothing was touched, nothing to say.
  if (!(await parent.go)) process.exit(0);
}

export async function runMount(a: MountArgs, early?: MountChild): Promise<void> {
  if (a.foreground) await awaitParentGo();
  return run(a, async (s) => {
    let cacheSizeBytes: number;
    try {
      cacheSizeBytes = parseBytes(a['cache-size']);
    } catch (e) {
      throw new UsageError(`--cache-size: ${(e as Error).message}`);
    }
    const logFile = a['log-file'] ? path.resolve(a['log-file']) : undefined;
    const fuse = parseAdapter(a.fuse, '--fuse');
    const o = { mountpoint: path.resolve(a.dir), cacheSizeBytes, foreground: a.foreground ?? false, debug: a.debug ?? false, logFile, fuse };
    if (!o.foreground) {
      const { mountInBackground } = await import('../../app/daemon.js');
      return mountInBackground(s.config, o, s.out, early);
    }
    // Loaded only here: the parent of a background mount needs none of the mount's parts.
    const [{ openMountLog }, { serveMount }] = await Promise.all([import('../../app/mount-log.js'), import('../../app/serve.js')]);
    const log = openMountLog({ file: logFile, debug: o.debug, maxBytes: s.config.logMaxBytes });
    try {
      await serveMount(s.config, o, log);
    } catch (e) {
      // Stopped on request before it was ready: nothing was left behind, and that is a clean stop.
      if (!(e instanceof StartAborted)) throw e;
      log.info(`${e.message}: nothing left mounted`);
    } finally {
      log.close();
      // Everything is closed; fuse-native's thread must not keep us alive.
      setImmediate(() => process.exit(process.exitCode ?? 0));
    }
  }).then(exitWhenDone);
}
