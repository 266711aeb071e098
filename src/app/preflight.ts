/**
 * `sreg mount`'s checks, before anything is started or touched, each failing with one line
 * and its exit code: the folder (exists, a folder, empty), what is mounted there (a mount that
 * is not sreg's is never touched; a dead sreg mount is cleared), one mount per cache folder's
 * state, /dev/fuse, the token, and a writable cache folder; then libfuse (loaded here, lazily:
 * no other command needs FUSE, and the parent of a background mount leaves it to the mount).
 */
import { existsSync } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import type { Config } from '../config/index.js';
import { LocalError } from '../dropbox/errors.js';
import { UsageError } from '../registry/errors.js';
import { chooseAdapter, type AdapterName, type FuseAdapter } from './fuse-adapter.js';
import { assessMount } from './liveness.js';
import type { MountState } from './mount-state.js';
import { detachDeadMount, sameProcessAlive } from './procfs.js';

export const FUSE_MISSING = 'FUSE is not installed: run scripts/setup.sh (or install fuse3/libfuse2)';

/**
 * Loads the FUSE adapter (fuse-adapter.ts: the native addon or fuse-native, and with it
 * libfuse): only the mount path calls this.
 */
export function loadFuse(wanted?: AdapterName, log: (line: string) => void = () => undefined): Promise<FuseAdapter> {
  return chooseAdapter(wanted, log, (e) => new LocalError(`${FUSE_MISSING} (${(e as Error).message.split('\n')[0]})`, 'ENOFUSE', { cause: e }));
}

/** Clears what `assessMount` found dead on the mount point; throws for anything else there. */
export async function clearMountPoint(mountpoint: string, state: MountState, log: (line: string) => void): Promise<void> {
  const a = await assessMount(mountpoint, state.mounts);
  switch (a.kind) {
    case 'none':
      return;
    case 'foreign':
      throw new UsageError(`${mountpoint} is already mounted (${a.entry.type}, not an sreg mount): mount on another folder`, 6, 'exists');
    case 'live':
      throw new UsageError(`${mountpoint} is already mounted (sreg, pid ${a.rec.pid}): 'sreg unmount ${mountpoint}' first`, 6, 'exists');
    case 'other':
      throw new UsageError(`${mountpoint} is already mounted by another sreg (not of the cache folder ${state.db.file}): unmount it with that sreg first`, 6, 'exists');
    case 'hung':
      throw new UsageError(`${mountpoint} is an sreg mount that does not answer${a.rec ? ` (pid ${a.rec.pid})` : ''}: end that process (kill -9), then mount again`, 6, 'exists');
    case 'dead':
      await detachDeadMount(mountpoint);
      if (a.rec) {
        state.mounts.remove(mountpoint, a.rec.pid);
        await unlink(a.rec.controlSocket).catch(() => undefined);
      }
      log(`cleared a dead mount on ${mountpoint}`);
  }
}

/** Every check but loading libfuse (what `sreg mount`'s parent runs before it starts the mount). */
export async function mountChecks(config: Config, mountpoint: string, state: MountState, log: (line: string) => void = () => undefined): Promise<void> {
  await clearMountPoint(mountpoint, state, log);
  let st;
  try {
    st = await stat(mountpoint);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new UsageError(code === 'ENOENT' ? `${mountpoint} does not exist: create it first (mkdir -p ${mountpoint})` : `cannot use ${mountpoint}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw new UsageError(`${mountpoint} is not a folder`);
  if ((await readdir(mountpoint)).length > 0) throw new UsageError(`${mountpoint} is not empty: mount on an empty folder`);
  for (const m of state.mounts.list()) {
    if (m.mountpoint !== mountpoint && m.pid !== process.pid && (await sameProcessAlive(m.pid, m.pidStart))) {
      throw new UsageError(`this cache folder's state is already mounted on ${m.mountpoint} (pid ${m.pid}): one mount per cache folder; 'sreg unmount ${m.mountpoint}' first, or set SINGULARITY_CACHEDIR to another folder`, 6, 'exists');
    }
  }
  if (!existsSync('/dev/fuse')) {
    throw new LocalError('FUSE is not available here (/dev/fuse is missing): load the fuse kernel module, or give the container --device /dev/fuse', 'ENOFUSE');
  }
  if (!config.accessToken && !config.refreshToken) {
    throw new UsageError('no Dropbox token: set SREGISTRY_DROPBOX_TOKEN, or run `sreg backend login dropbox`', 4);
  }
}
