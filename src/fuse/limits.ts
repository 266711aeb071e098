/**
 * Limits the mount enforces before the VFS sees a call: name length (ENAMETOOLONG) and file
 * size (EFBIG). Both are Dropbox's, so that a call the mount accepts can also be uploaded.
 */
import { VfsError } from '../vfs/index.js';

/** Longest name (one path component) in bytes: Dropbox's, and Linux's NAME_MAX. */
export const NAME_MAX_BYTES = 255;

/**
 * Largest file Dropbox stores (an upload session refuses to grow past it, `too_large`):
 * 2^41 - 2^22 bytes, about 2 TiB. truncate/ftruncate past it and writes that start at or past
 * it fail with EFBIG; a write that crosses it is cut short there (write(2)'s rule).
 */
export const MAX_FILE_BYTES = 2 ** 41 - 2 ** 22;

/** Throws ENAMETOOLONG when a component of `p` is longer than NAME_MAX_BYTES in UTF-8. */
export function checkNameLengths(p: string): void {
  // UTF-8 takes at most 3 bytes per UTF-16 unit: a short path cannot hold a long name.
  if (p.length * 3 <= NAME_MAX_BYTES) return;
  let start = 0;
  for (;;) {
    const end = p.indexOf('/', start);
    const part = p.slice(start, end === -1 ? undefined : end);
    if (part.length > NAME_MAX_BYTES || (part.length * 3 > NAME_MAX_BYTES && Buffer.byteLength(part) > NAME_MAX_BYTES)) {
      throw new VfsError('ENAMETOOLONG', `${p.slice(0, 80)}…: a name longer than ${NAME_MAX_BYTES} bytes`);
    }
    if (end === -1) return;
    start = end + 1;
  }
}

/** Throws EFBIG for a size past MAX_FILE_BYTES. */
export function checkSize(p: string, size: number): void {
  if (size > MAX_FILE_BYTES) throw new VfsError('EFBIG', `${p}: ${size} bytes is more than Dropbox stores in one file (${MAX_FILE_BYTES})`);
}

/** How many of `len` bytes at `pos` a write may take: EFBIG when none. */
export function writableBytes(p: string, pos: number, len: number): number {
  if (len > 0 && pos >= MAX_FILE_BYTES) throw new VfsError('EFBIG', `${p}: a write at ${pos} is past the largest file Dropbox stores (${MAX_FILE_BYTES} bytes)`);
  return Math.min(len, Math.max(0, MAX_FILE_BYTES - pos));
}
