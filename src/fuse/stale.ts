/**
 * A stale name in the kernel's cache, answered ESTALE so that the kernel looks again.
 *
 * The kernel keeps every name it looked up for the entry timeout (5 s), each case of a name as
 * a name of its own: `A/f` and `A/F` are two entries to it, one file to the mount (Dropbox
 * ignores case). When a file is removed or renamed through one case, the entries of its other
 * cases stay; an open(2) through one of them reaches the mount as an OPEN of the old file
 * (where a missing file should be created: O_CREAT), not as a lookup.
 *
 * An OPEN is only ever sent for a name the kernel holds: a file the mount does not find there
 * is a stale entry, never a missing file. ESTALE makes Linux redo the whole path walk once
 * with LOOKUP_REVAL (do_filp_open), and FUSE's revalidate then asks the mount (a LOOKUP) for
 * every name on the path instead of trusting its cache: the stale entry is dropped and the
 * open becomes what it should have been (a CREATE, or ENOENT without O_CREAT). The same holds
 * for both adapters (libfuse 2's high-level API passes the errno on). A LOOKUP itself never
 * answers ESTALE: its ENOENT is the truth the retry needs.
 */
import { VfsError, errnoOf } from '../vfs/index.js';

/** Runs `work`; a missing path (ENOENT) becomes ESTALE. */
export function staleIfMissing<T>(what: string, work: () => T | Promise<T>): T | Promise<T> {
  const stale = (e: unknown): never => {
    if (errnoOf(e) === 'ENOENT') throw new VfsError('ESTALE', `${what}: no longer there (a stale name in the kernel's cache: it looks again)`, { cause: e });
    throw e;
  };
  try {
    const r = work();
    return r instanceof Promise ? r.catch(stale) : r;
  } catch (e) {
    return stale(e);
  }
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

/**
 * What each path was last answered as (a folder or a file), for libfuse 2's high-level API,
 * whose nodes are names: after `mv a/c a/f` (a folder onto a file through another case, or
 * a change from elsewhere), the kernel may still hold `A/f` as a file, and a GETATTR answered
 * with a folder makes it fail with EIO (and mark the inode bad). A path that changed kind
 * within `windowMs` (the kernel's timeouts) is answered ESTALE once: stat(2) and the other
 * path calls walk again with LOOKUP_REVAL and see the new entry. getattr also answers
 * libfuse's LOOKUP, which then fails once with ESTALE: the syscall's retry looks it up again.
 */
export class KindMemo {
  private readonly seen = new Map<string, { dir: boolean; at: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly max = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records what `path` is now; throws ESTALE if it was answered as the other kind within the window. */
  check(path: string, mode: number): void {
    const dir = (mode & S_IFMT) === S_IFDIR;
    const t = this.now();
    const was = this.seen.get(path);
    this.seen.delete(path);
    if (this.seen.size >= this.max) {
      for (const [p, v] of this.seen) if (t - v.at > this.windowMs) this.seen.delete(p);
      if (this.seen.size >= this.max) this.seen.clear();
    }
    this.seen.set(path, { dir, at: t });
    if (was && was.dir !== dir && t - was.at <= this.windowMs) {
      throw new VfsError('ESTALE', `${path}: now a ${dir ? 'folder' : 'file'} (a stale name in the kernel's cache: it looks again)`);
    }
  }

  get size(): number {
    return this.seen.size;
  }
}
