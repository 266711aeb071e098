/**
 * A small reference model of the mount's namespace (README "Semantics"), for the model-based
 * tests: what each path shows, what each call answers (a value or an errno), and what Dropbox
 * holds once every closed file is uploaded.
 *
 * The rules it encodes: the write handles open on a file share one copy of its bytes (POSIX:
 * one file; made from the file at the first open, or empty when truncating; an O_TRUNC open
 * while others are open empties it for all); a path shows its open writers' bytes, else what
 * was last closed after a write (or the remote file); close (flush) of a handle commits the
 * shared bytes, if written since the last commit, under the path its node has *now*; a reader
 * keeps a snapshot, unspecified once the file gets shorter under it; unlink and rename-onto
 * remove a node at once (its handles keep working, nothing of them is ever committed); rename
 * moves the node (a folder rename moves everything below it); case-only renames keep the
 * file. Paths are case-insensitive; only the last component's case is compared.
 */
/** The bytes the write handles open on one file share. */
export interface MSpool {
  bytes: Buffer;
  dirty: boolean;
}

export interface MFd {
  kind: 'r' | 'w';
  node: MNode;
  /** write: the bytes it shares with the file's other writers */
  spool?: MSpool;
  /** read: a snapshot, or undefined where unspecified */
  bytes: Buffer | undefined;
}

export interface MNode {
  path: string;
  writers: MFd[];
  /** Descriptors open for reading (their snapshots, until the file is emptied under them). */
  readers: MFd[];
  refs: number;
  removed: boolean;
}

export type Shown = { kind: 'folder'; path: string } | { kind: 'file'; path: string; bytes: Buffer };

export const lower = (p: string): string => p.toLowerCase();
export const nameOf = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
export const dirOf = (p: string): string => p.slice(0, Math.max(0, p.lastIndexOf('/')));
const under = (pl: string, dl: string): boolean => pl.startsWith(`${dl}/`);
const rebase = (p: string, fromLower: string, to: string): string => to + p.slice(fromLower.length);

export class ErrnoResult {
  constructor(readonly errno: string) {}
}
const err = (e: string): ErrnoResult => new ErrnoResult(e);

export class Model {
  readonly folders = new Map<string, string>();
  readonly files = new Map<string, { path: string; bytes: Buffer }>();
  readonly nodes = new Map<string, MNode>();
  /** Keys changed locally since the last drain (remote changes are injected elsewhere only). */
  readonly dirty = new Set<string>();
  /** Keys whose final name case is unspecified (a case-only rename during that file's upload). */
  readonly looseCase = new Set<string>();

  shown(p: string): Shown | undefined {
    const pl = lower(p);
    if (pl === '') return { kind: 'folder', path: '' };
    const f = this.folders.get(pl);
    if (f !== undefined) return { kind: 'folder', path: f };
    const n = this.nodes.get(pl);
    const w = n?.writers.at(-1);
    if (n && w) return { kind: 'file', path: n.path, bytes: w.spool!.bytes };
    const c = this.files.get(pl);
    return c && { kind: 'file', path: c.path, bytes: c.bytes };
  }

  /** The errno of a parent that must be a folder, or undefined. */
  private parentErr(p: string): ErrnoResult | undefined {
    const s = this.shown(dirOf(p));
    if (!s) return err('ENOENT');
    if (s.kind !== 'folder') return err('ENOTDIR');
    return undefined;
  }

  /** Names in a folder, sorted (exact case). */
  children(dl: string): string[] {
    const names = new Map<string, string>();
    for (const [k, d] of this.folders) if (dirOf(k) === dl) names.set(k, nameOf(d));
    for (const [k, f] of this.files) if (dirOf(k) === dl) names.set(k, nameOf(f.path));
    for (const [k, n] of this.nodes) if (n.writers.length > 0 && dirOf(k) === dl) names.set(k, nameOf(n.path));
    return [...names.values()].sort();
  }

  private acquire(pl: string, path: string): MNode {
    let n = this.nodes.get(pl);
    if (!n) {
      n = { path, writers: [], readers: [], refs: 0, removed: false };
      this.nodes.set(pl, n);
    }
    n.refs++;
    return n;
  }

  private detach(pl: string): void {
    const n = this.nodes.get(pl);
    if (n) {
      n.removed = true;
      this.nodes.delete(pl);
    }
  }

  openWrite(p: string, trunc: boolean): MFd | ErrnoResult {
    const s = this.shown(p);
    if (!s) {
      const pe = this.parentErr(p);
      if (pe) return pe;
      const fd: MFd = { kind: 'w', node: this.acquire(lower(p), p), spool: { bytes: Buffer.alloc(0), dirty: true }, bytes: undefined };
      fd.node.writers.push(fd);
      return fd;
    }
    if (s.kind === 'folder') return err('EISDIR');
    const node = this.acquire(lower(p), s.path);
    const open = node.writers.at(-1)?.spool;
    const spool = open ?? { bytes: trunc ? Buffer.alloc(0) : Buffer.from(s.bytes), dirty: trunc && s.bytes.length > 0 };
    if (open && trunc && open.bytes.length > 0) {
      open.bytes = Buffer.alloc(0);
      open.dirty = true;
    }
    if (trunc && s.bytes.length > 0) this.shrunk(node);
    const fd: MFd = { kind: 'w', node, spool, bytes: undefined };
    node.writers.push(fd);
    return fd;
  }

  openRead(p: string): MFd | ErrnoResult {
    const s = this.shown(p);
    if (!s) return err('ENOENT');
    if (s.kind === 'folder') return err('EISDIR');
    const node = this.acquire(lower(p), s.path);
    const fd: MFd = { kind: 'r', node, bytes: node.writers.length > 0 ? undefined : Buffer.from(s.bytes) };
    node.readers.push(fd);
    return fd;
  }

  write(fd: MFd, off: number, data: Buffer): number | ErrnoResult {
    if (fd.kind !== 'w') return err('EBADF');
    const sp = fd.spool!;
    const out = Buffer.alloc(Math.max(sp.bytes.length, off + data.length));
    sp.bytes.copy(out);
    data.copy(out, off);
    sp.bytes = out;
    sp.dirty = true;
    return data.length;
  }

  read(fd: MFd, off: number, len: number): Buffer | undefined {
    const b = fd.spool?.bytes ?? fd.bytes;
    return b && b.subarray(Math.min(off, b.length), Math.min(b.length, off + len));
  }

  /**
   * The file got shorter under its readers (O_TRUNC, truncate): the kernel ends their reads at
   * its new size, the VFS alone would still give their revision. Unspecified from now on.
   */
  private shrunk(n: MNode | undefined): void {
    for (const r of n?.readers ?? []) r.bytes = undefined;
  }

  ftruncate(fd: MFd, size: number): undefined | ErrnoResult {
    if (fd.kind !== 'w') return err('EBADF');
    const sp = fd.spool!;
    if (size < sp.bytes.length) this.shrunk(fd.node);
    const out = Buffer.alloc(size);
    sp.bytes.copy(out, 0, 0, Math.min(size, sp.bytes.length));
    sp.bytes = out;
    sp.dirty = true;
    return undefined;
  }

  /** fsync(2) of a written handle commits its bytes as close does (the FUSE fsync is a flush); the handle stays open. */
  fsync(fd: MFd): void {
    const n = fd.node;
    const sp = fd.spool;
    if (sp) {
      if (sp.dirty && !n.removed) {
        this.files.set(lower(n.path), { path: n.path, bytes: sp.bytes });
        this.dirty.add(lower(n.path));
      }
      sp.dirty = false;
    }
  }

  close(fd: MFd): void {
    const n = fd.node;
    if (fd.kind === 'w') {
      this.fsync(fd);
      n.writers.splice(n.writers.indexOf(fd), 1);
    } else {
      n.readers.splice(n.readers.indexOf(fd), 1);
    }
    n.refs--;
    if (n.refs === 0 && !n.removed && this.nodes.get(lower(n.path)) === n) this.nodes.delete(lower(n.path));
  }

  truncate(p: string, size: number): undefined | ErrnoResult {
    const s = this.shown(p);
    if (!s) return err('ENOENT');
    if (s.kind === 'folder') return err('EISDIR');
    const pl = lower(p);
    const w = this.nodes.get(pl)?.writers.at(-1);
    if (w) return this.ftruncate(w, size);
    if (s.bytes.length === size) return undefined;
    if (size < s.bytes.length) this.shrunk(this.nodes.get(pl));
    const out = Buffer.alloc(size);
    s.bytes.copy(out, 0, 0, Math.min(size, s.bytes.length));
    this.files.set(pl, { path: this.nodes.get(pl)?.path ?? s.path, bytes: out });
    this.dirty.add(pl);
    return undefined;
  }

  unlink(p: string): undefined | ErrnoResult {
    const s = this.shown(p);
    if (!s) return err('ENOENT');
    if (s.kind === 'folder') return err('EISDIR');
    this.removeFile(lower(p));
    return undefined;
  }

  private removeFile(pl: string): void {
    this.detach(pl);
    this.files.delete(pl);
    this.dirty.add(pl);
  }

  mkdir(p: string): undefined | ErrnoResult {
    if (this.shown(p)) return err('EEXIST');
    const pe = this.parentErr(p);
    if (pe) return pe;
    const parent = this.shown(dirOf(p))!;
    this.folders.set(lower(p), `${parent.path}/${nameOf(p)}`);
    return undefined;
  }

  rmdir(p: string): undefined | ErrnoResult {
    const s = this.shown(p);
    if (!s) return err('ENOENT');
    if (s.kind !== 'folder') return err('ENOTDIR');
    if (this.children(lower(p)).length > 0) return err('ENOTEMPTY');
    this.folders.delete(lower(p));
    return undefined;
  }

  rename(from: string, to: string, srcUploading: boolean): undefined | ErrnoResult {
    const src = this.shown(from);
    if (!src) return err('ENOENT');
    // The kernel answers a rename of a name onto itself (the very same string) without asking the filesystem.
    if (from === to) return undefined;
    const pe = this.parentErr(to);
    if (pe) return pe;
    const fl = lower(from);
    const tl = lower(to);
    const same = fl === tl;
    if (same && nameOf(src.path) === nameOf(to)) return undefined;
    if (src.kind === 'folder' && !same && under(tl, fl)) return err('EINVAL');
    const dst = same ? undefined : this.shown(to);
    if (dst) {
      if (dst.kind === 'folder' && src.kind === 'file') return err('EISDIR');
      if (dst.kind === 'file' && src.kind === 'folder') return err('ENOTDIR');
      if (dst.kind === 'folder') {
        if (this.children(tl).length > 0) return err('ENOTEMPTY');
        this.folders.delete(tl);
      } else {
        this.removeFile(tl);
      }
    }
    if (src.kind === 'folder') {
      const folders = [...this.folders].filter(([k]) => k === fl || under(k, fl));
      const files = [...this.files].filter(([k]) => under(k, fl));
      const nodes = [...this.nodes].filter(([k]) => under(k, fl));
      for (const [k] of folders) this.folders.delete(k);
      for (const [k] of files) this.files.delete(k);
      for (const [k] of nodes) this.nodes.delete(k);
      for (const [, d] of folders) this.folders.set(lower(rebase(d, fl, to)), rebase(d, fl, to));
      for (const [k, f] of files) {
        const np = rebase(f.path, fl, to);
        this.files.set(lower(np), { path: np, bytes: f.bytes });
        this.dirty.add(k);
        this.dirty.add(lower(np));
      }
      for (const [, n] of nodes) {
        n.path = rebase(n.path, fl, to);
        this.nodes.set(lower(n.path), n);
      }
      return undefined;
    }
    const f = this.files.get(fl);
    if (f) {
      this.files.delete(fl);
      this.files.set(tl, { path: to, bytes: f.bytes });
    }
    const n = this.nodes.get(fl);
    if (n) {
      this.nodes.delete(fl);
      n.path = to;
      this.nodes.set(tl, n);
    }
    this.dirty.add(fl);
    this.dirty.add(tl);
    if (same && srcUploading) this.looseCase.add(tl);
    return undefined;
  }

  /** The mount dies (kill -9): every handle is gone, what nothing committed is lost; what close or fsync committed stays. */
  crash(): void {
    for (const n of this.nodes.values()) n.removed = true;
    this.nodes.clear();
  }

  /** Another machine uploads a file (the caller checks the preconditions: remoteWritable). */
  remoteUpload(p: string, bytes: Buffer): void {
    const old = this.files.get(lower(p));
    this.files.set(lower(p), { path: old?.path ?? p, bytes });
  }

  /** May another machine change this file path without racing a local change? */
  remoteWritable(p: string): boolean {
    const pl = lower(p);
    const parent = this.shown(dirOf(p));
    return parent?.kind === 'folder' && !this.dirty.has(pl) && !this.nodes.has(pl) && !this.folders.has(pl);
  }

  remoteDelete(p: string): void {
    this.files.delete(lower(p));
  }
}
