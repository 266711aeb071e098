/**
 * Spool files on disk: making a new one's name durable, removal that tolerates a file already
 * gone, and crash orphans.
 */
import { lstat, open, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * fsyncs the spool folder itself, so that the names of the spool files created in it survive a
 * power loss: fsync of a new file makes its bytes durable, not its directory entry (on ext4 with
 * data=ordered it usually is, elsewhere not). Call it after a spool file is created and before a
 * journal row refers to it.
 */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Deletes a file; a file already gone is fine, anything else is logged, never thrown. */
export async function unlinkQuiet(file: string, log: (line: string) => void): Promise<void> {
  try {
    await unlink(file);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ENOENT') log(`upload: cannot remove spool file ${file}: ${(e as Error).message}`);
  }
}

/**
 * Removes the regular files directly in `dir` that no journal row refers to (`isLive`, asked
 * just before each removal) and that were last modified before `beforeMs` (so the spool file of
 * a handle opened since start() is never touched). Returns how many went.
 */
export async function removeOrphans(
  dir: string,
  beforeMs: number,
  isLive: (file: string) => boolean,
  log: (line: string) => void,
): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') log(`upload: cannot list the spool folder ${dir}: ${(e as Error).message}`);
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      const st = await lstat(file);
      if (!st.isFile() || st.mtimeMs >= beforeMs) continue;
    } catch {
      continue;
    }
    if (isLive(file)) continue;
    await unlinkQuiet(file, log);
    removed++;
  }
  return removed;
}
