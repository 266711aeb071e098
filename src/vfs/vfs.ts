/**
 * The filesystem without FUSE: one facade over the lookup overlay (lookup.ts), the nodes
 * (nodes.ts), the handles and their spool files (handles.ts; where their bytes come from:
 * sources.ts), the namespace operations (namespace.ts) and the attributes (xattr.ts).
 *
 * Reads and stats never wait on the network except to fetch file bytes that are not cached.
 * Writes go to a spool file; flush/release fsyncs it and hands it to the upload journal before
 * close returns, so what close() accepted survives a crash.
 */
import type { FileMeta } from '../dropbox/client.js';
import { Handles } from './handles.js';
import { Lookup } from './lookup.js';
import { Namespace } from './namespace.js';
import { NodeTable, type NodeState } from './nodes.js';
import type { EntryInfo, FileRef, PendingUpload } from './ports.js';
import type { Stat } from './stat.js';
import { lowerOf, type VfsOptions } from './types.js';
import { XattrSupport } from './xattr.js';

export { dropboxPath, type RemoteOps, type VfsOptions } from './types.js';

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

export class Vfs {
  private readonly nodes = new NodeTable();
  private readonly look: Lookup;
  private readonly handles: Handles;
  private readonly ns: Namespace;
  readonly xattr: XattrSupport;
  /** Background work (stray clean-ups) not finished yet. */
  private readonly background = new Set<Promise<void>>();

  constructor(private readonly o: VfsOptions) {
    this.look = new Lookup(this.nodes, o.catalog, o.uploads, o.owner, (o.nowMs ?? Date.now)());
    this.handles = new Handles(o, this.nodes, this.look);
    this.ns = new Namespace(o, this.nodes, this.look);
    this.xattr = new XattrSupport(o, (p) => this.look.lookup(p));
    // Renamed or deleted while uploading, and it landed anyway: that old path should not exist.
    o.uploads.on('stray', (_job: unknown, meta: FileMeta) => this.track(this.ns.stray(meta), meta.pathDisplay));
    // Landed where it was meant to (not as a conflicted copy): open writers derive from it now.
    o.uploads.on('uploaded', (job: PendingUpload, meta: FileMeta) => {
      if (meta.pathLower === job.pathLower) this.handles.uploaded(job.pathLower, o.toEntry(meta));
    });
  }

  private track(work: Promise<void>, what: string): void {
    const w = work.catch((e: unknown) => this.o.log(`could not remove the stray ${what}: ${(e as Error).message}`));
    this.background.add(w);
    void w.finally(() => this.background.delete(w));
  }

  /** Resolves when the background work started so far is done. */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
  }

  /** What the mount shows at a path: a file being written, a pending upload, or the catalog. sync */
  lookup(fusePath: string): EntryInfo | undefined {
    return this.look.lookup(fusePath);
  }

  getattr(fusePath: string): Stat {
    return this.look.getattr(fusePath);
  }

  /** fstat of an open file, from its handle: works after its path was removed or renamed. sync */
  fgetattr(fd: number, fusePath?: string): Stat {
    try {
      return this.handles.fgetattr(fd);
    } catch (e) {
      if (fusePath === undefined) throw e;
      return this.look.getattr(fusePath);
    }
  }

  /** Names in a folder. sync */
  readdir(fusePath: string): string[] {
    return this.look.readdir(fusePath);
  }

  /** The local state of a path (for tests and status). sync */
  stateOf(fusePath: string): NodeState | 'absent' {
    const pl = lowerOf(fusePath);
    const node = this.nodes.get(pl);
    const pending = this.o.uploads.pending(pl);
    if (node) return node.state(pending);
    if (pending) return pending.state === 'uploading' ? 'uploading' : 'pending-upload';
    return this.o.catalog.lookup(pl) ? 'clean' : 'absent';
  }

  statfs(): StatFs {
    const { usedBytes, allocatedBytes } = this.o.space();
    const unit = 4096;
    const total = Math.max(allocatedBytes, usedBytes);
    const free = Math.max(0, total - usedBytes);
    const blocks = Math.floor(total / unit);
    const bfree = Math.floor(free / unit);
    return { bsize: unit, frsize: unit, blocks, bfree, bavail: bfree, files: 1_000_000, ffree: 1_000_000, favail: 1_000_000, namemax: 255 };
  }

  /** A change waits for the catalog's catch-up at start (VfsOptions.caughtUp); reads do not. */
  private afterCatchUp<T>(change: () => Promise<T>): Promise<T> {
    return this.o.caughtUp ? this.o.caughtUp().then(change) : change();
  }

  open(fusePath: string, flags: number): Promise<number> {
    // O_WRONLY or O_RDWR (the access mode is the low two bits): a change.
    if ((flags & 3) !== 0) return this.afterCatchUp(() => this.handles.open(fusePath, flags));
    return this.handles.open(fusePath, flags);
  }

  create(fusePath: string): Promise<number> {
    return this.afterCatchUp(() => this.handles.create(fusePath));
  }

  read(id: number, offset: number, length: number, into?: Buffer, intoGone?: AbortSignal): Promise<Buffer> {
    return this.handles.read(id, offset, length, into, intoGone);
  }

  /** The remote revision a read handle reads (through the block cache), if it does. sync */
  remoteFile(id: number): FileRef | undefined {
    return this.handles.remoteFile(id);
  }

  write(id: number, data: Buffer, offset: number): Promise<number> {
    return this.handles.write(id, data, offset);
  }

  ftruncate(id: number, size: number): Promise<void> {
    return this.handles.ftruncate(id, size);
  }

  truncate(fusePath: string, size: number): Promise<void> {
    return this.afterCatchUp(() => this.handles.truncate(fusePath, size));
  }

  fsync(id: number): Promise<void> {
    return this.handles.fsync(id);
  }

  flush(id: number): Promise<void> {
    return this.handles.flush(id);
  }

  release(id: number): Promise<void> {
    return this.handles.release(id);
  }

  /**
   * A handle the kernel never got (fuse/'s safety timer answered the open or create with EIO
   * first): closed without journaling anything, its spool file removed, as if never opened.
   */
  discard(id: number): Promise<void> {
    return this.handles.discard(id);
  }

  unlink(fusePath: string): Promise<void> {
    return this.afterCatchUp(() => this.ns.unlink(fusePath));
  }

  mkdir(fusePath: string): Promise<void> {
    return this.afterCatchUp(() => this.ns.mkdir(fusePath));
  }

  rmdir(fusePath: string): Promise<void> {
    return this.afterCatchUp(() => this.ns.rmdir(fusePath));
  }

  rename(fromFuse: string, toFuse: string): Promise<void> {
    return this.afterCatchUp(() => this.ns.rename(fromFuse, toFuse));
  }

  /** Every write handle still open (for unmount's report). sync */
  openWriteCount(): number {
    return this.handles.openWriteCount();
  }

  /** Every handle still open, read or write. sync */
  openCount(): number {
    return this.handles.openCount();
  }
}
