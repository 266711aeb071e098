/** Spool files on disk: removal that tolerates a file already gone, and crash orphans. */
import { lstat, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';

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
