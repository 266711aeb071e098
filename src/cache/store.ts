/**
 * The block index: an LRU of indexed blocks within the byte budget (lru-cache), the blocks of
 * each rev, and its rows in SQLite (persist.ts). `store` is the one place where a block becomes
 * durable and indexed; lru-cache's dispose (`disposed`) the one where it goes (its file and its
 * row with it). See index.ts for the invariants.
 */
import { LRUCache } from 'lru-cache';
import { BLOCK_BYTES, blockKey } from './blocks.js';
import type { BlockFiles } from './disk.js';
import type { Entry } from './entry.js';
import type { IndexDb } from './persist.js';

const WRITE_ERROR_LOG_EVERY_MS = 10_000;
const INDEX_WRITE_DELAY_MS = 1000;

export interface BlockStoreOptions {
  budgetBytes: number;
  files: BlockFiles;
  persist: IndexDb;
  log: (line: string) => void;
  now: () => number;
  /** A block is on disk and verified (the native adapter may serve it). */
  onReady: (e: Entry) => void;
  /** A verified block left the index. */
  onGone: (e: Entry) => void;
}

export class BlockStore {
  readonly index: LRUCache<string, Entry>;
  readonly byRev = new Map<string, Map<number, Entry>>();
  /** The write in progress per block key: a block's writes never overlap. */
  private readonly writes = new Map<string, Promise<boolean>>();
  private reservedBytes = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private lastWriteErrorLogMs = -Infinity;
  /** No more blocks are stored (the cache is closing). */
  closed = false;
  /** The whole folder goes at close: evicted entries leave their files. */
  keepFilesOnDispose = false;

  constructor(private readonly o: BlockStoreOptions) {
    this.index = new LRUCache<string, Entry>({
      maxSize: Math.max(1, o.budgetBytes),
      sizeCalculation: (e) => e.bytes,
      dispose: (e) => this.disposed(e),
    });
  }

  /** Blocks of `rev` that are indexed. */
  blocksOf(rev: string): ReadonlyMap<number, Entry> | undefined {
    return this.byRev.get(rev);
  }

  /**
   * Writes a block file and indexes it, within the budget, unless `current()` says otherwise
   * once it is written (its rev was dropped meanwhile: the file goes). Writes of one block run
   * one after the other. Never throws: false = not kept.
   */
  store(rev: string, b: number, data: Buffer, sha256: Buffer, current: () => boolean = () => true): Promise<boolean> {
    const key = blockKey(rev, b);
    const before = this.writes.get(key);
    const job = before ? before.then(() => this.storeNow(key, rev, b, data, sha256, current)) : this.storeNow(key, rev, b, data, sha256, current);
    this.writes.set(key, job);
    void job.then(() => {
      if (this.writes.get(key) === job) this.writes.delete(key);
    });
    return job;
  }

  private async storeNow(key: string, rev: string, b: number, data: Buffer, sha256: Buffer, current: () => boolean): Promise<boolean> {
    if (this.index.has(key) || !this.makeRoom(data.length)) return false;
    let written: string;
    try {
      await this.o.files.settle(); // evicted files are gone before this one is written: disk ≤ budget
      written = await this.o.files.write(rev, b, data);
    } catch (e) {
      this.reservedBytes -= data.length;
      this.logWriteError(rev, b, e);
      return false;
    }
    this.reservedBytes -= data.length;
    if (!current()) {
      this.o.files.remove(rev, b);
      return false;
    }
    if (this.index.has(key)) return true;
    const entry: Entry = { rev, block: b, bytes: data.length, sha256, lastUsedMs: this.o.now(), verified: true, written };
    this.add(entry);
    this.o.onReady(entry);
    this.o.persist.put({ rev, block: b, bytes: entry.bytes, sha256, lastUsedMs: entry.lastUsedMs, fileId: null });
    this.flushSoon();
    return true;
  }

  /**
   * A row kept from an earlier session, at open: indexed if its size is a block's and it fits
   * (least recently used rows come first, so the most recent ones stay); false = not kept.
   */
  admit(e: Entry): boolean {
    if (e.bytes <= 0 || e.bytes > BLOCK_BYTES || !this.makeRoom(e.bytes)) return false;
    this.reservedBytes -= e.bytes;
    this.add(e);
    return true;
  }

  private add(e: Entry): void {
    this.index.set(blockKey(e.rev, e.block), e);
    let blocks = this.byRev.get(e.rev);
    if (!blocks) this.byRev.set(e.rev, (blocks = new Map<number, Entry>()));
    blocks.set(e.block, e);
  }

  /** Evicts least recently used blocks until `bytes` more fit; reserves them. */
  private makeRoom(bytes: number): boolean {
    const budget = this.o.budgetBytes;
    if (this.closed || bytes > budget) return false;
    while (this.index.calculatedSize + this.reservedBytes + bytes > budget) {
      if (this.index.size === 0) return false;
      this.index.pop();
    }
    this.reservedBytes += bytes;
    return true;
  }

  /** lru-cache's dispose: an entry left the index (evicted or dropped). */
  private disposed(e: Entry): void {
    const blocks = this.byRev.get(e.rev);
    if (blocks?.get(e.block) === e) {
      blocks.delete(e.block);
      if (blocks.size === 0) this.byRev.delete(e.rev);
    }
    if (e.verified) this.o.onGone(e);
    if (!this.keepFilesOnDispose) this.o.files.remove(e.rev, e.block);
    this.o.persist.delete(e.rev, e.block);
    this.flushSoon();
  }

  touch(key: string, e: Entry): void {
    e.lastUsedMs = this.o.now();
    this.o.persist.touch(key, e.rev, e.block, e.lastUsedMs);
  }

  /**
   * Inserts and deletes reach SQLite in one transaction at most every INDEX_WRITE_DELAY_MS: a
   * commit on the mount's connection (synchronous = FULL) waits for an fsync on the event loop,
   * and once per block that stalled every FUSE call behind it. A row lost in a crash only costs
   * a fetch: at open, a block file without a row is removed.
   */
  flushSoon(): void {
    if (this.flushTimer || !this.o.persist.persistent || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.o.persist.flush(false);
    }, INDEX_WRITE_DELAY_MS);
    this.flushTimer.unref();
  }

  /** No more delayed flushes (close writes the index itself). */
  stopFlushing(): void {
    this.closed = true;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  private logWriteError(rev: string, b: number, e: unknown): void {
    const now = this.o.now();
    if (now - this.lastWriteErrorLogMs < WRITE_ERROR_LOG_EVERY_MS) return;
    this.lastWriteErrorLogMs = now;
    this.o.log(`cache: cannot keep block ${b} of rev ${rev} on disk (${(e as Error).message}); serving it from memory`);
  }
}
