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
 * - Case aliases: the kernel keeps each case of a name as its own entry, so `/a/f` and `/A/F`
 *   are two inodes here (one file to the VFS, which ignores case). `aliases` finds the other
 *   cases of a path, for the adapter to invalidate when the path is removed or renamed.
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
  /** A folder (true) or a file (false), as the kernel was told; undefined: not told yet. */
  dir?: boolean;
}

export const childPath = (parent: string, name: string): string => (parent === '/' ? `/${name}` : `${parent}/${name}`);

export class InodeTable {
  private readonly byIno = new Map<number, Inode>();
  private readonly byPath = new Map<string, Inode>();
  /** Lower-cased path → the inodes of its cases. */
  private readonly byLower = new Map<string, Set<Inode>>();
  private next = ROOT_INO + 1;

  constructor() {
    const root: Inode = { ino: ROOT_INO, path: '/', nlookup: 1, handles: new Set() };
    this.byIno.set(ROOT_INO, root);
    this.setPath(root, '/');
  }

  private setPath(n: Inode, path: string): void {
    n.path = path;
    this.byPath.set(path, n);
    const k = path.toLowerCase();
    let s = this.byLower.get(k);
    if (!s) this.byLower.set(k, (s = new Set()));
    s.add(n);
  }

  private deletePath(path: string): void {
    const n = this.byPath.get(path);
    if (!n) return;
    this.byPath.delete(path);
    const k = path.toLowerCase();
    const s = this.byLower.get(k);
    s?.delete(n);
    if (s?.size === 0) this.byLower.delete(k);
  }

  /**
   * The entries (folder inode, name) the kernel may hold for other cases of `path` than the
   * given ones: `/a/F`, `/A/f`… for `/a/f`.
   */
  aliases(path: string, except: string[] = [path]): { parent: number; name: string; path: string }[] {
    const out: { parent: number; name: string; path: string }[] = [];
    for (const n of this.byLower.get(path.toLowerCase()) ?? []) {
      const p = n.path!;
      if (except.includes(p) || p === '/') continue;
      const cut = p.lastIndexOf('/');
      const parent = this.byPath.get(p.slice(0, cut) || '/');
      if (parent) out.push({ parent: parent.ino, name: p.slice(cut + 1), path: p });
    }
    return out;
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

  /**
   * The kernel got an entry for `path`: its inode (made if new), lookup count + 1. With `dir`
   * (what the entry is): an inode the kernel knows as the other kind (a folder where a file
   * was) gives up its path and a new inode takes it, so the kernel never sees an inode change
   * its type.
   */
  lookup(path: string, dir?: boolean): Inode {
    let n = this.byPath.get(path);
    if (n && dir !== undefined && n.dir !== undefined && n.dir !== dir && n.ino !== ROOT_INO) {
      this.unlink(path);
      n = undefined;
    }
    if (!n) {
      n = { ino: this.next++, path, nlookup: 0, handles: new Set() };
      this.byIno.set(n.ino, n);
      this.setPath(n, path);
    }
    n.nlookup++;
    if (dir !== undefined) n.dir = dir;
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
    this.deletePath(path);
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
    for (const [n] of moved) this.deletePath(n.path!);
    // Whatever was at a target path loses it (a file replaced by the rename).
    for (const [, p] of moved) this.unlink(p);
    this.unlink(to);
    for (const [n, p] of moved) this.setPath(n, p);
  }

  /** How many inodes are known (tests). */
  get size(): number {
    return this.byIno.size;
  }

  private dropIfUnused(n: Inode): void {
    if (n.ino === ROOT_INO || n.nlookup > 0 || n.handles.size > 0) return;
    this.byIno.delete(n.ino);
    if (n.path !== undefined && this.byPath.get(n.path) === n) this.deletePath(n.path);
  }
}
