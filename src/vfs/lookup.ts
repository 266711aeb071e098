/**
 * The lookup overlay: what the mount shows at a path, from the newest source first: a node
 * with an open writer, then a pending upload (upload journal), then the catalog. Removed nodes
 * are in none of these (their pending rows are cancelled and their remote file deleted), so a
 * removed name disappears from lookups and listings at once.
 * Every method is synchronous and never touches the network.
 */
import { enoent, VfsError } from './errors.js';
import type { NodeTable } from './nodes.js';
import type { CatalogPort, EntryInfo, UploadPort } from './ports.js';
import { statOf, type Stat } from './stat.js';
import { isFuseHidden, lowerOf, nameOf } from './types.js';

export class Lookup {
  constructor(
    private readonly nodes: NodeTable,
    private readonly catalog: CatalogPort,
    private readonly uploads: UploadPort,
    private readonly owner: { uid: number; gid: number },
    private readonly startedMs: number,
  ) {}

  /** What the mount shows at a path, or undefined. */
  lookup(fusePath: string): EntryInfo | undefined {
    const pl = lowerOf(fusePath);
    if (pl === '') return { pathLower: '', pathDisplay: '', name: '', isFolder: true, size: 0, mtimeMs: this.startedMs };
    const hidden = this.nodes.getHidden(pl);
    if (hidden) {
      const w = hidden.writer();
      return w ? { ...hidden.entryOf(w), pathLower: pl, name: nameOf(fusePath) } : hidden.snapshot && { ...hidden.snapshot, pathLower: pl, name: nameOf(fusePath) };
    }
    const node = this.nodes.get(pl);
    const w = node?.writer();
    if (w) return w.node.entryOf(w);
    const p = this.uploads.pending(pl);
    if (p) return { pathLower: pl, pathDisplay: p.path, name: nameOf(p.path), isFolder: false, size: p.size, mtimeMs: p.queuedAtMs };
    return this.catalog.lookup(pl) ?? node?.opened;
  }

  mustLookup(fusePath: string): EntryInfo {
    const e = this.lookup(fusePath);
    if (!e) throw enoent(fusePath);
    return e;
  }

  getattr(fusePath: string): Stat {
    return statOf(this.mustLookup(fusePath), this.owner);
  }

  /** A folder that must exist (a parent of something being made). */
  folder(fusePath: string): EntryInfo {
    const e = this.mustLookup(fusePath);
    if (!e.isFolder) throw new VfsError('ENOTDIR', `${fusePath}: not a folder`);
    return e;
  }

  /** Names in a folder: the catalog's, plus files written here and not yet uploaded. */
  readdir(fusePath: string): string[] {
    const dir = this.folder(fusePath);
    const names = new Map<string, string>();
    for (const e of this.catalog.children(dir.pathLower)) names.set(e.pathLower, e.name);
    for (const p of this.uploads.pendingChildren(dir.pathLower)) names.set(p.pathLower, nameOf(p.path));
    for (const n of this.nodes.writtenChildren(dir.pathLower)) names.set(n.pathLower, nameOf(n.path));
    return [...names.values()].filter((n) => !isFuseHidden(n));
  }
}
