/**
 * The operations object fuse-native calls: one thin handler per kernel call, in fuse-native's
 * argument order (index.js `_op_*`), each checking the limits (limits.ts), calling the VFS once
 * and answering through `reply` (exactly once, errno-mapped, safety timer).
 *
 * Argument orders worth a second look (fuse-native 2.2): fsync and fsyncdir are
 * `(path, datasync, fd, cb)`; ftruncate is `(path, fd, size, cb)`; read and write
 * `(path, fd, buf, len, pos, cb)` and answer with a byte count, not (0, n); symlink is
 * `(target, linkPath, cb)`. fuse-native answers FGETATTR with `ops.getattr(path)` whatever is
 * registered, so no fgetattr is registered here (libfuse then calls getattr for fstat too).
 *
 * Not supported, deliberately (README Semantics): link, symlink and mknod (so mkfifo) answer
 * EPERM, the errno link(2), symlink(2) and mknod(2) name for a filesystem that does not make
 * such entries; readlink answers EINVAL (nothing here is a symlink). fallocate and rename
 * flags (RENAME_NOREPLACE, RENAME_EXCHANGE) never reach us: fuse-native registers no fallocate
 * (libfuse answers ENOSYS, which the kernel turns into EOPNOTSUPP) and the kernel refuses
 * rename flags with EINVAL for a libfuse 2 filesystem. chmod, chown and utimens are accepted
 * and not stored (Dropbox keeps no modes, owners or times of ours).
 */
import type { Vfs } from '../vfs/index.js';
import { VfsError } from '../vfs/index.js';
import { checkNameLengths, checkSize, writableBytes } from './limits.js';
import { reply, type Cb, type Call, type FuseLog } from './reply.js';
import { KindMemo, staleIfMissing } from './stale.js';

/** The part of the VFS the adapter calls: what a test can implement in memory. */
export type FuseVfs = Pick<
  Vfs,
  'statfs' | 'getattr' | 'readdir' | 'open' | 'create' | 'read' | 'write' | 'flush' | 'release' | 'discard' | 'truncate' | 'ftruncate' | 'unlink' | 'rename' | 'mkdir' | 'rmdir'
> & { xattr: Pick<Vfs['xattr'], 'get' | 'list' | 'set' | 'remove'> };

export interface FuseOpsOptions {
  /** How long a call may take before the kernel is answered EIO (default 10 minutes). */
  safetyTimeoutMs?: number;
  /** How long a path's kind is remembered (stale.ts KindMemo; default 6 s, past the kernel's 5 s timeouts). */
  kindWindowMs?: number;
}

export const SAFETY_TIMEOUT_MS = 10 * 60 * 1000;

export type FuseOps = Record<string, (...args: never[]) => void>;

export function fuseOps(vfs: FuseVfs, log: FuseLog, opts: FuseOpsOptions = {}): FuseOps {
  const ctx = { log, timeoutMs: opts.safetyTimeoutMs ?? SAFETY_TIMEOUT_MS };
  const run = <T>(call: Call<T>): void => reply(ctx, call);
  /** A call on paths: their names are checked before the work runs. */
  const on = <T>(op: string, paths: string[], cb: Cb, work: Call<T>['work'], ok: Call<T>['ok'], more: Partial<Call<T>> = {}): void =>
    run<T>({
      op,
      path: paths.join(' -> '),
      cb,
      work: (signal) => {
        for (const p of paths) checkNameLengths(p);
        return work(signal);
      },
      ok,
      ...more,
    });
  /** The kernel's entry and attribute timeouts (index.ts) and a margin. */
  const kinds = new KindMemo(opts.kindWindowMs ?? 6_000);
  const ok0 = (_: unknown, c: Cb): void => c(0);
  const okValue = (v: unknown, c: Cb): void => c(0, v);
  const exists = (p: string): void => void vfs.getattr(p);
  const refuse = (errno: 'EPERM' | 'EINVAL', what: string) => (): never => {
    throw new VfsError(errno, `${what}: not supported on this mount`);
  };
  return {
    init: (cb: Cb) => cb(0),
    statfs: (p: string, cb: Cb) => on('statfs', [p], cb, () => vfs.statfs(), okValue),
    getattr: (p: string, cb: Cb) => on('getattr', [p], cb, () => {
      const st = vfs.getattr(p);
      kinds.check(p, st.mode);
      return st;
    }, okValue),
    access: (p: string, _mode: number, cb: Cb) => on('access', [p], cb, () => exists(p), ok0),
    readdir: (p: string, cb: Cb) => on('readdir', [p], cb, () => vfs.readdir(p), okValue),
    // The kernel opens only a name it holds: a missing file is a stale name (stale.ts).
    open: (p: string, flags: number, cb: Cb) =>
      on('open', [p], cb, () => staleIfMissing(p, () => vfs.open(p, flags)), okValue, { undo: (fd: number) => vfs.discard(fd) }),
    create: (p: string, _mode: number, cb: Cb) =>
      on('create', [p], cb, () => vfs.create(p), okValue, { undo: (fd: number) => vfs.discard(fd) }),
    // The VFS reads into the kernel's buffer, valid only until we answer: a cache hit costs
    // one positional read and no copy. The signal tells it to stop writing there.
    read: (p: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      on(
        'read',
        [],
        cb,
        (signal) => vfs.read(fd, pos, len, buf.subarray(0, len), signal),
        (data, c) => {
          const n = Math.min(len, data.length);
          if (data.buffer !== buf.buffer || data.byteOffset !== buf.byteOffset) data.copy(buf, 0, 0, n);
          c(n);
        },
        { holdsBuffer: true, path: p },
      ),
    write: (p: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      on('write', [], cb, () => vfs.write(fd, buf.subarray(0, writableBytes(p, pos, len)), pos), (n, c) => c(n), { holdsBuffer: true, path: p }),
    flush: (p: string, fd: number, cb: Cb) => on('flush', [], cb, () => vfs.flush(fd), ok0, { path: p }),
    // fsync(2): the bytes in the spool (fsynced) and in the upload journal, as close does; a
    // later write through the same descriptor goes on in a copy (see the README's close row).
    fsync: (p: string, _datasync: number, fd: number, cb: Cb) => on('fsync', [], cb, () => vfs.flush(fd), ok0, { path: p }),
    // Namespace changes are made in Dropbox before they are answered: nothing to flush.
    fsyncdir: (p: string, _datasync: number, _fd: number, cb: Cb) => on('fsyncdir', [p], cb, () => exists(p), ok0),
    release: (p: string, fd: number, cb: Cb) => on('release', [], cb, () => vfs.release(fd), ok0, { path: p }),
    truncate: (p: string, size: number, cb: Cb) =>
      on('truncate', [p], cb, () => {
        checkSize(p, size);
        return vfs.truncate(p, size);
      }, ok0),
    ftruncate: (p: string, fd: number, size: number, cb: Cb) =>
      on('ftruncate', [], cb, () => {
        checkSize(p, size);
        return vfs.ftruncate(fd, size);
      }, ok0, { path: p }),
    unlink: (p: string, cb: Cb) => on('unlink', [p], cb, () => vfs.unlink(p), ok0),
    rename: (from: string, to: string, cb: Cb) => on('rename', [from, to], cb, () => vfs.rename(from, to), ok0),
    mkdir: (p: string, _mode: number, cb: Cb) => on('mkdir', [p], cb, () => vfs.mkdir(p), ok0),
    rmdir: (p: string, cb: Cb) => on('rmdir', [p], cb, () => vfs.rmdir(p), ok0),
    link: (from: string, to: string, cb: Cb) => on('link', [from, to], cb, refuse('EPERM', 'hard links'), ok0),
    symlink: (_target: string, linkPath: string, cb: Cb) => on('symlink', [linkPath], cb, refuse('EPERM', 'symbolic links'), ok0),
    readlink: (p: string, cb: Cb) => on('readlink', [p], cb, refuse('EINVAL', 'symbolic links'), okValue),
    mknod: (p: string, _mode: number, _dev: number, cb: Cb) => on('mknod', [p], cb, refuse('EPERM', 'device files, FIFOs and sockets'), ok0),
    // Times, modes and owners are not stored in Dropbox: accepted (so cp -p and rsync -a work) and not kept.
    utimens: (p: string, _a: unknown, _m: unknown, cb: Cb) => on('utimens', [p], cb, () => exists(p), ok0),
    chmod: (p: string, _mode: number, cb: Cb) => on('chmod', [p], cb, () => exists(p), ok0),
    chown: (p: string, _u: number, _g: number, cb: Cb) => on('chown', [p], cb, () => exists(p), ok0),
    getxattr: (p: string, name: string, _pos: number, cb: Cb) => on('getxattr', [p], cb, () => vfs.xattr.get(p, name), okValue),
    listxattr: (p: string, cb: Cb) => on('listxattr', [p], cb, () => vfs.xattr.list(p), okValue),
    setxattr: (p: string, name: string, _v: Buffer, _pos: number, _flags: number, cb: Cb) =>
      on('setxattr', [p], cb, () => {
        exists(p);
        return vfs.xattr.set(name);
      }, ok0),
    removexattr: (p: string, name: string, cb: Cb) => on('removexattr', [p], cb, () => vfs.xattr.remove(p, name), ok0),
  };
}
