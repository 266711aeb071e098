/** What `stat` shows for an entry: modes (images keep the exec bit), owner, sizes, times. */
import type { EntryInfo } from './ports.js';

export interface Stat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  mtime: Date;
  atime: Date;
  ctime: Date;
  blocks: number;
  blksize: number;
}

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;

/** `singularity build` makes images executable; other files are plain. */
export function isImageName(name: string): boolean {
  return /\.(simg|sif)$/i.test(name);
}

export function statOf(e: Pick<EntryInfo, 'isFolder' | 'name' | 'size' | 'mtimeMs'>, owner: { uid: number; gid: number }): Stat {
  const t = new Date(e.mtimeMs);
  const mode = e.isFolder ? S_IFDIR | 0o755 : S_IFREG | (isImageName(e.name) ? 0o755 : 0o644);
  return {
    mode,
    uid: owner.uid,
    gid: owner.gid,
    size: e.isFolder ? 4096 : e.size,
    nlink: e.isFolder ? 2 : 1,
    mtime: t,
    atime: t,
    ctime: t,
    blocks: Math.ceil((e.isFolder ? 4096 : e.size) / 512),
    blksize: 4 * 1024 * 1024,
  };
}
