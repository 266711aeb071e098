/**
 * What is on a mount point, as `sreg mount` and `sreg unmount` must know before touching it:
 * nothing; a mount that is not sreg's (never touched); a live sreg mount of this cache folder;
 * a dead one (its process gone — a zombie and a reused pid count as gone, by the process start
 * time — and its control socket refusing, its FUSE connection answering ENOTCONN); a live sreg
 * mount of another cache folder; or one that does not answer at all (a stopped process).
 */
import { execFile } from 'node:child_process';
import type { MountRecord, MountRegistry } from '../catalog/index.js';
import { askControl, isRefused } from './control.js';
import { isSregMount, mountEntry, sameProcessAlive, type MountEntry } from './procfs.js';

/** How long a probe of the mount or its control socket may take before it counts as hung. */
export const PROBE_TIMEOUT_MS = 10_000;

export type Assessment =
  | { kind: 'none' }
  | { kind: 'foreign'; entry: MountEntry }
  | { kind: 'live'; rec: MountRecord }
  | { kind: 'dead'; rec: MountRecord | undefined }
  | { kind: 'other' }
  | { kind: 'hung'; rec: MountRecord | undefined };

const PROBE = "require('node:fs').readdir(process.argv[1], (e) => process.stdout.write(e ? String(e.code) : 'OK'))";

/**
 * readdir of the mount point, bounded: 'answers', 'dead' (ENOTCONN and kin) or 'hung'. In a
 * child process, killed at the deadline (FUSE waits are killable): a readdir stuck in this
 * process would hold a libuv thread that even process.exit waits for.
 */
function probeDir(mountpoint: string): Promise<'answers' | 'dead' | 'hung'> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', PROBE, mountpoint], { timeout: PROBE_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err, stdout) => {
      const out = stdout.trim();
      if (out === 'ENOTCONN' || out === 'ECONNABORTED' || out === 'EIO') return resolve('dead');
      if (out !== '') return resolve('answers');
      resolve(err ? 'hung' : 'answers');
    });
  });
}

/** Does the recorded process live and answer on its control socket? */
async function recordLives(rec: MountRecord): Promise<'answers' | 'dead' | 'hung'> {
  if (!(await sameProcessAlive(rec.pid, rec.pidStart))) return 'dead';
  try {
    const r = await askControl(rec.controlSocket, { cmd: 'status' }, undefined, { timeoutMs: PROBE_TIMEOUT_MS });
    return r.ok ? 'answers' : 'hung';
  } catch (e) {
    return isRefused(e) ? 'dead' : 'hung';
  }
}

export async function assessMount(mountpoint: string, mounts: MountRegistry): Promise<Assessment> {
  const entry = await mountEntry(mountpoint);
  if (entry && !isSregMount(entry)) return { kind: 'foreign', entry };
  const rec = mounts.get(mountpoint);
  const lives = rec ? await recordLives(rec) : 'dead';
  if (rec && lives === 'answers') return { kind: 'live', rec };
  if (!entry) {
    if (rec && lives === 'dead') mounts.remove(mountpoint, rec.pid); // a record its process never removed
    return rec && lives === 'hung' ? { kind: 'hung', rec } : { kind: 'none' };
  }
  const dir = await probeDir(mountpoint);
  if (dir === 'dead') return { kind: 'dead', rec };
  if (dir === 'hung' || (rec && lives === 'hung')) return { kind: 'hung', rec };
  return { kind: 'other' };
}
