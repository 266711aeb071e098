/**
 * Driving src/fuse's ops the way the kernel does, without a kernel: through fuse-native's own
 * JavaScript layer (`Fuse.prototype._op_*`, called with the arguments in the order its C side
 * passes them, see node_modules/fuse-native/fuse-native.c), so a handler that reads its
 * arguments in the wrong order fails here as it would on a mount. The VFS behind it is a small
 * in-memory one that records every call and whose methods a test can replace.
 */
/* eslint-disable @typescript-eslint/require-await -- the in-memory VFS has the real one's async methods, with nothing to wait for */
import Fuse from 'fuse-native';
import { constants } from 'node:os';
import { fuseOps, type FuseOpsOptions, type FuseVfs } from '../../src/fuse/index.js';
import { statOf, VfsError, type Stat } from '../../src/vfs/index.js';

export interface Answer {
  args: unknown[];
}

/** What `signal` got: each answer's arguments (there must be exactly one). */
export class Signal {
  readonly answers: Answer[] = [];
  private waiters: (() => void)[] = [];
  readonly fn = (...args: unknown[]): void => {
    this.answers.push({ args });
    for (const w of this.waiters.splice(0)) w();
  };

  /** Resolves with the first answer's arguments. */
  async first(): Promise<unknown[]> {
    if (this.answers.length === 0) await new Promise<void>((r) => this.waiters.push(r));
    return this.answers[0]!.args;
  }
}

export const errno = (name: string): number => -(constants.errno as Record<string, number>)[name]!;

type Calls = [string, ...unknown[]][];

/** An in-memory VFS: files and folders by path, numbered handles; records every call. */
export class TestVfs implements FuseVfs {
  readonly calls: Calls = [];
  readonly files = new Map<string, Buffer>([['/a', Buffer.from('hello')]]);
  readonly folders = new Set<string>(['/', '/d']);
  readonly handles = new Map<number, string>();
  private next = 7;

  private rec(...c: [string, ...unknown[]]): void {
    this.calls.push(c);
  }

  statfs(): ReturnType<FuseVfs['statfs']> {
    this.rec('statfs');
    return { bsize: 4096, frsize: 4096, blocks: 10, bfree: 5, bavail: 5, files: 1, ffree: 1, favail: 1, namemax: 255 };
  }

  getattr(p: string): Stat {
    this.rec('getattr', p);
    if (this.folders.has(p)) return statOf({ isFolder: true, name: p, size: 0, mtimeMs: 0 }, { uid: 0, gid: 0 });
    const f = this.files.get(p);
    if (!f) throw new VfsError('ENOENT', `${p}: no such file`);
    return statOf({ isFolder: false, name: p, size: f.length, mtimeMs: 0 }, { uid: 0, gid: 0 });
  }

  readdir(p: string): string[] {
    this.rec('readdir', p);
    return [...this.files.keys()].filter((f) => f.startsWith(p === '/' ? '/' : `${p}/`)).map((f) => f.slice(f.lastIndexOf('/') + 1));
  }

  async open(p: string, flags: number): Promise<number> {
    this.rec('open', p, flags);
    this.getattr(p);
    const fd = this.next++;
    this.handles.set(fd, p);
    return fd;
  }

  async create(p: string): Promise<number> {
    this.rec('create', p);
    this.files.set(p, Buffer.alloc(0));
    const fd = this.next++;
    this.handles.set(fd, p);
    return fd;
  }

  async read(fd: number, pos: number, len: number, into?: Buffer, gone?: AbortSignal): Promise<Buffer> {
    this.rec('read', fd, pos, len, into?.length, gone instanceof AbortSignal);
    const data = this.files.get(this.handles.get(fd) ?? '')?.subarray(pos, pos + len);
    if (!data) throw new VfsError('EBADF', `no open file ${fd}`);
    if (into) {
      data.copy(into);
      return into.subarray(0, data.length);
    }
    return data;
  }

  async write(fd: number, data: Buffer, pos: number): Promise<number> {
    this.rec('write', fd, Buffer.from(data).toString(), pos);
    return data.length;
  }

  async flush(fd: number): Promise<void> {
    this.rec('flush', fd);
  }

  async release(fd: number): Promise<void> {
    this.rec('release', fd);
    this.handles.delete(fd);
  }

  async discard(fd: number): Promise<void> {
    this.rec('discard', fd);
    this.handles.delete(fd);
  }

  async truncate(p: string, size: number): Promise<void> {
    this.rec('truncate', p, size);
  }

  async ftruncate(fd: number, size: number): Promise<void> {
    this.rec('ftruncate', fd, size);
  }

  async unlink(p: string): Promise<void> {
    this.rec('unlink', p);
  }

  async rename(from: string, to: string): Promise<void> {
    this.rec('rename', from, to);
  }

  async mkdir(p: string): Promise<void> {
    this.rec('mkdir', p);
  }

  async rmdir(p: string): Promise<void> {
    this.rec('rmdir', p);
  }

  readonly xattr: FuseVfs['xattr'] = {
    get: async (p: string, name: string) => {
      this.rec('xattr.get', p, name);
      return Buffer.from(`value of ${name}`);
    },
    list: (p: string) => {
      this.rec('xattr.list', p);
      return ['user.a', 'user.bb'];
    },
    set: (name: string): never => {
      this.rec('xattr.set', name);
      throw new VfsError('EPERM', `${name} is read-only`);
    },
    remove: async (p: string, name: string) => {
      this.rec('xattr.remove', p, name);
    },
  };
}

interface FuseJs {
  ops: Record<string, unknown>;
  [op: `_op_${string}`]: (signal: (...a: unknown[]) => void, ...args: unknown[]) => void;
}

export interface Driver {
  vfs: TestVfs;
  logs: string[];
  ops: Record<string, unknown>;
  /** Calls fuse-native's `_op_<name>` with the C side's arguments; resolves with the first answer. */
  call(name: string, ...args: unknown[]): Promise<unknown[]>;
  /** The same, returning the Signal (for counting answers). */
  start(name: string, ...args: unknown[]): Signal;
}

export function driver(vfs = new TestVfs(), opts: FuseOpsOptions = {}): Driver {
  const logs: string[] = [];
  const ops = fuseOps(vfs, (l) => logs.push(l), opts);
  const fuse = new Fuse('/nonexistent-mountpoint-never-mounted', ops, { timeout: false }) as unknown as FuseJs;
  const start = (name: string, ...args: unknown[]): Signal => {
    const s = new Signal();
    const op = fuse[`_op_${name}`];
    if (typeof op !== 'function') throw new Error(`fuse-native has no _op_${name}`);
    op.call(fuse, s.fn, ...args);
    return s;
  };
  return { vfs, logs, ops, start, call: (name, ...args) => start(name, ...args).first() };
}

/** Resolves after the callbacks queued so far (a few turns of the event loop). */
export async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

export function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
