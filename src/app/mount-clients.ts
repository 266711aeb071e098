/**
 * The clients of a running mount: `sreg unmount DIR` (asks the mount to drain and unmount, or
 * clears a dead one) and `sreg status`. Neither touches a mount point whose /proc/mounts entry
 * is not sreg's own, and neither needs libfuse (a dead mount is detached with fusermount).
 */
import { unlink } from 'node:fs/promises';
import type { Config } from '../config/index.js';
import { UsageError } from '../registry/errors.js';
import type { CacheStats, SyncPort, UploadStatus } from '../vfs/index.js';
import { askControl, isRefused } from './control.js';
import { assessMount, PROBE_TIMEOUT_MS } from './liveness.js';
import { openMountState } from './mount-state.js';
import { detachDeadMount, sameProcessAlive } from './procfs.js';
import type { Say } from './daemon.js';

const humanBytes = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${n} bytes`);

export async function unmount(config: Config, mountpoint: string, say: Say): Promise<void> {
  const state = openMountState(config);
  try {
    const a = await assessMount(mountpoint, state.mounts);
    switch (a.kind) {
      case 'foreign':
        throw new UsageError(`${mountpoint} is not an sreg mount (it is ${a.entry.type} from ${a.entry.source}): not touched`, 2);
      case 'none':
        throw new UsageError(`${mountpoint} is not mounted`, 3, 'not_found');
      case 'other':
        throw new UsageError(`${mountpoint} is mounted by another sreg (not of the cache folder ${config.cacheDir}): unmount it with that sreg's settings`, 2);
      case 'hung':
        throw new UsageError(`the sreg mount on ${mountpoint}${a.rec ? ` (pid ${a.rec.pid})` : ''} does not answer: end it (kill -9), then run sreg unmount again`, 5);
      case 'live':
        break;
      case 'dead': {
        await detachDeadMount(mountpoint);
        if (a.rec) {
          state.mounts.remove(mountpoint, a.rec.pid);
          await unlink(a.rec.controlSocket).catch(() => undefined);
        }
        const pending = state.mounts.pendingUploads().files;
        say.result(`cleared a dead mount on ${mountpoint}${pending ? `; ${pending} upload(s) it had accepted will finish at the next sreg mount` : ''}`);
        return;
      }
    }
    let res;
    try {
      res = await askControl(a.rec.controlSocket, { cmd: 'unmount' }, (p) => {
        const s = p as { files?: number; bytes?: number };
        if (s.files) say.info(`uploading: ${s.files} file(s), ${humanBytes(s.bytes ?? 0)} left`);
      });
    } catch (e) {
      if (!isRefused(e)) throw e;
      // It died between the check and the request: clear it as a dead one.
      state.close();
      return await unmount(config, mountpoint, say);
    }
    if (!res.ok) throw new UsageError(`not unmounted: ${res.error ?? 'unknown reason'}`, 5);
    say.result(`unmounted ${mountpoint}`);
  } finally {
    state.close();
  }
}

export interface MountStatus {
  mountpoint?: string;
  state: string;
  pid?: number;
  log?: string;
  account?: string;
  endpoint?: string;
  cache?: CacheStats;
  uploads?: UploadStatus;
  openForWriting?: number;
  /** The FUSE adapter (fuse-adapter.ts's label), and the native adapter's read counters. */
  adapter?: string;
  nativeReads?: { fastReads: number; fastBytes: number; jsReads: number; fastFallbacks: number };
  sync?: ReturnType<SyncPort['status']>;
  pendingUploads?: number;
  pendingBytes?: number;
  note?: string;
}

/** `sreg status`: every mount of this cache folder's state, its cache and upload queue. */
export async function mountStatus(config: Config): Promise<MountStatus[]> {
  const state = openMountState(config);
  try {
    const rows = state.mounts.list();
    const out: MountStatus[] = [];
    for (const r of rows) {
      if (!(await sameProcessAlive(r.pid, r.pidStart))) {
        out.push({ mountpoint: r.mountpoint, pid: r.pid, state: 'dead (run sreg unmount to clear it)', log: r.logFile });
        continue;
      }
      const res = await askControl(r.controlSocket, { cmd: 'status' }, undefined, { timeoutMs: PROBE_TIMEOUT_MS }).catch((e: Error) => ({
        ok: false,
        error: isRefused(e) ? 'its control socket refuses connections: run sreg unmount to clear it' : e.message,
        result: undefined,
      }));
      out.push({ mountpoint: r.mountpoint, pid: r.pid, ...(res.result as Partial<MountStatus>), state: res.ok ? 'mounted' : `not answering (${res.error})`, log: r.logFile });
    }
    const pending = state.mounts.pendingUploads();
    if (rows.length === 0 && pending.files > 0) {
      out.push({ state: 'not mounted', pendingUploads: pending.files, pendingBytes: pending.bytes, note: 'they resume at the next sreg mount' });
    }
    return out;
  } finally {
    state.close();
  }
}
