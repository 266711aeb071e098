/**
 * A small bounded cache of read-only file handles for block files, so a hit costs one
 * positional read on the thread pool instead of open + read + close. A handle in use is never
 * closed under its reader: handles are reference-counted; an invalidated (removed or replaced)
 * path leaves the map at once and its handle closes when its last reader is done.
 */
import { open, type FileHandle } from 'node:fs/promises';

interface Entry {
  fh: Promise<FileHandle>;
  refs: number;
  doomed: boolean;
}

function closeQuietly(e: Entry): void {
  e.fh.then((fh) => fh.close()).catch(() => undefined);
}

export class FdCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxOpen: number) {}

  async use<T>(file: string, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    let e = this.entries.get(file);
    if (e) {
      this.entries.delete(file); // re-insert: the map's order is the LRU order
      this.entries.set(file, e);
    } else {
      const entry: Entry = { fh: open(file, 'r'), refs: 0, doomed: false };
      entry.fh.catch(() => {
        if (this.entries.get(file) === entry) this.entries.delete(file);
        entry.doomed = true;
      });
      this.entries.set(file, entry);
      e = entry;
    }
    e.refs++;
    try {
      return await fn(await e.fh);
    } finally {
      e.refs--;
      if (e.doomed && e.refs === 0) closeQuietly(e);
      this.trim();
    }
  }

  /** The file at this path is gone or replaced: stop handing out its handle. */
  invalidate(file: string): void {
    const e = this.entries.get(file);
    if (!e) return;
    this.entries.delete(file);
    e.doomed = true;
    if (e.refs === 0) closeQuietly(e);
  }

  closeAll(): void {
    for (const file of [...this.entries.keys()]) this.invalidate(file);
  }

  get size(): number {
    return this.entries.size;
  }

  private trim(): void {
    if (this.entries.size <= this.maxOpen) return;
    for (const [file, e] of this.entries) {
      if (this.entries.size <= this.maxOpen) return;
      if (e.refs === 0) this.invalidate(file);
    }
  }
}
