/** In-memory CatalogPort and BlockCachePort over a MemoryRemote, for the VFS's tests. */
import type { FileMeta, FolderMeta, Meta } from '../../dropbox/client.js';
import { RemoteError } from '../../dropbox/errors.js';
import type { BlockCachePort, CacheStats, CatalogPort, EntryInfo, FileRef } from '../ports.js';
import type { MemoryRemote } from './remote.js';

export function entryOf(m: FileMeta | FolderMeta): EntryInfo {
  if (m.kind === 'folder') return { pathLower: m.pathLower, pathDisplay: m.pathDisplay, name: m.name, isFolder: true, size: 0, mtimeMs: 0 };
  return { pathLower: m.pathLower, pathDisplay: m.pathDisplay, name: m.name, isFolder: false, id: m.id, rev: m.rev, size: m.size, contentHash: m.contentHash, mtimeMs: 0 };
}

const parentOf = (pl: string): string => pl.slice(0, Math.max(0, pl.lastIndexOf('/')));

export class MemoryCatalog implements CatalogPort {
  private readonly entries = new Map<string, EntryInfo>();

  lookup(pathLower: string): EntryInfo | undefined {
    return this.entries.get(pathLower);
  }

  children(parentLower: string): EntryInfo[] {
    return [...this.entries.values()].filter((e) => e.pathLower !== '' && parentOf(e.pathLower) === parentLower).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  upsert(entry: EntryInfo): void {
    this.entries.set(entry.pathLower, entry);
  }

  remove(pathLower: string): void {
    for (const k of [...this.entries.keys()]) if (k === pathLower || k.startsWith(`${pathLower}/`)) this.entries.delete(k);
  }

  /** What the change feed (catalog/sync) does with one entry of list_folder/continue. */
  apply(m: Meta): void {
    if (m.kind === 'deleted') this.remove(m.pathLower);
    else this.upsert(entryOf(m));
  }
}

/** Reads revisions straight from the remote; counts what it was asked. */
export class MemoryCache implements BlockCachePort {
  private reads = 0;

  constructor(private readonly remote: MemoryRemote) {}

  async read(file: FileRef, offset: number, length: number, _stream: number, into?: Buffer): Promise<Buffer> {
    await Promise.resolve();
    this.reads++;
    const bytes = this.remote.revBytes(file.rev);
    if (!bytes) throw new RemoteError('not_found', 'files/download', `rev ${file.rev}: not_found`);
    const end = Math.min(file.size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const part = bytes.subarray(offset, end);
    if (!into) return Buffer.from(part);
    part.copy(into);
    return into.subarray(0, part.length);
  }

  forget(): void {}

  async adopt(): Promise<void> {}

  stats(): CacheStats {
    return { budgetBytes: 0, usedBytes: 0, blocks: 0, hits: 0, misses: this.reads, fetchedBytes: 0 };
  }

  async close(): Promise<void> {}
}
