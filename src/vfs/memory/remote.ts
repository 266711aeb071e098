/**
 * An in-memory Dropbox for the VFS's tests: the RemoteOps the namespace uses, plus uploads,
 * downloads by revision, and the changes another machine makes. It follows the contract the
 * emulator enforces (docs: /work/shared/dropbox-api.md): paths are case-insensitive and
 * case-preserving, move_v2 never overwrites (and refuses a case-only rename: the target
 * "exists"), missing parents are created, a folder delete takes its subtree, an overwrite
 * keeps the file's id and gives it a new rev. A move keeps ids; whether it keeps revs is
 * unverified for Dropbox (dropbox-api.md): `newRevOnMove` gives moved files new ones, as the
 * emulator does.
 */
import { createHash } from 'node:crypto';
import type { FileMeta, FolderMeta, Meta } from '../../dropbox/client.js';
import { RemoteError } from '../../dropbox/errors.js';
import type { RemoteOps } from '../types.js';

interface RFile {
  path: string;
  id: string;
  rev: string;
  bytes: Buffer;
}

const lower = (p: string): string => p.toLowerCase();
const parent = (p: string): string => p.slice(0, Math.max(0, p.lastIndexOf('/')));
const base = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
const notFound = (route: string, p: string): RemoteError => new RemoteError('not_found', route, `${route}: ${p}: not_found`);
const conflict = (route: string, p: string): RemoteError => new RemoteError('conflict', route, `${route}: ${p}: conflict`);

export class MemoryRemote implements RemoteOps {
  private readonly files = new Map<string, RFile>();
  private readonly folders = new Map<string, string>();
  /** Every revision ever stored: downloads by rev work after a delete, as in Dropbox. */
  private readonly revs = new Map<string, Buffer>();
  private readonly links = new Map<string, string>();
  private seq = 0;
  /** Called with every change (what list_folder/continue would report to the catalog). */
  onChange: (m: Meta) => void = () => undefined;
  /** A moved file gets a new rev (the emulator's behaviour); otherwise it keeps its rev. */
  newRevOnMove = false;

  private movedFile(f: RFile, path: string): RFile {
    if (!this.newRevOnMove) return { ...f, path };
    const rev = `r${(++this.seq).toString(16).padStart(9, '0')}`;
    this.revs.set(rev, f.bytes);
    return { ...f, path, rev };
  }

  private fileMeta(f: RFile): FileMeta {
    const hash = createHash('sha256').update(f.bytes).digest('hex');
    const t = new Date(0).toISOString();
    return { kind: 'file', name: base(f.path), pathLower: lower(f.path), pathDisplay: f.path, id: f.id, rev: f.rev, size: f.bytes.length, contentHash: hash, serverModified: t, clientModified: t };
  }

  private folderMeta(p: string): FolderMeta {
    return { kind: 'folder', name: base(p), pathLower: lower(p), pathDisplay: p, id: `id:folder:${lower(p)}` };
  }

  private ensureParents(route: string, p: string): void {
    const parts = p.split('/').slice(1, -1);
    let at = '';
    for (const part of parts) {
      at = `${at}/${part}`;
      if (this.files.has(lower(at))) throw conflict(route, at);
      if (!this.folders.has(lower(at))) {
        this.folders.set(lower(at), at);
        this.onChange(this.folderMeta(at));
      }
    }
  }

  /** The display path a new entry gets: its parents keep the case they have. */
  private display(p: string): string {
    const par = parent(p);
    return par === '' ? p : `${this.folders.get(lower(par)) ?? par}/${base(p)}`;
  }

  /**
   * files/upload with mode overwrite, or (`updateRev`) mode update with autorename: a file
   * at `p` of another revision and other bytes stays, and these land as a conflicted copy.
   */
  upload(path: string, bytes: Buffer, updateRev?: string): FileMeta {
    let p = path;
    if (this.folders.has(lower(p))) throw conflict('files/upload', p);
    this.ensureParents('files/upload', p);
    const there = this.files.get(lower(p));
    if (updateRev !== undefined && there && there.rev !== updateRev && !there.bytes.equals(bytes)) p = this.conflictedCopy(p);
    const old = this.files.get(lower(p));
    const rev = `r${(++this.seq).toString(16).padStart(9, '0')}`;
    const f: RFile = { path: old?.path ?? this.display(p), id: old?.id ?? `id:${this.seq}`, rev, bytes: Buffer.from(bytes) };
    this.files.set(lower(p), f);
    this.revs.set(rev, f.bytes);
    const m = this.fileMeta(f);
    this.onChange(m);
    return m;
  }

  private conflictedCopy(p: string): string {
    const name = base(p);
    const dot = name.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
    for (let n = 1; ; n++) {
      const c = `${parent(p)}/${stem} (conflicted copy${n > 1 ? ` ${n}` : ''})${ext}`;
      if (!this.files.has(lower(c)) && !this.folders.has(lower(c))) return c;
    }
  }

  revBytes(rev: string): Buffer | undefined {
    return this.revs.get(rev);
  }

  /** delete_v2; with `parentRev`, a file of another revision is not deleted (conflict). */
  async delete(p: string, parentRev?: string): Promise<Meta> {
    await Promise.resolve();
    return this.deleteNow(p, parentRev);
  }

  deleteNow(p: string, parentRev?: string): Meta {
    const pl = lower(p);
    const f = this.files.get(pl);
    if (parentRev !== undefined && (!f || f.rev !== parentRev) && (f || this.folders.has(pl))) throw conflict('files/delete_v2', p);
    if (f) {
      this.files.delete(pl);
      const m: Meta = { kind: 'deleted', name: base(f.path), pathLower: pl, pathDisplay: f.path };
      this.onChange(m);
      return m;
    }
    const d = this.folders.get(pl);
    if (d === undefined) throw notFound('files/delete_v2', p);
    for (const k of [...this.files.keys()]) if (k.startsWith(`${pl}/`)) this.files.delete(k);
    for (const k of [...this.folders.keys()]) if (k === pl || k.startsWith(`${pl}/`)) this.folders.delete(k);
    const m: Meta = { kind: 'deleted', name: base(d), pathLower: pl, pathDisplay: d };
    this.onChange(m);
    return m;
  }

  async move(from: string, to: string): Promise<Meta> {
    await Promise.resolve();
    const fl = lower(from);
    const tl = lower(to);
    const isFolder = this.folders.has(fl);
    if (!isFolder && !this.files.has(fl)) throw notFound('files/move_v2', from);
    if (this.files.has(tl) || this.folders.has(tl)) throw conflict('files/move_v2', to);
    if (tl.startsWith(`${fl}/`)) throw new RemoteError('bad_request', 'files/move_v2', 'cant_move_folder_into_itself');
    this.ensureParents('files/move_v2', to);
    const dest = this.display(to);
    if (!isFolder) {
      const f = this.files.get(fl)!;
      this.files.delete(fl);
      this.onChange({ kind: 'deleted', name: base(f.path), pathLower: fl, pathDisplay: f.path });
      const moved = this.movedFile(f, dest);
      this.files.set(tl, moved);
      const m = this.fileMeta(moved);
      this.onChange(m);
      return m;
    }
    const rebase = (p: string): string => dest + p.slice(fl.length);
    const subFolders = [...this.folders.entries()].filter(([k]) => k === fl || k.startsWith(`${fl}/`));
    const subFiles = [...this.files.entries()].filter(([k]) => k.startsWith(`${fl}/`));
    for (const [k] of subFolders) this.folders.delete(k);
    for (const [k] of subFiles) this.files.delete(k);
    this.onChange({ kind: 'deleted', name: base(from), pathLower: fl, pathDisplay: from });
    for (const [k, d] of subFolders) {
      const np = k === fl ? dest : rebase(d);
      this.folders.set(lower(np), np);
      this.onChange(this.folderMeta(np));
    }
    for (const [, f] of subFiles) {
      const nf = this.movedFile(f, rebase(f.path));
      this.files.set(lower(nf.path), nf);
      this.onChange(this.fileMeta(nf));
    }
    return this.folderMeta(dest);
  }

  async createFolder(p: string): Promise<FolderMeta> {
    await Promise.resolve();
    if (this.files.has(lower(p)) || this.folders.has(lower(p))) throw conflict('files/create_folder_v2', p);
    this.ensureParents('files/create_folder_v2', p);
    const d = this.display(p);
    this.folders.set(lower(p), d);
    const m = this.folderMeta(d);
    this.onChange(m);
    return m;
  }

  async listAll(p: string, recursive: boolean): Promise<{ entries: Meta[] }> {
    await Promise.resolve();
    const pl = lower(p);
    if (pl !== '' && !this.folders.has(pl)) throw notFound('files/list_folder', p);
    const inside = (k: string): boolean => k.startsWith(`${pl}/`) && (recursive || parent(k) === pl);
    const entries: Meta[] = [];
    for (const [k, d] of this.folders) if (inside(k)) entries.push(this.folderMeta(d));
    for (const [k, f] of this.files) if (inside(k)) entries.push(this.fileMeta(f));
    return { entries };
  }

  private fileAt(route: string, p: string): RFile {
    const f = this.files.get(lower(p));
    if (!f) throw notFound(route, p);
    return f;
  }

  async shareLink(p: string): Promise<string> {
    await Promise.resolve();
    const f = this.fileAt('sharing/create_shared_link_with_settings', p);
    let url = this.links.get(f.id);
    if (!url) {
      url = `https://memory.example/s/${f.id}/${encodeURIComponent(base(f.path))}`;
      this.links.set(f.id, url);
    }
    return url;
  }

  async listSharedLinks(p: string): Promise<string[]> {
    await Promise.resolve();
    const url = this.links.get(this.fileAt('sharing/list_shared_links', p).id);
    return url ? [url] : [];
  }

  async revokeSharedLink(url: string): Promise<void> {
    await Promise.resolve();
    for (const [id, u] of this.links) if (u === url) this.links.delete(id);
  }

  /** Every file: path as displayed → bytes (for comparing with a model). */
  snapshotFiles(): Map<string, { path: string; bytes: Buffer }> {
    const out = new Map<string, { path: string; bytes: Buffer }>();
    for (const [k, f] of this.files) out.set(k, { path: f.path, bytes: f.bytes });
    return out;
  }

  /** Every folder (lower case). */
  folderKeys(): string[] {
    return [...this.folders.keys()];
  }
}
