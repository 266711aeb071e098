/**
 * The low-level requests, mapped onto the same VFS calls the fuse-native adapter makes
 * (src/fuse/ops.ts), with the same limits (fuse/limits.ts) and the same answering rules
 * (fuse/reply.ts: exactly once, errno-mapped, a safety timer). What the low-level API adds:
 * - inodes (inodes.ts): lookup counts an inode, forget drops it, rename and unlink move it;
 * - a file removed (or replaced by a rename) while open is renamed to a `.fuse_hidden…` name
 *   and removed at its last release, as libfuse 2's high-level API does: the VFS keeps the
 *   semantics it has with fuse-native (its handles keep working, nothing of it is uploaded);
 * - the page cache: a read-only open of a remote revision keeps the kernel's cache when that
 *   inode's last such open was of the same revision (`keep_cache`), and a lookup or getattr
 *   that sees another revision invalidates the inode's pages (from the addon's own thread);
 * - block tables for the addon's fast reads (blocks.ts);
 * - case aliases: the kernel keeps each case of a name as its own entry; when a path is removed
 *   or renamed, the entries of its other cases are invalidated (dropAliases), and whatever
 *   reaches the mount through one before that (or through any stale name) is answered ESTALE,
 *   so that the kernel looks again (fuse/stale.ts).
 */
import type { Vfs } from '../vfs/index.js';
import { errnoOf, VfsError } from '../vfs/index.js';
import type { FuseVfs } from '../fuse/ops.js';
import { checkNameLengths, checkSize, writableBytes } from '../fuse/limits.js';
import { reply, type Call, type FuseLog } from '../fuse/reply.js';
import { staleIfMissing } from '../fuse/stale.js';
import type { Stat } from '../vfs/index.js';
import type { BlockTables } from './blocks.js';
import { childPath, InodeTable, type Inode } from './inodes.js';
import { Op, OP_NAMES, type Dispatch, type NativeAddon } from './native.js';

export type NativeVfs = FuseVfs & Pick<Vfs, 'fgetattr' | 'lookup' | 'remoteFile'>;

export const ENTRY_TIMEOUT_S = 5;
export const ATTR_TIMEOUT_S = 5;
const FATTR_SIZE = 1 << 3;
const KEEP_CACHE = 1;
const UNKNOWN_INO = 0xffffffff;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const isDir = (s: Stat): boolean => (s.mode & S_IFMT) === S_IFDIR;

export interface NativeOpsOptions {
  log: FuseLog;
  timeoutMs: number;
  blocks?: BlockTables;
}

const attrOf = (s: Stat): Float64Array =>
  Float64Array.of(s.mode, s.nlink, s.uid, s.gid, s.size, s.blocks, s.blksize, s.atime.getTime(), s.mtime.getTime(), s.ctime.getTime());

/**
 * Buffers for reads that go through JavaScript (up to 1 MiB each): reused, since the addon
 * copies the bytes out when it answers (fuse_reply_buf) and a read is answered only once
 * nothing writes into its buffer any more (reply.ts's holdsBuffer rule).
 */
const READ_BUFFER_BYTES = 1024 * 1024;
const READ_BUFFERS_KEPT = 16;
const readBuffers: Buffer[] = [];
const takeBuffer = (n: number): Buffer => (n <= READ_BUFFER_BYTES ? (readBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES)) : Buffer.allocUnsafe(n));
const giveBuffer = (b: Buffer): void => {
  if (b.length === READ_BUFFER_BYTES && readBuffers.length < READ_BUFFERS_KEPT) readBuffers.push(b);
};

interface Dir {
  names: string[];
  inos: Float64Array;
}

export function nativeOps(addon: NativeAddon, vfs: NativeVfs, table: InodeTable, o: NativeOpsOptions): Dispatch {
  const ctx = { log: o.log, timeoutMs: o.timeoutMs };
  const dirs = new Map<number, Dir>();
  let nextDir = 1;
  /** Handle → the revision its block table is for. */
  const handleRevs = new Map<number, string>();
  let hiddenSeq = 0;
  /** What a setattr is called in the log (as fuse-native's calls were): set before each run. */
  let setattrName = 'setattr';

  const pathOf = (ino: number): string => {
    const p = table.pathOf(ino);
    if (p === undefined) throw new VfsError('ENOENT', `inode ${ino}: no longer has a path`);
    return p;
  };
  const exists = (p: string): void => void vfs.getattr(p);
  const fail = (id: number) => (code: unknown): void => void addon.replyErr(id, -(code as number));

  /** Runs one request through `reply`; `answer` sends the result (false: the kernel did not take it). */
  function run<T>(id: number, op: number, path: string, work: Call<T>['work'], answer: (v: T) => void, more: Partial<Call<T>> = {}): void {
    reply<T>(ctx, {
      op: op === Op.SETATTR ? setattrName : (OP_NAMES[op] ?? String(op)),
      path,
      cb: (code: unknown, v?: unknown) => ((code as number) < 0 ? fail(id)(code) : answer(v as T)),
      work,
      ok: (v, cb) => cb(0, v),
      ...more,
    });
  }

  /** A lookup's answer: stat of the path, its inode counted once the kernel has it. */
  const entry = (id: number, p: string, st: Stat): void => {
    const n = table.lookup(p, isDir(st));
    checkRev(n, p);
    if (!addon.replyEntry(id, n.ino, attrOf(st), ENTRY_TIMEOUT_S, ATTR_TIMEOUT_S)) table.forget(n.ino, 1);
  };

  /** The path now shows another revision than the pages the kernel keeps for it: drop them. */
  const checkRev = (n: Inode, p: string): void => {
    if (n.rev === undefined) return;
    const rev = vfs.lookup(p)?.rev;
    if (rev === n.rev) return;
    n.rev = undefined;
    addon.invalInode(n.ino);
  };

  const statOfIno = (ino: number, fh: number, hasFi: boolean): Stat => {
    const n = table.get(ino);
    const p = n?.path;
    // A file handle only (a folder's handle is ours, not the VFS's: futimens on a folder sends it too).
    if (hasFi && n?.handles.has(fh)) return vfs.fgetattr(fh, p);
    if (p !== undefined) {
      if (n) checkRev(n, p);
      try {
        const st = vfs.getattr(p);
        if (n?.dir === undefined || n.dir === isDir(st)) return st;
      } catch (e) {
        if (errnoOf(e) !== 'ENOENT') throw e;
      }
    }
    // Its path shows nothing, or another kind of thing: an open file answers for itself; else
    // the kernel reached it through a stale name (fuse/stale.ts), and looks again.
    const open = n?.handles.values().next().value;
    if (open !== undefined) return vfs.fgetattr(open);
    throw new VfsError(p === undefined ? 'ENOENT' : 'ESTALE', `inode ${ino}: ${p ?? 'its path'} no longer shows it`);
  };

  /**
   * The path of an inode the kernel reached through a name it holds, if that path still shows
   * it (something of the same kind); ESTALE if not: a stale name (fuse/stale.ts).
   */
  const current = (ino: number): string => {
    const n = table.get(ino);
    const p = n?.path;
    let st: Stat | undefined;
    try {
      if (p !== undefined) st = vfs.getattr(p);
    } catch (e) {
      if (errnoOf(e) !== 'ENOENT') throw e;
    }
    if (p === undefined || st === undefined || (n?.dir !== undefined && n.dir !== isDir(st))) {
      throw new VfsError('ESTALE', `inode ${ino}: ${p ?? 'its path'} no longer shows it (a stale name in the kernel's cache: it looks again)`);
    }
    return p;
  };

  /**
   * `paths` were removed or renamed: the kernel's entries for their other cases (`a/F` when
   * `A/f` went) name what is no longer there, and the kernel would trust them for 5 s. Their
   * inodes lose those paths (a later lookup makes a new one) and the entries are invalidated,
   * queued before the answer and sent from the addon's own thread (the kernel holds the
   * folder's lock until the answer: sent from here, or waited for, it would deadlock). What
   * the kernel still does through such an entry before it goes is answered ESTALE (current()).
   */
  const dropAliases = (paths: string[], except: string[]): void => {
    for (const p of paths) {
      for (const a of table.aliases(p, except)) {
        table.unlink(a.path);
        addon.invalEntry(a.parent, a.name);
      }
    }
  };

  /** A file removed while open keeps a hidden name until its last release (libfuse 2's rule). */
  const hideIfOpen = async (p: string): Promise<boolean> => {
    const n = table.peek(p);
    if (!n || n.handles.size === 0) return false;
    const dir = p.slice(0, p.lastIndexOf('/')) || '/';
    const hidden = childPath(dir, `.fuse_hidden${n.ino.toString(16).padStart(8, '0')}${(++hiddenSeq).toString(16).padStart(8, '0')}`);
    await vfs.rename(p, hidden);
    table.rename(p, hidden);
    return true;
  };

  const opened = (id: number, ino: number, fd: number, create: boolean, p: string): void => {
    const n = table.get(ino);
    const file = vfs.remoteFile(fd);
    let slot = 0;
    let flags = 0;
    if (file && o.blocks) {
      slot = o.blocks.open(file);
      handleRevs.set(fd, file.rev);
    }
    if (file && n) {
      if (n.rev === file.rev) flags |= KEEP_CACHE;
      n.rev = file.rev;
    } else if (n) {
      n.rev = undefined;
    }
    table.addHandle(ino, fd);
    const ok = create
      ? addon.replyCreate(id, ino, attrOf(vfs.fgetattr(fd, p)), ENTRY_TIMEOUT_S, ATTR_TIMEOUT_S, fd, slot, flags)
      : addon.replyOpen(id, fd, slot, flags);
    if (!ok) {
      // Interrupted: the kernel never got the handle.
      closed(ino, fd);
      if (create) table.forget(ino, 1);
      void vfs.discard(fd).catch(() => undefined);
    }
  };

  const closed = (ino: number, fd: number): boolean => {
    const rev = handleRevs.get(fd);
    if (rev !== undefined) {
      handleRevs.delete(fd);
      o.blocks?.close(rev);
    }
    return table.removeHandle(ino, fd);
  };

  const xattrAnswer = (id: number, size: number, value: Buffer): void => {
    if (size === 0) addon.replyXattr(id, value.length);
    else if (value.length > size) addon.replyErr(id, 34 /* ERANGE */);
    else addon.replyBuf(id, value, value.length);
  };

  return (id, op, ino, fh, a, b, c, name, name2, data) => {
    try {
      dispatch(id, op, ino, fh, a, b, c, name, name2, data);
    } catch (e) {
      // A path the table no longer knows, or a bug: answered, never left waiting.
      run(id, op, String(ino), () => { throw e; }, () => undefined);
    }
  };

  function dispatch(id: number, op: number, ino: number, fh: number, a: number, b: number, c: number, name?: string, name2?: string, data?: Buffer): void {
    const child = (): string => childPath(pathOf(ino), name ?? '');
    const named = <T>(paths: string[], work: () => T | Promise<T>) => (): T | Promise<T> => {
      for (const p of paths) checkNameLengths(p);
      return work();
    };
    const okEmpty = (): void => void addon.replyOk(id);
    switch (op) {
      case Op.INIT:
        o.log(`kernel FUSE protocol ${a}.${b}, ${c / 1024} KiB writes`);
        return;
      case Op.FORGET:
        table.forget(ino, a);
        return;
      case Op.LOOKUP: {
        const p = child();
        return run(id, op, p, named([p], () => vfs.getattr(p)), (st: Stat) => entry(id, p, st));
      }
      case Op.GETATTR:
        return run(id, op, String(ino), () => statOfIno(ino, fh, c === 1), (st: Stat) => void addon.replyAttr(id, ino, attrOf(st), ATTR_TIMEOUT_S));
      case Op.SETATTR: {
        const p = table.pathOf(ino);
        setattrName = a & FATTR_SIZE ? (c === 1 ? 'ftruncate' : 'truncate') : 'setattr';
        return run(id, op, p ?? String(ino), async () => {
          if (a & FATTR_SIZE) {
            checkSize(p ?? String(ino), b);
            if (c === 1 && table.get(ino)?.handles.has(fh)) await vfs.ftruncate(fh, b);
            else await vfs.truncate(pathOf(ino), b);
          } else if (!(c === 1 && table.get(ino)?.handles.has(fh))) {
            exists(pathOf(ino)); // chmod, chown, utimens: accepted, not stored
          }
          return statOfIno(ino, fh, c === 1);
        }, (st: Stat) => void addon.replyAttr(id, ino, attrOf(st), ATTR_TIMEOUT_S));
      }
      case Op.READLINK:
        return run(id, op, String(ino), () => { throw new VfsError('EINVAL', 'symbolic links: not supported on this mount'); }, okEmpty);
      case Op.MKNOD: {
        const p = child();
        return run(id, op, p, named([p], () => { throw new VfsError('EPERM', 'device files, FIFOs and sockets: not supported on this mount'); }), okEmpty);
      }
      case Op.SYMLINK: {
        const p = child();
        return run(id, op, p, named([p], () => { throw new VfsError('EPERM', 'symbolic links: not supported on this mount'); }), okEmpty);
      }
      case Op.LINK: {
        const p = childPath(pathOf(fh), name ?? '');
        return run(id, op, p, named([p], () => { throw new VfsError('EPERM', 'hard links: not supported on this mount'); }), okEmpty);
      }
      case Op.MKDIR: {
        const p = child();
        return run(id, op, p, named([p], async () => { await vfs.mkdir(p); return vfs.getattr(p); }), (st: Stat) => entry(id, p, st));
      }
      case Op.UNLINK: {
        const p = child();
        return run(id, op, p, named([p], async () => {
          if (await hideIfOpen(p)) return;
          await vfs.unlink(p);
          table.unlink(p);
        }), () => {
          dropAliases([p], [p]);
          okEmpty();
        });
      }
      case Op.RMDIR: {
        const p = child();
        return run(id, op, p, named([p], async () => { await vfs.rmdir(p); table.unlink(p); }), () => {
          dropAliases([p], [p]);
          okEmpty();
        });
      }
      case Op.RENAME: {
        const from = child();
        const to = childPath(pathOf(fh), name2 ?? '');
        return run(id, op, `${from} -> ${to}`, named([from, to], async () => {
          // libfuse 2 refused rename flags (RENAME_NOREPLACE, RENAME_EXCHANGE) with EINVAL: so do we.
          if (a !== 0) throw new VfsError('EINVAL', 'rename flags are not supported on this mount');
          // The source is a name the kernel holds: gone, it is a stale name (fuse/stale.ts), and
          // the target stays as it is. A case-only rename replaces nothing: its target is the
          // source itself, never hidden (that would remove the file being renamed).
          await staleIfMissing(from, () => vfs.getattr(from));
          if (from.toLowerCase() !== to.toLowerCase()) await hideIfOpen(to);
          await vfs.rename(from, to);
          table.rename(from, to);
        }), () => {
          // A case-only rename leaves the other cases naming the same file: only the target's go.
          dropAliases(from.toLowerCase() === to.toLowerCase() ? [to] : [from, to], [from, to]);
          okEmpty();
        });
      }
      case Op.OPEN: {
        // The kernel opens only a name it holds: a missing file is a stale name (fuse/stale.ts).
        const p = table.pathOf(ino) ?? String(ino);
        return run(id, op, p, async () => {
          const q = current(ino);
          const fd = await staleIfMissing(q, () => vfs.open(q, a));
          const file = o.blocks && vfs.remoteFile(fd);
          // Kept blocks sealed at the last clean close are ready before the first read (never throws).
          if (file) await o.blocks?.prepare(file).catch(() => undefined);
          return fd;
        }, (fd: number) => opened(id, ino, fd, false, p), { undo: (fd: number) => vfs.discard(fd) });
      }
      case Op.CREATE: {
        const p = child();
        return run(id, op, p, named([p], () => vfs.create(p)), (fd: number) => opened(id, table.lookup(p, false).ino, fd, true, p), { undo: (fd: number) => vfs.discard(fd) });
      }
      case Op.READ: {
        if (id === 0) {
          // A read the addon served (c = 1): only the cache's readahead hears of it.
          const file = vfs.remoteFile(fh);
          if (file) o.blocks?.advise(file, b, a, fh);
          return;
        }
        const buf = takeBuffer(a);
        return run(id, op, table.pathOf(ino) ?? String(ino), async (signal) => {
          try {
            return await vfs.read(fh, b, a, buf.subarray(0, a), signal);
          } catch (e) {
            giveBuffer(buf); // settled: nothing writes into it any more (the cache's ReadSink rule)
            throw e;
          }
        }, (got: Buffer) => {
          addon.replyBuf(id, got, Math.min(a, got.length));
          giveBuffer(buf);
        }, { holdsBuffer: true });
      }
      case Op.WRITE: {
        const p = table.pathOf(ino) ?? String(ino);
        return run(id, op, p, () => vfs.write(fh, data!.subarray(0, writableBytes(p, b, a)), b), (n: number) => void addon.replyWrite(id, n), { holdsBuffer: true });
      }
      case Op.FLUSH:
      case Op.FSYNC:
        // fsync(2) as close: the bytes in the spool (fsynced) and in the upload journal.
        return run(id, op, table.pathOf(ino) ?? String(ino), () => vfs.flush(fh), okEmpty);
      case Op.RELEASE: {
        const p = table.pathOf(ino) ?? String(ino);
        return run(id, op, p, async () => {
          try {
            await vfs.release(fh);
          } finally {
            const n = table.get(ino);
            const hidden = n?.path;
            if (closed(ino, fh) && hidden !== undefined && hidden.slice(hidden.lastIndexOf('/') + 1).startsWith('.fuse_hidden')) {
              await vfs.unlink(hidden).catch(() => undefined);
              table.unlink(hidden);
            }
          }
        }, okEmpty);
      }
      case Op.OPENDIR: {
        const p = table.pathOf(ino) ?? String(ino);
        return run(id, op, p, () => {
          current(ino);
          const d = nextDir++;
          dirs.set(d, { names: [], inos: new Float64Array(0) });
          return d;
        }, (d: number) => {
          if (!addon.replyOpen(id, d, 0, 0)) dirs.delete(d);
        });
      }
      case Op.READDIR: {
        const p = table.pathOf(ino) ?? String(ino);
        return run(id, op, p, () => {
          let d = dirs.get(fh);
          if (!d) throw new VfsError('EBADF', `no open folder ${fh}`);
          if (b === 0) {
            // A listing from the start (opendir or rewinddir): taken now, served in pieces.
            const names = ['.', '..', ...vfs.readdir(pathOf(ino))];
            const inos = Float64Array.from(names, (n, i) => (i < 2 ? UNKNOWN_INO : table.peek(childPath(p, n))?.ino ?? UNKNOWN_INO));
            d = { names, inos };
            dirs.set(fh, d);
          }
          return d;
        }, (d: Dir) => {
          // At least 32 bytes an entry: no more than size / 32 of them fit.
          const end = Math.min(d.names.length, b + Math.ceil(a / 32) + 1);
          const names = d.names.slice(b, end);
          addon.replyReaddir(id, names, d.inos.subarray(b, end), new Float64Array(names.length), b);
        });
      }
      case Op.RELEASEDIR:
        dirs.delete(fh);
        return void addon.replyOk(id);
      case Op.FSYNCDIR:
      case Op.ACCESS: {
        const p = pathOf(ino);
        return run(id, op, p, () => exists(p), okEmpty);
      }
      case Op.STATFS:
        return run(id, op, '/', () => vfs.statfs(), (s) => {
          addon.replyStatfs(id, Float64Array.of(s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, s.namemax));
        });
      case Op.GETXATTR: {
        const p = pathOf(ino);
        return run(id, op, p, () => vfs.xattr.get(p, name ?? ''), (v: Buffer) => xattrAnswer(id, a, v));
      }
      case Op.LISTXATTR: {
        const p = pathOf(ino);
        return run(id, op, p, () => Buffer.from(vfs.xattr.list(p).map((n) => `${n}\0`).join('')), (v: Buffer) => xattrAnswer(id, a, v));
      }
      case Op.SETXATTR: {
        const p = pathOf(ino);
        return run(id, op, p, () => { exists(p); return vfs.xattr.set(name ?? ''); }, okEmpty);
      }
      case Op.REMOVEXATTR: {
        const p = pathOf(ino);
        return run(id, op, p, () => vfs.xattr.remove(p, name ?? ''), okEmpty);
      }
      default:
        if (id !== 0) addon.replyErr(id, 38 /* ENOSYS */);
    }
  }
}
