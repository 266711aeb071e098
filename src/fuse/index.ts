/**
 * fuse/: the only importer of fuse-native. Thin handlers: translate the kernel's call, call the
 * VFS once, map the result or the error (vfs/errors.ts) to the reply.
 *
 * Invariants: every kernel callback fires exactly once (`reply` guards it, also on a throw or
 * when a promise never settles: a safety timer answers EIO after SAFETY_TIMEOUT_MS and logs).
 * fuse-native's own per-call timeout is off: a cold read that waits out a 429 must not be
 * failed after 15 s. Mount options: libfuse 2 sends 4 KiB writes unless asked for `big_writes`
 * and a larger `max_write`, and splits O_TRUNC into a separate truncate unless
 * `atomic_o_trunc`; fuse-native has no option for either, so SregFuse appends them to the
 * option string fuse-native builds (its `_fuseOptions`).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import Fuse from 'fuse-native';
import { errnoOf, type Errno, type Vfs } from '../vfs/index.js';

const SAFETY_TIMEOUT_MS = 10 * 60 * 1000;
/** The kernel's readahead for the mount (its default for FUSE is 128 KiB). */
export const READAHEAD_KB = 1024;
export const EXTRA_MOUNT_OPTIONS = ['big_writes', 'max_write=131072', 'atomic_o_trunc'];

class SregFuse extends Fuse {
  protected override _fuseOptions(): string {
    const base = super._fuseOptions();
    const extra = EXTRA_MOUNT_OPTIONS.join(',');
    return base ? `${base},${extra}` : `-o${extra}`;
  }
}

const errnoNumber = (e: Errno): number => -(constants.errno[e] ?? constants.errno.EIO);

type Cb = (...args: unknown[]) => void;

export interface FuseLog {
  (line: string): void;
}

/** Calls `work`, then `ok(result, cb)` or cb(-errno); exactly once. */
function reply<T>(op: string, path: string, cb: Cb, log: FuseLog, work: () => T | Promise<T>, ok: (r: T, cb: Cb) => void, onTimeout?: () => void): void {
  let done = false;
  const timer = setTimeout(() => {
    log(`${op} ${path}: no answer after ${SAFETY_TIMEOUT_MS / 1000} s, replying EIO`);
    onTimeout?.();
    once(errnoNumber('EIO'));
  }, SAFETY_TIMEOUT_MS);
  function once(...args: unknown[]): void {
    if (done) return;
    done = true;
    clearTimeout(timer);
    cb(...args);
  }
  const fail = (e: unknown): void => {
    const errno = errnoOf(e);
    if (errno === 'EIO' || errno === 'EACCES' || errno === 'ENOSPC' || errno === 'EAGAIN') log(`${op} ${path}: ${errno}: ${(e as Error)?.message ?? String(e)}`);
    once(errnoNumber(errno));
  };
  try {
    const r = work();
    if (r instanceof Promise) {
      r.then((v) => {
        try {
          ok(v, once);
        } catch (e) {
          fail(e);
        }
      }, fail);
    } else {
      ok(r, once);
    }
  } catch (e) {
    fail(e);
  }
}

export function fuseOps(vfs: Vfs, log: FuseLog): Record<string, (...args: never[]) => void> {
  const ok0 = (_: unknown, cb: Cb): void => cb(0);
  const exists = (p: string): void => void vfs.getattr(p);
  return {
    init: (cb: Cb) => cb(0),
    statfs: (p: string, cb: Cb) => reply('statfs', p, cb, log, () => vfs.statfs(), (r, c) => c(0, r)),
    getattr: (p: string, cb: Cb) => reply('getattr', p, cb, log, () => vfs.getattr(p), (r, c) => c(0, r)),
    fgetattr: (p: string, fd: number, cb: Cb) => reply('fgetattr', p, cb, log, () => vfs.fgetattr(fd, p), (r, c) => c(0, r)),
    access: (p: string, _mode: number, cb: Cb) => reply('access', p, cb, log, () => exists(p), ok0),
    readdir: (p: string, cb: Cb) => reply('readdir', p, cb, log, () => vfs.readdir(p), (r, c) => c(0, r)),
    open: (p: string, flags: number, cb: Cb) => reply('open', p, cb, log, () => vfs.open(p, flags), (fd, c) => c(0, fd)),
    create: (p: string, _mode: number, cb: Cb) => reply('create', p, cb, log, () => vfs.create(p), (fd, c) => c(0, fd)),
    // The VFS reads into the kernel's buffer, which is valid only until we answer: a cache hit
    // costs one positional read and no copy. If the safety timer answers first (a fetch stuck
    // for minutes), the signal tells the cache to write nothing more into it.
    read: (p: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
      const answered = new AbortController();
      reply(
        'read',
        p,
        cb,
        log,
        () => vfs.read(fd, pos, len, buf.subarray(0, len), answered.signal),
        (data, c) => {
          const n = Math.min(len, data.length);
          if (data.buffer !== buf.buffer || data.byteOffset !== buf.byteOffset) data.copy(buf, 0, 0, n);
          c(n);
        },
        () => answered.abort(),
      );
    },
    write: (p: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      reply('write', p, cb, log, () => vfs.write(fd, buf.subarray(0, len), pos), (n, c) => c(n)),
    flush: (p: string, fd: number, cb: Cb) => reply('flush', p, cb, log, () => vfs.flush(fd), ok0),
    fsync: (p: string, fd: number, _datasync: number, cb: Cb) => reply('fsync', p, cb, log, () => vfs.fsync(fd), ok0),
    release: (p: string, fd: number, cb: Cb) => reply('release', p, cb, log, () => vfs.release(fd), ok0),
    truncate: (p: string, size: number, cb: Cb) => reply('truncate', p, cb, log, () => vfs.truncate(p, size), ok0),
    ftruncate: (p: string, fd: number, size: number, cb: Cb) => reply('ftruncate', p, cb, log, () => vfs.ftruncate(fd, size), ok0),
    unlink: (p: string, cb: Cb) => reply('unlink', p, cb, log, () => vfs.unlink(p), ok0),
    rename: (from: string, to: string, cb: Cb) => reply('rename', from, cb, log, () => vfs.rename(from, to), ok0),
    mkdir: (p: string, _mode: number, cb: Cb) => reply('mkdir', p, cb, log, () => vfs.mkdir(p), ok0),
    rmdir: (p: string, cb: Cb) => reply('rmdir', p, cb, log, () => vfs.rmdir(p), ok0),
    // Times, modes and owners are not stored in Dropbox: accepted (so cp -p and rsync -a work) and not kept.
    utimens: (p: string, _a: unknown, _m: unknown, cb: Cb) => reply('utimens', p, cb, log, () => exists(p), ok0),
    chmod: (p: string, _mode: number, cb: Cb) => reply('chmod', p, cb, log, () => exists(p), ok0),
    chown: (p: string, _u: number, _g: number, cb: Cb) => reply('chown', p, cb, log, () => exists(p), ok0),
    getxattr: (p: string, name: string, _pos: number, cb: Cb) => reply('getxattr', p, cb, log, () => vfs.xattr.get(p, name), (v, c) => c(0, v)),
    listxattr: (p: string, cb: Cb) => reply('listxattr', p, cb, log, () => vfs.xattr.list(p), (v, c) => c(0, v)),
    setxattr: (p: string, name: string, _v: Buffer, _pos: number, _flags: number, cb: Cb) =>
      reply('setxattr', p, cb, log, () => vfs.xattr.set(name), ok0),
    removexattr: (p: string, name: string, cb: Cb) => reply('removexattr', p, cb, log, () => vfs.xattr.remove(p, name), ok0),
  };
}

export interface MountedFs {
  unmount(): Promise<void>;
}

export function mountFuse(mountpoint: string, vfs: Vfs, opts: { log: FuseLog; uid: number; gid: number; debug?: boolean }): Promise<MountedFs> {
  const fuse = new SregFuse(mountpoint, fuseOps(vfs, opts.log), {
    timeout: false,
    fsname: 'sreg',
    subtype: 'sreg',
    uid: opts.uid,
    gid: opts.gid,
    entryTimeout: 5,
    attrTimeout: 5,
    debug: opts.debug ?? false,
  });
  return new Promise((resolve, reject) => {
    fuse.mount((err) => {
      if (err) return reject(err);
      resolve({
        unmount: () => new Promise<void>((res, rej) => fuse.unmount((e) => (e ? rej(e) : res()))),
      });
    });
  });
}

/**
 * Raises the kernel's readahead for the mount's backing device (/sys/class/bdi/MAJOR:MINOR/
 * read_ahead_kb) from FUSE's 128 KiB to READAHEAD_KB, so a sequential reader has several 128 KiB
 * reads in flight instead of one or two. Measured with `dd bs=1M` of a 1 GiB image: cold
 * (shaped emulator) 141 → 166 MB/s, cached 650 → 800 MB/s. Needs root (sysfs); elsewhere the
 * mount works as before and says so in its log. The device number comes from
 * /proc/self/mountinfo, not stat(), which would be answered by this very process.
 */
export async function raiseReadahead(mountpoint: string, log: FuseLog): Promise<void> {
  try {
    const line = (await readFile('/proc/self/mountinfo', 'utf8'))
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => unescapeMountPath(f[4] ?? '') === mountpoint)
      .at(-1);
    const dev = line?.[2];
    if (!dev || !/^\d+:\d+$/.test(dev)) throw new Error(`${mountpoint} is not in /proc/self/mountinfo`);
    await writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, String(READAHEAD_KB));
  } catch (e) {
    log(`kernel readahead left at its default (${(e as Error).message}): sequential reads will be slower`);
  }
}

/** /proc/mounts and mountinfo escape space, tab, newline and backslash as \ooo. */
export function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Clears a mount whose process died (`fusermount -uz`). */
export function forceUnmount(mountpoint: string): Promise<void> {
  return new Promise((resolve, reject) => Fuse.unmount(mountpoint, (e) => (e ? reject(e) : resolve())));
}
