/**
 * Filesystem errors and the one table from any failure to an errno. A VfsError names the
 * errno itself; Dropbox failures (RemoteError) and local disk failures (LocalError, fs
 * errors) are mapped here, exhaustively, so every FUSE reply gets a meaningful errno.
 */
import { CacheError } from '../cache/errors.js';
import { LocalError, RemoteError, type RemoteErrorCode } from '../dropbox/errors.js';

export type Errno =
  | 'ENOENT'
  | 'EEXIST'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'ENOTEMPTY'
  | 'EACCES'
  | 'EPERM'
  | 'EIO'
  | 'ENOSPC'
  | 'EINVAL'
  | 'ENODATA'
  | 'ENOTSUP'
  | 'EBADF'
  | 'EAGAIN'
  | 'EROFS'
  | 'ENAMETOOLONG'
  | 'EFBIG'
  | 'EXDEV'
  | 'EBUSY'
  | 'ESTALE';

export class VfsError extends Error {
  override readonly name = 'VfsError';
  constructor(
    readonly errno: Errno,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const REMOTE_ERRNO: Record<RemoteErrorCode, Errno> = {
  not_found: 'ENOENT',
  conflict: 'EEXIST',
  auth: 'EACCES',
  auth_expired: 'EACCES',
  rate_limited: 'EAGAIN',
  network: 'EIO',
  server: 'EIO',
  insufficient_space: 'ENOSPC',
  content_hash_mismatch: 'EIO',
  reset: 'EIO',
  bad_request: 'EINVAL',
  api: 'EIO',
};

const LOCAL_ERRNO: Record<string, Errno> = {
  ENOSPC: 'ENOSPC',
  EDQUOT: 'ENOSPC',
  EACCES: 'EACCES',
  EPERM: 'EPERM',
  EROFS: 'EROFS',
  ENOENT: 'ENOENT',
  EISDIR: 'EISDIR',
  EFBIG: 'EFBIG',
};

export function errnoOf(e: unknown): Errno {
  if (e instanceof VfsError) return e.errno;
  if (e instanceof CacheError) return e.code === 'invalid_range' ? 'EINVAL' : 'EIO';
  if (e instanceof RemoteError) return REMOTE_ERRNO[e.code];
  const code = e instanceof LocalError ? e.code : (e as { code?: string } | undefined)?.code;
  return (code && LOCAL_ERRNO[code]) || 'EIO';
}

export const enoent = (p: string): VfsError => new VfsError('ENOENT', `${p}: no such file or folder`);
