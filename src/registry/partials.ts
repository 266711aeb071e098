/**
 * Stale partial downloads: `pull` and `add` write `.<name>.sreg-partial-<hex>` beside the
 * image and rename it into place; a process killed with -9 leaves its partial behind. Before
 * they write, those commands remove the partials in that folder that no running process holds
 * open (found by the open descriptors in /proc/PID/fd), so a live pull's partial is never
 * touched, and that nothing wrote for STALE_AFTER_MS: a pull on another machine of a cluster
 * sharing the storage folder (NFS, Lustre) is not in this machine's /proc, but it writes its
 * partial all the time (a stalled download fails within minutes). Files owned by another user
 * are left alone. Best effort: a folder that cannot be
 * read is skipped silently; it only costs disk space.
 */
import { readdir, readlink, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

export const PARTIAL_MARK = '.sreg-partial-';
/** A partial unwritten for this long belongs to no running pull, here or on another machine. */
export const STALE_AFTER_MS = 15 * 60 * 1000;

const isPartial = (name: string): boolean => name.startsWith('.') && name.includes(PARTIAL_MARK);

/** Every file some process on this machine has open (that we may see), as absolute paths. */
async function openFiles(): Promise<Set<string>> {
  const open = new Set<string>();
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  await Promise.all(
    pids.map(async (pid) => {
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
        if (target) open.add(target);
      }
    }),
  );
  return open;
}

/** Removes the stale partials in `dir`; returns the names removed. */
export async function removeStalePartials(dir: string, nowMs = Date.now()): Promise<string[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter(isPartial);
  if (names.length === 0) return [];
  const open = await openFiles();
  const uid = process.getuid?.();
  const removed: string[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    if (open.has(file)) continue;
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile() || (uid !== undefined && st.uid !== uid) || nowMs - st.mtimeMs < STALE_AFTER_MS) continue;
    if (await unlink(file).then(() => true, () => false)) removed.push(name);
  }
  return removed;
}
