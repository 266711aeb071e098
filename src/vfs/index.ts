/**
 * vfs/: the mount's filesystem semantics, without FUSE (testable with no kernel).
 *
 * Purpose: answer POSIX calls on `collection/name:tag.simg` paths from the catalog, the block
 * cache and the write-back queue (ports.ts), mapping every failure to an errno (errors.ts).
 * Invariants: lookups, stat and readdir are synchronous and never touch the network; a file
 * closed after writing is in the upload journal before release() resolves; handles are
 * numbers owned by this module. Concurrency: one JS thread; each call may await I/O, and
 * handles are independent, so concurrent readers of one file share cache blocks, not state.
 */
export { Vfs, dropboxPath, type RemoteOps, type VfsOptions } from './vfs.js';
export { VfsError, errnoOf, type Errno } from './errors.js';
export { XATTR } from './xattr.js';
export { statOf, isImageName, type Stat } from './stat.js';
export type * from './ports.js';
