/**
 * The inode table of the low-level adapter: inode numbers ↔ mount paths ("/" is the root,
 * inode 1), the kernel's lookup counts, and the handles open on each inode.
 *
 * Invariants
 * - A path has at most one inode, and an inode at most one path (`pathOf` undefined: it was
 *   unlinked or replaced by a rename and only the kernel's references keep it).
 * - Inode numbers are never reused (generation 0 is then always right).
 * - An inode is forgotten (dropped) when the kernel's lookup count reaches 0 and no handle is
 *   open on it; the root is never dropped.
 * - A rename moves the inode of the source, and every inode below it for a folder; an inode
 *   the target path had loses its path.
 * Concurrency: one JS thread; every method is synchronous and O(1), except a folder rename
 * (O(inodes known)).
 */
export const ROOT_INO = 1;

export interface Inode {
  readonly ino: number;
  path: string | undefined;
  nlookup: number;
  /** Handles open on it (the VFS's numbers). */
  readonly handles: Set<number>;
  /** The revision last opened for reading with the page cache kept (see ops.ts). */
  rev?: string;
}

export const childPath = (parent: string, name: string): string => (parent === '/' ? `/${name}` : `${parent}/${name}`);

export class InodeTable {
  private readonly byIno = new Map<number, Inode>();
  private readonly byPath = new Map<string, Inode>();
  private next = ROOT_INO + 1;

  constructor() {
    const root: Inode = { ino: ROOT_INO, path: '/', nlookup: 1, handles: new Set() };
    this.byIno.set(ROOT_INO, root);
    this.byPath.set('/', root);
  }

  get(ino: number): Inode | undefined {
    return this.byIno.get(ino);
  }

  pathOf(ino: number): string | undefined {
    return this.byIno.get(ino)?.path;
  }

  /** The inode at a path, if known (no lookup counted). */
  peek(path: string): Inode | undefined {
    return this.byPath.get(path);
  }

  /** The kernel got an entry for `path`: its inode (made if new), lookup count + 1. */
  lookup(path: string): Inode {
    let n = this.byPath.get(path);
    if (!n) {
      n = { ino: this.next++, path, nlookup: 0, handles: new Set() };
      this.byIno.set(n.ino, n);
      this.byPath.set(path, n);
    }
    n.nlookup++;
    return n;
  }

  /** The kernel dropped `count` references. */
  forget(ino: number, count: number): void {
    const n = this.byIno.get(ino);
    if (!n || ino === ROOT_INO) return;
    n.nlookup = Math.max(0, n.nlookup - count);
    this.dropIfUnused(n);
  }

  addHandle(ino: number, fh: number): void {
    this.byIno.get(ino)?.handles.add(fh);
  }

  /** A handle was released; true if it was the inode's last. */
  removeHandle(ino: number, fh: number): boolean {
    const n = this.byIno.get(ino);
    if (!n) return false;
    n.handles.delete(fh);
    const last = n.handles.size === 0;
    this.dropIfUnused(n);
    return last;
  }

  /** The path is gone (unlink, rmdir): its inode keeps only its number. */
  unlink(path: string): void {
    const n = this.byPath.get(path);
    if (!n || n.ino === ROOT_INO) return;
    this.byPath.delete(path);
    n.path = undefined;
    this.dropIfUnused(n);
  }

  /** `from` is now `to`, with everything below it. */
  rename(from: string, to: string): void {
    if (from === to || from === '/') return;
    const moved: [Inode, string][] = [];
    const src = this.byPath.get(from);
    if (src) moved.push([src, to]);
    const prefix = from + '/';
    for (const [p, n] of this.byPath) if (p.startsWith(prefix)) moved.push([n, to + p.slice(from.length)]);
    for (const [n] of moved) this.byPath.delete(n.path!);
    // Whatever was at a target path loses it (a file replaced by the rename).
    for (const [, p] of moved) this.unlink(p);
    this.unlink(to);
    for (const [n, p] of moved) {
      n.path = p;
      this.byPath.set(p, n);
    }
  }

  /** How many inodes are known (tests). */
  get size(): number {
    return this.byIno.size;
  }

  private dropIfUnused(n: Inode): void {
    if (n.ino === ROOT_INO || n.nlookup > 0 || n.handles.size > 0) return;
    this.byIno.delete(n.ino);
    if (n.path !== undefined && this.byPath.get(n.path) === n) this.byPath.delete(n.path);
  }
}
