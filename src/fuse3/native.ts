/**
 * The native addon (native/, libfuse 3's low-level API) as JavaScript sees it: what it
 * exports, the operation numbers it sends (native/src/session.h), and its loader. Loading
 * never throws: a missing or broken build (no libfuse3, not built) is a reason, and the mount
 * falls back to fuse-native.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** dispatch(id, op, ino, fh, a, b, c, name, name2, data): id 0 needs no answer. */
export type Dispatch = (id: number, op: number, ino: number, fh: number, a: number, b: number, c: number, name?: string, name2?: string, data?: Buffer) => void;

export interface NativeCounters {
  /** reads answered on the FUSE thread from ready blocks, and their bytes */
  fastReads: number;
  fastBytes: number;
  /** reads handed to JavaScript */
  jsReads: number;
  /** fast reads that found a block file unreadable and went to JavaScript */
  fastFallbacks: number;
  /** 1 when the kernel took up passthrough at INIT (mount(…, passthrough = true) on Linux 6.9+), else 0 */
  passthrough: number;
  /** opens answered with a backing file (replyOpen's `backing`), and those refused (the last errno) */
  passthroughOpens: number;
  passthroughRefused: number;
  passthroughLastErrno: number;
  /** passthrough handles open now (their backing ids are closed at release) */
  passthroughOpen: number;
}

export interface NativeAddon {
  /**
   * `passthrough`: take up FUSE passthrough if the kernel offers it (native/src/passthrough.c),
   * so that replyOpen can hand the kernel a backing file to read itself.
   */
  mount(mountpoint: string, options: string, debug: boolean, dispatch: Dispatch, passthrough?: boolean): void;
  setConnection(id: number): void;
  /** 'clean', 'aborted' (the connection was aborted after 3 s) or 'stuck' */
  unmount(): Promise<'clean' | 'aborted' | 'stuck'>;
  replyErr(id: number, errno: number): boolean;
  replyOk(id: number): boolean;
  replyEntry(id: number, ino: number, attr: Float64Array, entryTimeout: number, attrTimeout: number): boolean;
  replyCreate(id: number, ino: number, attr: Float64Array, entryTimeout: number, attrTimeout: number, fh: number, revSlot: number, flags: number): boolean;
  replyAttr(id: number, ino: number, attr: Float64Array, attrTimeout: number): boolean;
  /**
   * 0: not answered (interrupted); 1: answered; 2: answered with a passthrough handle on the
   * file `backing`, whose reads the kernel serves from it without asking (a backing file the
   * kernel does not take is answered as without one). The kernel's rule: while an inode has a
   * passthrough handle, every other open of it must be passthrough too, or it fails with EIO.
   */
  replyOpen(id: number, fh: number, revSlot: number, flags: number, backing?: string): 0 | 1 | 2;
  replyWrite(id: number, n: number): boolean;
  replyBuf(id: number, data: Buffer, length: number): boolean;
  replyXattr(id: number, size: number): boolean;
  replyStatfs(id: number, s: Float64Array): boolean;
  replyReaddir(id: number, names: string[], inos: Float64Array, modes: Float64Array, firstOffset: number): boolean;
  revOpen(slot: number, size: number): boolean;
  revClose(slot: number): void;
  blockReady(slot: number, index: number, file: string): boolean;
  blockGone(slot: number, index: number): void;
  invalInode(ino: number): boolean;
  /** Queues the invalidation of the kernel's entry `name` in folder `parent` (sent from the addon's own thread). */
  invalEntry(parent: number, name: string): boolean;
  counters(): NativeCounters;
  version(): string;
}

export const Op = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, MKNOD: 6, MKDIR: 7, UNLINK: 8, RMDIR: 9, SYMLINK: 10,
  RENAME: 11, LINK: 12, OPEN: 13, READ: 14, WRITE: 15, FLUSH: 16, RELEASE: 17, FSYNC: 18, OPENDIR: 19, READDIR: 20,
  RELEASEDIR: 21, FSYNCDIR: 22, STATFS: 23, SETXATTR: 24, GETXATTR: 25, LISTXATTR: 26, REMOVEXATTR: 27, ACCESS: 28,
  CREATE: 29, INIT: 30,
} as const;

export const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Op).map(([k, v]) => [v, k.toLowerCase()]));

/** Where scripts/build-native.sh puts the addon (from dist/src/fuse3 or src/fuse3). */
export function addonPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../../../native/build/Release/sreg_fuse.node'), path.resolve(here, '../../native/build/Release/sreg_fuse.node')];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

let cached: { addon?: NativeAddon; why?: string } | undefined;

/** The addon, or why it cannot be used (not built, libfuse3 missing…). */
export function loadNative(): { addon?: NativeAddon; why?: string } {
  if (cached) return cached;
  const file = addonPath();
  if (!existsSync(file)) return (cached = { why: `the native addon is not built (${file}; run npm run build:native)` });
  try {
    const addon = createRequire(import.meta.url)(file) as NativeAddon;
    addon.version();
    cached = { addon };
  } catch (e) {
    cached = { why: `the native addon does not load: ${(e as Error).message.split('\n')[0]}` };
  }
  return cached;
}
