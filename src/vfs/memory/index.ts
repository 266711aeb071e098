/**
 * In-memory implementations of the VFS's ports (ports.ts), for tests without a kernel, a
 * database or a network: MemoryRemote (Dropbox, with another machine's changes), MemoryCatalog
 * and MemoryCache over it, and MemoryUploads (the write-back queue, stepped by the test).
 * memoryVfsPorts() wires them the way app/mount.ts wires the real ones.
 */
import type { VfsOptions } from '../types.js';
import { entryOf, MemoryCache, MemoryCatalog } from './catalog.js';
import { MemoryRemote } from './remote.js';
import { MemoryUploads } from './uploads.js';

export { entryOf, MemoryCache, MemoryCatalog, MemoryRemote, MemoryUploads };

export interface MemoryPorts {
  remote: MemoryRemote;
  catalog: MemoryCatalog;
  cache: MemoryCache;
  uploads: MemoryUploads;
  options: VfsOptions;
}

/** The ports, wired; the catalog follows every remote change at once (a perfect change feed). */
export function memoryVfsPorts(spoolDir: string, log: (line: string) => void = () => undefined): MemoryPorts {
  const remote = new MemoryRemote();
  const catalog = new MemoryCatalog();
  remote.onChange = (m) => catalog.apply(m);
  const cache = new MemoryCache(remote);
  const uploads = new MemoryUploads(remote, catalog);
  const options: VfsOptions = {
    catalog,
    cache,
    uploads,
    remote,
    spoolDir,
    owner: { uid: 0, gid: 0 },
    toEntry: entryOf,
    inspectJson: () => undefined,
    space: () => ({ usedBytes: 0, allocatedBytes: 0 }),
    log,
    nowMs: () => 0,
  };
  return { remote, catalog, cache, uploads, options };
}
