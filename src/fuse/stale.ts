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
