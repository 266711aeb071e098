/**
 * vfs/: the mount's filesystem semantics, without FUSE (testable with no kernel).
 *
 * Purpose: answer POSIX calls on `collection/name:tag.simg` paths from the catalog, the block
 * cache and the write-back queue (ports.ts), mapping every failure to an errno (errors.ts).
 * Invariants: lookups, stat and readdir are synchronous and never touch the network; a file
 * closed after writing is in the upload journal before release() resolves; handles are
 * numbers owned by this module and point at nodes (nodes.ts), never at path strings: every
 * path with local activity is one node with an explicit state (clean, open for write, pending
 * upload, uploading, removed while open), and namespace.ts alone decides unlink, rename
 * (onto a file, case only, folders) and rmdir from those states. A removed node's handles keep
 * working and nothing of it is uploaded. Concurrency: one JS thread; each call may await I/O,
 * and handles are independent, so concurrent readers of one file share cache blocks, not state.
 * memory/ holds in-memory implementations of every port, for tests.
 */
export { Vfs, dropboxPath, type RemoteOps, type VfsOptions } from './vfs.js';
export { VfsError, errnoOf, type Errno } from './errors.js';
export { XATTR } from './xattr.js';
export { statOf, isImageName, type Stat } from './stat.js';
export type * from './ports.js';
