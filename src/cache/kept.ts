/**
 * Blocks kept from an earlier session: loaded at open, and made verified before they are served.
 *
 * The trust rule: a kept block counts as verified without reading it when its row has a
 * `file_id` and its file's identity (inode, size, mtime and ctime in ns: disk.ts) is still that
 * one. A row gets its file_id only at a clean close (`seal`): the file this session wrote is
 * fsynced, its identity must still be the one its handle had once written (same inode, size,
 * mtime: nothing changed it since), and that identity goes into the row. The row's SHA-256 was
 * computed from the bytes written, so a file that is still that file still has those bytes. A
 * session that ends uncleanly (kill -9, crash, power loss) seals nothing: the blocks it wrote
 * have no file_id and are digested at first use; blocks sealed earlier keep theirs (the cache
 * never writes into a block file: a rewrite is a new file, a new identity). A row of an older
 * sreg (before state migration 3) has none either. Every other kept block, and one whose
 * identity no longer matches, is read and digested at its first use (`verify`), and fetched
 * again if its bytes differ from its row.
 */
import { blockKey } from './blocks.js';
import type { BlockFiles } from './disk.js';
import { CacheError } from './errors.js';
import { noop, RETRY, type BlockResult, type Entry, type Hasher, type Pending } from './entry.js';
import type { IndexDb } from './persist.js';
import type { BlockBufferPool } from './pool.js';
import type { FetchSlots, Priority } from './slots.js';
import type { BlockStore } from './store.js';

/** Identities checked at once (stat), files sealed at once (fsync). */
const PARALLEL = 8;

export interface KeptOptions {
  store: BlockStore;
  files: BlockFiles;
  persist: IndexDb;
  hasher: Hasher;
  buffers: BlockBufferPool;
  /** Reads of kept blocks from disk (not the fetch slots). */
  slots: FetchSlots;
  inflight: Map<string, Pending>;
  log: (line: string) => void;
  onReady: (e: Entry) => void;
}

export class KeptBlocks {
  private readonly checking = new Map<Entry, Promise<boolean>>();

  constructor(private readonly o: KeptOptions) {}

  /** Loads the rows whose block file exists; removes rows without a file and files without a row. */
  async load(): Promise<void> {
    const { store, files, persist } = this.o;
    const rows = persist.load();
    const scan = await files.scan();
    let missing = 0;
    let sealed = 0;
    for (const row of rows) {
      const file = files.path(row.rev, row.block);
      if (!scan.blocks.delete(file)) {
        persist.delete(row.rev, row.block);
        missing++;
        continue;
      }
      const { fileId, ...rest } = row;
      const entry: Entry = { ...rest, verified: false, ...(fileId ? { keptId: fileId } : {}) };
      if (!store.admit(entry)) {
        files.removePath(file);
        persist.delete(row.rev, row.block);
      } else if (fileId) {
        sealed++;
      }
    }
    for (const file of [...scan.blocks, ...scan.temps]) files.removePath(file);
    persist.flush(false);
    await files.removeEmptyDirs(scan.dirs);
    if (rows.length > 0 || scan.blocks.size > 0) {
      this.o.log(
        `cache: ${store.index.size} blocks (${store.index.calculatedSize} bytes) kept from the last session, ${sealed} sealed at a clean close; ` +
          `${missing} rows without a file and ${scan.blocks.size + scan.temps.length} files without a row removed`,
      );
    }
  }

  /**
   * Is this kept block verified? True once it is; a sealed one whose file is still the sealed
   * file becomes verified here (a stat, no read); false = its bytes must be digested (`verify`).
   */
  trust(e: Entry): Promise<boolean> {
    if (e.verified) return Promise.resolve(true);
    if (e.keptId === undefined) return Promise.resolve(false);
    let p = this.checking.get(e);
    if (!p) {
      const keptId = e.keptId;
      p = this.o.files.identity(e.rev, e.block).then((now) => {
        this.checking.delete(e);
        e.keptId = undefined;
        if (now !== keptId || this.o.store.index.peek(blockKey(e.rev, e.block)) !== e) return false;
        e.verified = true;
        this.o.onReady(e);
        return true;
      });
      this.checking.set(e, p);
    }
    return p;
  }

  /** Trusts what can be trusted of these blocks (a few stats at once). */
  async trustAll(entries: Iterable<Entry>): Promise<void> {
    const todo = [...entries].filter((e) => !e.verified && e.keptId !== undefined);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) await this.trust(todo[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, todo.length) }, worker));
  }

  /** Readahead of a kept block: trusted, else digested ahead of its reader. */
  ahead(key: string, e: Entry): void {
    if (e.keptId === undefined) {
      this.verify(key, e, 'readahead');
      return;
    }
    void this.trust(e).then((ok) => {
      if (!ok && this.o.store.index.peek(key) === e && !this.o.store.closed) this.verify(key, e, 'readahead');
    });
  }

  /** First use of a kept block that is not trusted: its bytes against its row's digest. */
  verify(key: string, entry: Entry, priority: Priority = 'demand'): Pending {
    const { inflight, buffers, files, hasher, store } = this.o;
    const existing = inflight.get(key);
    if (existing) {
      if (priority === 'demand') existing.promote();
      return existing;
    }
    const ticket = this.o.slots.acquire(priority);
    const pending: Pending = { promise: Promise.resolve(RETRY), promote: () => ticket.promote() };
    inflight.set(key, pending);
    pending.promise = (async (): Promise<BlockResult> => {
      let buf: Buffer | undefined;
      try {
        await ticket.ready;
        buf = buffers.acquire();
        const before = await files.identity(entry.rev, entry.block); // sealed at close if nothing changes it meanwhile
        const data = await files.read(entry.rev, entry.block, 0, entry.bytes, buf);
        if ((await hasher.digest(data)).equals(entry.sha256)) {
          entry.verified = true;
          if (before !== undefined) entry.written = before.slice(0, before.lastIndexOf(':'));
          this.o.onReady(entry);
          return data;
        }
        this.o.log(`cache: block ${entry.block} of rev ${entry.rev} changed on disk: fetching it again`);
      } catch (e) {
        if (e instanceof CacheError && e.code === 'closed') throw e;
        this.o.log(`cache: block ${entry.block} of rev ${entry.rev} is unreadable (${(e as Error).message}): fetching it again`);
      } finally {
        if (inflight.get(key) === pending) inflight.delete(key);
        buffers.releaseLater(buf, ticket);
      }
      if (store.index.peek(key) === entry) store.index.delete(key);
      return RETRY;
    })();
    pending.promise.catch(noop);
    return pending;
  }

  /** Waits for the identity checks in progress. */
  async settle(): Promise<void> {
    while (this.checking.size > 0) await Promise.allSettled([...this.checking.values()]);
  }

  /**
   * At a clean close, after the last write: fsyncs the block files this session wrote (or
   * digested) that are still indexed and seals their rows (the caller flushes the index). Returns how many.
   */
  async seal(): Promise<number> {
    const todo = [...this.o.store.index.values()].filter((e) => e.written !== undefined);
    let next = 0;
    let sealed = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const e = todo[next++]!;
        const id = await this.o.files.seal(e.rev, e.block, e.written!);
        e.written = undefined;
        if (id === undefined) continue;
        this.o.persist.seal(e.rev, e.block, id);
        sealed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, todo.length) }, worker));
    return sealed;
  }
}
