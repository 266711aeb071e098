/**
 * fuse3/: the native FUSE adapter, over the addon in native/ (libfuse 3's low-level API, a
 * multi-threaded loop, 1 MiB reads and writes). Every request but a read of cached bytes is
 * answered here, through the same VFS calls, limits and reply rules as the fuse-native adapter
 * (src/fuse); reads of blocks that are on disk and verified are answered by the addon on its
 * own threads without touching JavaScript (blocks.ts, native/src/fastread.c).
 *
 * Mount options: fsname=sreg, subtype=sreg, max_read=1 MiB; no default_permissions (as with
 * fuse-native: the VFS decides); entry and attribute timeouts of 5 s (ops.ts).
 */
import { mountDevice } from '../fuse/mountinfo.js';
import type { FuseLog } from '../fuse/reply.js';
import { SAFETY_TIMEOUT_MS } from '../fuse/ops.js';
import { BlockTables, type BlockSource } from './blocks.js';
import { InodeTable } from './inodes.js';
import { loadNative, type NativeCounters } from './native.js';
import { nativeOps, type NativeVfs } from './ops.js';

export { loadNative, type NativeAddon, type NativeCounters } from './native.js';
export { InodeTable, ROOT_INO, childPath } from './inodes.js';
export type { BlockSource } from './blocks.js';
export type { NativeVfs } from './ops.js';

export const NATIVE_MOUNT_OPTIONS = 'fsname=sreg,subtype=sreg,max_read=1048576';

export interface NativeMount {
  unmount(): Promise<void>;
  counters(): NativeCounters;
}

export async function mountNative(
  mountpoint: string,
  vfs: NativeVfs,
  opts: { log: FuseLog; debug?: boolean; cache?: BlockSource; safetyTimeoutMs?: number },
): Promise<NativeMount> {
  const { addon, why } = loadNative();
  if (!addon) throw new Error(why);
  const blocks = opts.cache ? new BlockTables(addon, opts.cache) : undefined;
  const table = new InodeTable();
  const dispatch = nativeOps(addon, vfs, table, { log: opts.log, timeoutMs: opts.safetyTimeoutMs ?? SAFETY_TIMEOUT_MS, blocks });
  try {
    addon.mount(mountpoint, NATIVE_MOUNT_OPTIONS, opts.debug ?? false, dispatch);
  } catch (e) {
    blocks?.dispose();
    throw e;
  }
  // The connection's number (/sys/fs/fuse/connections/N) is the mount's device minor: kept so
  // that an unmount whose loop does not end can abort the connection.
  const dev = await mountDevice(mountpoint).catch(() => undefined);
  const minor = dev ? Number(dev.split(':')[1]) : NaN;
  if (Number.isInteger(minor)) addon.setConnection(minor);
  else opts.log(`FUSE connection of ${mountpoint} not found in /proc/self/mountinfo: a stuck unmount cannot be aborted`);
  let unmounting: Promise<void> | undefined;
  return {
    unmount: () =>
      (unmounting ??= addon.unmount().then((how) => {
        blocks?.dispose();
        if (how === 'aborted') opts.log('unmount: files were still open on the mount after 3 s: its FUSE connection was aborted (their readers get ENOTCONN)');
        if (how === 'stuck') opts.log('unmount: the FUSE loop did not end and its connection could not be aborted: it ends with this process');
      })),
    counters: () => addon.counters(),
  };
}
