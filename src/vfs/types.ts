/**
 * Value types and path helpers shared by the VFS's modules (a leaf: imports only ports.ts and
 * the Dropbox metadata types, so nothing here can form an import cycle).
 */
import type { FileMeta, FolderMeta, Meta } from '../dropbox/client.js';
import { VfsError } from './errors.js';
import type { BlockCachePort, CatalogPort, EntryInfo, UploadPort } from './ports.js';

/** The remote calls the namespace operations and the attributes make (dropbox/ implements them). */
export interface RemoteOps {
  /** With `parentRev` (a file), only that revision is deleted: another one is a 'conflict'. */
  delete(path: string, parentRev?: string): Promise<unknown>;
  move(from: string, to: string): Promise<Meta>;
  createFolder(path: string): Promise<FolderMeta>;
  listAll(path: string, recursive: boolean): Promise<{ entries: Meta[] }>;
  shareLink(path: string): Promise<string>;
  listSharedLinks(path: string, directOnly: boolean): Promise<string[]>;
  revokeSharedLink(url: string): Promise<void>;
}

export interface VfsOptions {
  catalog: CatalogPort;
  cache: BlockCachePort;
  uploads: UploadPort;
  remote: RemoteOps;
  spoolDir: string;
  owner: { uid: number; gid: number };
  toEntry: (m: FileMeta | FolderMeta) => EntryInfo;
  /** The JSON of `sreg inspect` for an image (user.sregistry.inspect). */
  inspectJson: (entry: EntryInfo) => string | undefined;
  /** Cached space usage for statfs. */
  space: () => { usedBytes: number; allocatedBytes: number };
  log: (line: string) => void;
  nowMs?: () => number;
  /**
   * Resolves once the catalog has caught up with the changes made while nothing was mounted
   * (CatalogSync.caughtUp): until then changes (open for writing, create, truncate, unlink,
   * mkdir, rmdir, rename) wait, so that none is based on an entry that changed meanwhile;
   * reads, stats and listings answer from the saved catalog at once. Unset: never waits.
   */
  caughtUp?: () => Promise<void>;
}

/** "/a/B" → Dropbox path "/a/B"; "/" → "". */
export function dropboxPath(fusePath: string): string {
  return fusePath === '/' ? '' : fusePath;
}

export const lowerOf = (fusePath: string): string => dropboxPath(fusePath).toLowerCase();
export const parentOf = (pl: string): string => pl.slice(0, Math.max(0, pl.lastIndexOf('/')));
export const nameOf = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
export const dirOf = (fusePath: string): string => {
  const i = fusePath.lastIndexOf('/');
  return i <= 0 ? '/' : fusePath.slice(0, i);
};
/** Is `pl` `folderLower` itself or below it? */
export const isUnder = (pl: string, folderLower: string): boolean => pl === folderLower || pl.startsWith(`${folderLower}/`);
/** `p` (below `fromLower`) moved to below `toPath`. */
export const rebase = (p: string, fromLower: string, toPath: string): string => [toPath, ...p.split('/').slice(fromLower.split('/').length)].join('/');

/**
 * libfuse 2 renames a file that is removed while open to `.fuse_hiddenXXXX` and unlinks that
 * name at the last close. Such names are the kernel's bookkeeping, never a user's file: the
 * VFS treats the rename as the removal and never uploads them.
 */
export const isFuseHidden = (p: string): boolean => nameOf(p).startsWith('.fuse_hidden');

const REFUSED = new Set(['desktop.ini', 'thumbs.db', '.ds_store', 'icon\r', '.dropbox', '.dropbox.attr']);

/** Names Dropbox would refuse: better an errno now than an upload that can never succeed. */
export function checkName(p: string): void {
  const name = nameOf(p);
  if (Buffer.byteLength(name) > 255) throw new VfsError('ENAMETOOLONG', `${p}: name longer than 255 bytes`);
  if (REFUSED.has(name.toLowerCase()) || name.endsWith(' ') || name.includes('\\') || name.includes('\x7f')) {
    throw new VfsError('EINVAL', `${p}: Dropbox does not accept the name '${name}'`);
  }
}

export const O_ACCMODE = 3;
export const O_TRUNC = 0o1000;
