/**
 * Nodes: one per path that has local activity (an open handle), with an explicit state. A
 * path without a node is whatever the upload journal or the catalog says (clean or pending).
 *
 * Invariants:
 * - `live` maps a path (lower case) to at most one node, and a node is in `live` under its
 *   current pathLower exactly while it is not removed.
 * - Handles point at nodes, never at path strings: a rename moves the node (and, for a folder,
 *   every node below it) and the handles follow; a removal detaches the node, its handles keep
 *   working, and nothing written through them is ever uploaded.
 * - A node goes away when its last handle is released.
 * Concurrency: one JS thread; every method is synchronous.
 */
import type { FileHandle } from 'node:fs/promises';
import type { EntryInfo, FileRef, PendingUpload } from './ports.js';
import { isUnder, nameOf, rebase } from './types.js';

/** What a path is, locally: the one state the namespace operations decide from. */
export type NodeState = 'clean' | 'open-for-write' | 'pending-upload' | 'uploading' | 'removed-while-open';

export interface ReadHandle {
  kind: 'read';
  id: number;
  node: Node;
  /** A remote revision (read through the block cache)… */
  file?: FileRef;
  /** …or local bytes not in Dropbox yet (a spool file). */
  spool?: FileHandle;
  /** What fstat shows. */
  entry: EntryInfo;
}

/**
 * The bytes of an open file: one spool file, shared by every descriptor open for writing on
 * the file (POSIX: they write one file, and each reads what the others wrote; the kernel keeps
 * one size and one page cache for them). A descriptor opened while the file's spool has failed
 * starts a new one, from the bytes the file had before (Node.writer()).
 */
export interface Spool {
  path: string;
  fh: FileHandle;
  size: number;
  mtimeMs: number;
  dirty: boolean;
  /** The spool file was handed to the upload journal (at a flush): it must not change any more. */
  committed: boolean;
  /** A write or truncate of the spool file failed (ENOSPC, EIO…): its bytes are never journaled. */
  failed?: unknown;
  /**
   * The remote revision the bytes were opened from (kept through its own uploads): its
   * upload is an update of it. None for a new file (overwrite).
   */
  baseRev?: string;
  /** Write handles on it: the last one to go closes it (and deletes it unless journaled). */
  users: number;
  /** Bumped by every change: a flush journals only bytes its fsync covered. */
  version: number;
  /** A copy of a journaled spool in progress (a write after a close): changes wait for it. */
  copying?: Promise<void>;
  /** Changes in flight: a flush journals the file only when none is (it waits in `idle`). */
  busy: number;
  idle: (() => void)[];
}

export interface WriteHandle {
  kind: 'write';
  id: number;
  node: Node;
  spool: Spool;
}

export type Handle = ReadHandle | WriteHandle;

export class Node {
  removed = false;
  /** The `.fuse_hidden…` name libfuse gave it when it was removed while open (lower case). */
  hiddenLower: string | undefined;
  /** Oldest first; the newest one is what the path shows. */
  readonly writers: WriteHandle[] = [];
  refs = 0;
  /** What the path showed when it was removed (fstat of a removed file that has no writer). */
  snapshot: EntryInfo | undefined;
  /**
   * The remote revision a reader opened: the path keeps answering getattr with it while the
   * node is open, even once another machine deleted it (the kernel refreshes the size of an
   * open file by path at its end of file; an error there would fail the read).
   */
  opened: EntryInfo | undefined;

  constructor(
    public path: string,
    public pathLower: string,
  ) {}

  /**
   * The newest writer whose spool has not failed: the bytes the path shows. A failed spool's
   * bytes are never journaled, so the path shows what it had before (the pending upload or
   * the catalog's revision) and the next open starts from that.
   */
  writer(): WriteHandle | undefined {
    for (let i = this.writers.length - 1; i >= 0; i--) if (!this.writers[i]!.spool.failed) return this.writers[i];
    return undefined;
  }

  state(pending: PendingUpload | undefined): NodeState {
    if (this.removed) return 'removed-while-open';
    if (this.writer()) return 'open-for-write';
    if (pending) return pending.state === 'uploading' ? 'uploading' : 'pending-upload';
    return 'clean';
  }

  /** The entry a writer shows. */
  entryOf(w: WriteHandle): EntryInfo {
    return { pathLower: this.pathLower, pathDisplay: this.path, name: nameOf(this.path), isFolder: false, size: w.spool.size, mtimeMs: w.spool.mtimeMs };
  }

  /** The spools of its writers (usually one: writers share it). */
  spools(): Set<Spool> {
    return new Set(this.writers.map((w) => w.spool));
  }
}

export class NodeTable {
  private readonly live = new Map<string, Node>();
  private readonly hidden = new Map<string, Node>();

  get(pathLower: string): Node | undefined {
    return this.live.get(pathLower);
  }

  /** A removed node still reachable under libfuse's hidden name. */
  getHidden(pathLower: string): Node | undefined {
    return this.hidden.get(pathLower);
  }

  /** The node of a path (made if there is none), with one more reference. */
  acquire(path: string, pathLower: string): Node {
    let n = this.live.get(pathLower);
    if (!n) {
      n = new Node(path, pathLower);
      this.live.set(pathLower, n);
    }
    n.refs++;
    return n;
  }

  /** One reference fewer; the node goes with its last one. */
  release(n: Node): void {
    n.refs--;
    if (n.refs > 0) return;
    if (!n.removed && this.live.get(n.pathLower) === n) this.live.delete(n.pathLower);
    if (n.hiddenLower !== undefined && this.hidden.get(n.hiddenLower) === n) this.hidden.delete(n.hiddenLower);
  }

  /** The path is removed: the node leaves the namespace at once; its handles keep working. */
  detach(n: Node, snapshot: EntryInfo | undefined): void {
    if (this.live.get(n.pathLower) === n) this.live.delete(n.pathLower);
    n.removed = true;
    n.snapshot ??= snapshot;
  }

  /** libfuse's hide of an open file: removed, but reachable by its hidden name until released. */
  hide(n: Node, hiddenLower: string, snapshot: EntryInfo | undefined): void {
    this.detach(n, snapshot);
    n.hiddenLower = hiddenLower;
    this.hidden.set(hiddenLower, n);
  }

  /** Forgets a hidden name (libfuse unlinks it at the last close). */
  unhide(hiddenLower: string): boolean {
    const n = this.hidden.get(hiddenLower);
    if (!n) return false;
    this.hidden.delete(hiddenLower);
    n.hiddenLower = undefined;
    return true;
  }

  /** A file node renamed; a node already at the target must have been detached. */
  move(n: Node, toPath: string): void {
    if (this.live.get(n.pathLower) === n) this.live.delete(n.pathLower);
    n.path = toPath;
    n.pathLower = toPath.toLowerCase();
    this.live.set(n.pathLower, n);
  }

  /** A folder renamed: every node below it follows; returns them. */
  moveTree(fromLower: string, toPath: string): Node[] {
    const below = [...this.live.values()].filter((n) => isUnder(n.pathLower, fromLower));
    for (const n of below) this.live.delete(n.pathLower);
    for (const n of below) {
      n.path = rebase(n.path, fromLower, toPath);
      n.pathLower = n.path.toLowerCase();
      this.live.set(n.pathLower, n);
    }
    return below;
  }

  /** Live nodes with a writer below a folder (at any depth). */
  *writersUnder(folderLower: string): Iterable<Node> {
    for (const n of this.live.values()) if (n.writer() && n.pathLower.startsWith(`${folderLower}/`)) yield n;
  }

  /** Live nodes with a writer, in a folder (what readdir adds to the catalog and the journal). */
  *writtenChildren(parentLower: string): Iterable<Node> {
    for (const n of this.live.values()) {
      if (n.writer() && n.pathLower.slice(0, Math.max(0, n.pathLower.lastIndexOf('/'))) === parentLower) yield n;
    }
  }

  /** Any live node with a writer below a folder? */
  hasWriterUnder(folderLower: string): boolean {
    for (const n of this.live.values()) if (n.writer() && isUnder(n.pathLower, folderLower)) return true;
    return false;
  }
}
