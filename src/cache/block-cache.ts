/**
 * BlockCache: the BlockCachePort over block files, an in-memory LRU index persisted to
 * SQLite, single-flight fetches and readahead. See index.ts for the invariants and the
 * concurrency rules.
 */
import { EventEmitter } from 'node:events';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import type { Database } from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import { combineBlockDigests } from '../dropbox/content-hash.js';
import type { BlockCachePort, CacheStats, FileRef } from '../vfs/ports.js';
import { BLOCK_BYTES, blockCount, blockKey, blockRange, blocksWithin } from './blocks.js';
import { BlockFiles, readLocalBlock } from './disk.js';
import { CacheError } from './errors.js';
import { IndexDb } from './persist.js';
import { bufferFor } from '../util/read.js';
import { Sha256Pool } from '../util/sha256-pool.js';
import { BlockBufferPool } from './pool.js';
import { ReadSink } from './sink.js';
import { ReadaheadPlanner } from './readahead.js';
import { FetchSlots, type Priority, type Ticket } from './slots.js';
import { revVerdict, type DigestedBlock, type Verdict } from './verify.js';

export interface BlockCacheOptions {
  /** sregistry.db (migrated); null keeps the index in memory only (SINGULARITY_DISABLE_CACHE). */
  db: Database | null;
  /** Where block files live; created. */
  dir: string;
  budgetBytes: number;
  /**
   * Bytes [start, end) of `file`'s revision from the network (client.readRange), into `into`
   * when the fetcher can (a pooled buffer); what it returns is what is used. `signal` aborts at
   * close(): a fetch riding out an outage (or stalled) must not hold the close up.
   */
  fetch: (file: FileRef, start: number, end: number, into: Buffer | undefined, signal: AbortSignal) => Promise<Buffer>;
  /** Concurrent fetches (SREGISTRY_PYTHON_THREADS). */
  maxInFlight: number;
  removeDirOnClose?: boolean;
  log?: (line: string) => void;
  nowMs?: () => number;
  /** How often last-use times are written to the index (default 5000). */
  indexFlushIntervalMs?: number;
  /** Worker threads that hash blocks (default 1). */
  hashWorkers?: number;
}

interface Entry {
  rev: string;
  block: number;
  bytes: number;
  sha256: Buffer;
  lastUsedMs: number;
  /** Its bytes were digested in this session (fetched, adopted, or checked against the row). */
  verified: boolean;
}

/** What a waiter on a block gets: its bytes, or "look again" (the block was dropped). */
const RETRY = Symbol('retry');
type BlockResult = Buffer | typeof RETRY;
interface Pending {
  promise: Promise<BlockResult>;
  promote(): void;
}

/**
 * A fetched block, digested and served from memory while its file is written: it counts for
 * the content_hash check, and its fetch (its Pending, which has its bytes) stays in `inflight`
 * for the readers that come meanwhile, until it is indexed or dropped.
 */
interface Unwritten extends DigestedBlock {
  sha256: Buffer;
  pending: Pending;
}

const noop = (): void => undefined;
const MAX_ATTEMPTS = 5;
const WRITE_ERROR_LOG_EVERY_MS = 10_000;
const INDEX_WRITE_DELAY_MS = 1000;
/** Blocks adopted at once (read, hashed and written in overlap). */
const ADOPT_PARALLEL_BLOCKS = 3;

/**
 * Emits 'ready' (rev, index, file) once a block is on disk and verified (stored after a fetch
 * or an adopt, or a kept block checked at its first use), and 'gone' (rev, index) when it
 * leaves the index (evicted, dropped): the native FUSE adapter serves reads of ready blocks
 * itself (src/fuse3/blocks.ts). See "the native adapter's API" below.
 */
export class BlockCache extends EventEmitter implements BlockCachePort {
  private readonly index: LRUCache<string, Entry>;
  private readonly byRev = new Map<string, Map<number, Entry>>();
  private readonly inflight = new Map<string, Pending>();
  /** rev → block → fetched blocks being written (see Unwritten). */
  private readonly unwritten = new Map<string, Map<number, Unwritten>>();
  /** The write in progress per block key: a block's writes never overlap. */
  private readonly writes = new Map<string, Promise<boolean>>();
  /** Fetched blocks being written behind their readers (writeBehind). */
  private readonly behind = new Set<Promise<void>>();
  private readonly mismatches = new Map<string, number>();
  private readonly checkedRevs = new Set<string>();
  private readonly ops = new Set<Promise<unknown>>();
  private readonly slots: FetchSlots;
  private readonly diskSlots: FetchSlots;
  private readonly planner: ReadaheadPlanner;
  private readonly buffers: BlockBufferPool;
  /** Block digests, off the event loop; closed by close(). */
  private readonly hasher: Sha256Pool;
  private readonly files: BlockFiles;
  private readonly persist: IndexDb;
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  private reservedBytes = 0;
  private hits = 0;
  private misses = 0;
  private fetchedBytes = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private keepFilesOnDispose = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastWriteErrorLogMs = -Infinity;
  /** Aborted at close: fetches in flight stop at once instead of waiting out their deadline. */
  private readonly fetchAbort = new AbortController();

  static async open(opts: BlockCacheOptions): Promise<BlockCache> {
    if (!Number.isSafeInteger(opts.budgetBytes) || opts.budgetBytes < 0) throw new RangeError(`budgetBytes must be a non-negative integer, not ${opts.budgetBytes}`);
    await mkdir(opts.dir, { recursive: true });
    const cache = new BlockCache(opts);
    await cache.load();
    cache.timer = setInterval(() => cache.persist.flush(true), opts.indexFlushIntervalMs ?? 5000);
    cache.timer.unref();
    return cache;
  }

  private constructor(private readonly opts: BlockCacheOptions) {
    super();
    this.log = opts.log ?? noop;
    this.now = opts.nowMs ?? Date.now;
    this.slots = new FetchSlots(opts.maxInFlight);
    this.diskSlots = new FetchSlots(opts.maxInFlight);
    this.buffers = new BlockBufferPool(opts.maxInFlight);
    this.hasher = new Sha256Pool({ size: opts.hashWorkers ?? 1 });
    // The window reaches twice as far as the fetches that may run: the slots keep maxInFlight on
    // the wire, and a slot that frees while the reader still waits on an earlier block goes to
    // the next block at once. With a window of maxInFlight, fetches went in waves that ended
    // together and slots stood idle until the reader caught up: against the shaped emulator the
    // time with 8 or more fetches on the wire rose from about 55 % to 80 % (the throughput of
    // that test, 190-210 MB/s, was then bound by CPU).
    this.planner = new ReadaheadPlanner(Math.min(2 * opts.maxInFlight, Math.max(0, Math.floor(opts.budgetBytes / BLOCK_BYTES) - 1)));
    this.files = new BlockFiles(opts.dir, this.log);
    this.persist = new IndexDb(opts.db, this.log);
    this.index = new LRUCache<string, Entry>({
      maxSize: Math.max(1, opts.budgetBytes),
      sizeCalculation: (e) => e.bytes,
      dispose: (e) => this.disposed(e),
    });
  }

  read(file: FileRef, offset: number, length: number, stream: number, into?: Buffer, intoGone?: AbortSignal): Promise<Buffer> {
    if (this.closed) return Promise.reject(new CacheError('closed', 'the block cache is closed'));
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      return Promise.reject(new CacheError('invalid_range', `cannot read ${length} bytes at ${offset}`));
    }
    const end = Math.min(file.size, offset + length);
    if (offset >= end) return Promise.resolve(Buffer.alloc(0));
    if (into && into.length < end - offset) return Promise.reject(new CacheError('invalid_range', `a ${into.length}-byte buffer cannot take ${end - offset} bytes`));
    // One buffer for the whole read: the caller's (the kernel's, through fuse/) or a new one.
    const out = bufferFor(end - offset, into);
    return this.track(async () => {
      this.checkOnFirstUse(file);
      const seen = { missed: false };
      const sink = new ReadSink(`bytes ${offset}-${end} of rev ${file.rev}`, intoGone);
      const parts: Promise<void>[] = [];
      for (let b = Math.floor(offset / BLOCK_BYTES); b * BLOCK_BYTES < end; b++) {
        const base = b * BLOCK_BYTES;
        const from = Math.max(offset, base);
        const to = Math.min(end, base + BLOCK_BYTES);
        parts.push(this.blockSlice(file, b, from - base, to - base, out.subarray(from - offset, to - offset), seen, sink));
      }
      // After the demand fetches are queued, so that they go first.
      for (const b of this.planner.onRead(stream, file.rev, file.size, offset, end)) {
        const key = blockKey(file.rev, b);
        if (this.inflight.has(key)) continue;
        const entry = this.index.peek(key);
        if (!entry) this.fetchBlock(file, b, 'readahead');
        else if (!entry.verified) this.verifyBlock(key, entry, 'readahead'); // a kept block: checked before the reader gets there
      }
      try {
        await Promise.all(parts);
      } finally {
        // A failed block rejects the read while its siblings may still be writing into `out`:
        // it settles only once none is (see ReadSink).
        await sink.close();
      }
      if (seen.missed) this.misses++;
      else this.hits++;
      return out;
    });
  }

  forget(stream: number): void {
    this.planner.forget(stream);
  }

  adopt(file: FileRef, localPath: string): Promise<void> {
    if (this.closed) return Promise.reject(new CacheError('closed', 'the block cache is closed'));
    return this.track(() => this.adoptFile(file, localPath));
  }

  stats(): CacheStats {
    return {
      budgetBytes: this.opts.budgetBytes,
      usedBytes: this.index.calculatedSize,
      blocks: this.index.size,
      hits: this.hits,
      misses: this.misses,
      fetchedBytes: this.fetchedBytes,
    };
  }

  /**
   * Resolves once the blocks fetched so far are written and indexed (or given up): a read
   * settles before its fetched blocks are on disk. Not part of the port (tests, benchmarks).
   */
  async settle(): Promise<void> {
    while (this.behind.size > 0) await Promise.allSettled([...this.behind]);
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  // ---- the native adapter's API (src/fuse3/blocks.ts): additive, nothing above depends on it ----

  /** Blocks of `rev` on disk and verified in this session: the native adapter may read them itself. */
  readyBlocks(rev: string): number[] {
    const out: number[] = [];
    for (const [b, e] of this.byRev.get(rev) ?? []) if (e.verified) out.push(b);
    return out;
  }

  /** The file that holds block `index` of `rev`. */
  blockFile(rev: string, index: number): string {
    return this.files.path(rev, index);
  }

  /**
   * A read the native adapter served without us: readahead planned as if we had served it,
   * so that a sequential reader's window keeps moving ahead of it.
   */
  advise(file: FileRef, offset: number, length: number, stream: number): void {
    const end = Math.min(file.size, offset + length);
    if (this.closed || offset >= end) return;
    for (const b of this.planner.onRead(stream, file.rev, file.size, offset, end)) {
      const key = blockKey(file.rev, b);
      if (this.inflight.has(key)) continue;
      const entry = this.index.peek(key);
      if (!entry) this.fetchBlock(file, b, 'readahead');
      else if (!entry.verified) this.verifyBlock(key, entry, 'readahead');
    }
  }

  private emitReady(e: Entry): void {
    if (this.listenerCount('ready') > 0) this.emit('ready', e.rev, e.block, this.files.path(e.rev, e.block));
  }

  // ---- reads ----

  /**
   * Bytes [from, to) (relative to the block) of block `b`, from disk or the network, into
   * `into`, only while `sink` allows it (a copy here on the event loop, or a positional read of
   * a local file that the sink waits for); waits on fetches end when the sink closes.
   */
  private async blockSlice(file: FileRef, b: number, from: number, to: number, into: Buffer, seen: { missed: boolean }, sink: ReadSink): Promise<void> {
    const key = blockKey(file.rev, b);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (this.closed) throw new CacheError('closed', 'the block cache is closed');
      sink.check();
      const entry = this.index.get(key);
      if (entry) {
        this.touch(key, entry);
        if (!entry.verified) {
          const r = await sink.wait(this.verifyBlock(key, entry).promise);
          if (r !== RETRY) {
            sink.copy(() => r.copy(into, 0, from, to));
            return;
          }
          continue;
        }
        sink.check();
        try {
          await sink.track(this.files.read(file.rev, b, from, to, into));
          return;
        } catch (e) {
          this.log(`cache: block ${b} of rev ${file.rev} is unreadable (${(e as Error).message}): fetching it again`);
          if (this.index.peek(key) === entry) this.index.delete(key);
          continue;
        }
      }
      seen.missed = true;
      const r = await sink.wait(this.fetchBlock(file, b, 'demand').promise);
      if (r !== RETRY) {
        sink.copy(() => r.copy(into, 0, from, to));
        return;
      }
    }
    throw new CacheError('corrupt', `block ${b} of rev ${file.rev} kept changing under its readers (${MAX_ATTEMPTS} attempts)`);
  }

  /** The one fetch of a block (joining the one in flight, if any). */
  private fetchBlock(file: FileRef, b: number, priority: Priority): Pending {
    const key = blockKey(file.rev, b);
    const existing = this.inflight.get(key);
    if (existing) {
      if (priority === 'demand') existing.promote();
      return existing;
    }
    const ticket = this.slots.acquire(priority);
    const pending: Pending = { promise: Promise.resolve(RETRY), promote: () => ticket.promote() };
    this.inflight.set(key, pending);
    pending.promise = this.runFetch(file, b, ticket, key, pending);
    pending.promise.catch(noop); // readahead has no waiter; readers still see the rejection
    return pending;
  }

  /**
   * Fetches and digests a block and hands its bytes (the pooled buffer) to its readers at once;
   * the block file is written behind them (writeBehind), and the fetch keeps its slot and its
   * buffer until it is: at most `maxInFlight` fetched blocks are in memory, as before.
   */
  private async runFetch(file: FileRef, b: number, ticket: Ticket, key: string, pending: Pending): Promise<BlockResult> {
    let buf: Buffer | undefined;
    let writing = false;
    try {
      await ticket.ready;
      const { start, end } = blockRange(file.size, b);
      buf = this.buffers.acquire();
      const data = await this.opts.fetch(file, start, end, buf, this.fetchAbort.signal);
      if (!Buffer.isBuffer(data) || data.length !== end - start) {
        throw new CacheError('bad_fetch', `fetching bytes ${start}-${end} of rev ${file.rev} returned ${Buffer.isBuffer(data) ? data.length : typeof data} bytes`);
      }
      this.fetchedBytes += data.length;
      const fresh: Unwritten = { bytes: data.length, sha256: await this.hasher.digest(data), pending };
      let blocks = this.unwritten.get(file.rev);
      if (!blocks) this.unwritten.set(file.rev, (blocks = new Map<number, Unwritten>()));
      blocks.set(b, fresh);
      if (this.checkRev(file) === 'mismatch') {
        const times = this.onMismatch(file); // drops this block too
        if (times < 2) return RETRY;
        this.mismatches.delete(file.rev);
        throw new CacheError('corrupt', `rev ${file.rev} (${file.id}) did not match its content_hash twice in a row`);
      }
      writing = true;
      const w = this.track(() => this.writeBehind(file.rev, b, key, data, fresh, buf, ticket));
      this.behind.add(w);
      void w.finally(() => this.behind.delete(w));
      return data;
    } catch (e) {
      if (this.fetchAbort.signal.aborted) throw new CacheError('closed', 'the block cache is closed', { cause: e });
      if (!(e instanceof CacheError && e.code === 'closed')) this.log(`cache: block ${b} of rev ${file.rev}: ${(e as Error).message}`);
      throw e;
    } finally {
      if (!writing) {
        if (this.inflight.get(key) === pending) this.inflight.delete(key);
        this.buffers.releaseLater(buf, ticket);
      }
    }
  }

  /** Writes a fetched block (already served) and indexes it unless its rev was dropped meanwhile. */
  private async writeBehind(rev: string, b: number, key: string, data: Buffer, fresh: Unwritten, buf: Buffer | undefined, ticket: Ticket): Promise<void> {
    try {
      await this.store(rev, b, data, fresh.sha256, () => this.unwritten.get(rev)?.get(b) === fresh);
    } finally {
      const blocks = this.unwritten.get(rev);
      if (blocks?.get(b) === fresh) {
        blocks.delete(b);
        if (blocks.size === 0) this.unwritten.delete(rev);
      }
      if (this.inflight.get(key) === fresh.pending) this.inflight.delete(key);
      this.buffers.releaseLater(buf, ticket);
    }
  }

  /** First use of a block from an earlier session: its bytes against its row's digest. */
  private verifyBlock(key: string, entry: Entry, priority: Priority = 'demand'): Pending {
    const existing = this.inflight.get(key);
    if (existing) {
      if (priority === 'demand') existing.promote();
      return existing;
    }
    const ticket = this.diskSlots.acquire(priority);
    const pending: Pending = { promise: Promise.resolve(RETRY), promote: () => ticket.promote() };
    this.inflight.set(key, pending);
    pending.promise = (async (): Promise<BlockResult> => {
      let buf: Buffer | undefined;
      try {
        await ticket.ready;
        buf = this.buffers.acquire();
        const data = await this.files.read(entry.rev, entry.block, 0, entry.bytes, buf);
        if ((await this.hasher.digest(data)).equals(entry.sha256)) {
          entry.verified = true;
          this.emitReady(entry); // native adapter
          return data;
        }
        this.log(`cache: block ${entry.block} of rev ${entry.rev} changed on disk: fetching it again`);
      } catch (e) {
        if (e instanceof CacheError && e.code === 'closed') throw e;
        this.log(`cache: block ${entry.block} of rev ${entry.rev} is unreadable (${(e as Error).message}): fetching it again`);
      } finally {
        if (this.inflight.get(key) === pending) this.inflight.delete(key);
        this.buffers.releaseLater(buf, ticket);
      }
      if (this.index.peek(key) === entry) this.index.delete(key);
      return RETRY;
    })();
    pending.promise.catch(noop);
    return pending;
  }

  // ---- the content_hash check ----

  /** With every block of the rev present: do their digests make `file.contentHash`? */
  private checkRev(file: FileRef): Verdict {
    const v = revVerdict(file, this.digestsOf(file.rev));
    if (v === 'ok') this.mismatches.delete(file.rev);
    return v;
  }

  /** Drops every block of the rev; returns how many mismatches in a row it has had. */
  private onMismatch(file: FileRef): number {
    const times = (this.mismatches.get(file.rev) ?? 0) + 1;
    this.mismatches.set(file.rev, times);
    this.log(`cache: the blocks of rev ${file.rev} (${file.id}) do not make its content_hash (${times} time(s) in a row): dropping them`);
    this.dropRev(file.rev);
    return times;
  }

  /** Blocks kept from an earlier session are checked as a whole at the rev's first read. */
  private checkOnFirstUse(file: FileRef): void {
    if (this.checkedRevs.has(file.rev)) return;
    this.checkedRevs.add(file.rev);
    if (this.checkRev(file) === 'mismatch') this.onMismatch(file);
  }

  /** The digests of a rev's blocks: indexed ones and fetched ones being written. */
  private digestsOf(rev: string): ReadonlyMap<number, DigestedBlock> | undefined {
    const kept = this.byRev.get(rev);
    const fresh = this.unwritten.get(rev);
    if (!fresh) return kept;
    if (!kept) return fresh;
    const all = new Map<number, DigestedBlock>(kept);
    for (const [b, u] of fresh) all.set(b, u);
    return all;
  }

  /** Forgets every block of the rev: indexed ones and fetched ones being written (no reader gets them any more). */
  private dropRev(rev: string): void {
    for (const [b, u] of this.unwritten.get(rev) ?? []) {
      const key = blockKey(rev, b);
      if (this.inflight.get(key) === u.pending) this.inflight.delete(key);
    }
    this.unwritten.delete(rev);
    for (const b of [...(this.byRev.get(rev)?.keys() ?? [])]) this.index.delete(blockKey(rev, b));
  }

  // ---- the index ----

  /**
   * Writes a block file and indexes it, within the budget, unless `current()` says otherwise
   * once it is written (its rev was dropped meanwhile: the file goes). Writes of one block run
   * one after the other. Never throws: false = not kept.
   */
  private store(rev: string, b: number, data: Buffer, sha256: Buffer, current: () => boolean = () => true): Promise<boolean> {
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
    try {
      await this.files.settle(); // evicted files are gone before this one is written: disk ≤ budget
      await this.files.write(rev, b, data);
    } catch (e) {
      this.reservedBytes -= data.length;
      this.logWriteError(rev, b, e);
      return false;
    }
    this.reservedBytes -= data.length;
    if (!current()) {
      this.files.remove(rev, b);
      return false;
    }
    if (this.index.has(key)) return true;
    const entry: Entry = { rev, block: b, bytes: data.length, sha256, lastUsedMs: this.now(), verified: true };
    this.index.set(key, entry);
    this.indexed(entry);
    this.emitReady(entry); // native adapter
    this.persist.put({ rev, block: b, bytes: entry.bytes, sha256, lastUsedMs: entry.lastUsedMs });
    this.flushSoon();
    return true;
  }

  /** Evicts least recently used blocks until `bytes` more fit; reserves them. */
  private makeRoom(bytes: number): boolean {
    const budget = this.opts.budgetBytes;
    if (this.closed || bytes > budget) return false;
    while (this.index.calculatedSize + this.reservedBytes + bytes > budget) {
      if (this.index.size === 0) return false;
      this.index.pop();
    }
    this.reservedBytes += bytes;
    return true;
  }

  private indexed(e: Entry): void {
    let blocks = this.byRev.get(e.rev);
    if (!blocks) this.byRev.set(e.rev, (blocks = new Map<number, Entry>()));
    blocks.set(e.block, e);
  }

  /** lru-cache's dispose: an entry left the index (evicted or dropped). */
  private disposed(e: Entry): void {
    const blocks = this.byRev.get(e.rev);
    if (blocks?.get(e.block) === e) {
      blocks.delete(e.block);
      if (blocks.size === 0) this.byRev.delete(e.rev);
    }
    if (e.verified) this.emit('gone', e.rev, e.block); // native adapter
    if (!this.keepFilesOnDispose) this.files.remove(e.rev, e.block);
    this.persist.delete(e.rev, e.block);
    this.flushSoon();
  }

  private touch(key: string, e: Entry): void {
    e.lastUsedMs = this.now();
    this.persist.touch(key, e.rev, e.block, e.lastUsedMs);
  }

  /**
   * Inserts and deletes reach SQLite in one transaction at most every INDEX_WRITE_DELAY_MS: a
   * commit on the mount's connection (synchronous = FULL) waits for an fsync on the event loop,
   * and once per block that stalled every FUSE call behind it. A row lost in a crash only costs
   * a fetch: at open, a block file without a row is removed.
   */
  private flushSoon(): void {
    if (this.flushTimer || !this.persist.persistent || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.persist.flush(false);
    }, INDEX_WRITE_DELAY_MS);
    this.flushTimer.unref();
  }

  private logWriteError(rev: string, b: number, e: unknown): void {
    const now = this.now();
    if (now - this.lastWriteErrorLogMs < WRITE_ERROR_LOG_EVERY_MS) return;
    this.lastWriteErrorLogMs = now;
    this.log(`cache: cannot keep block ${b} of rev ${rev} on disk (${(e as Error).message}); serving it from memory`);
  }

  // ---- adopt ----

  private async adoptFile(file: FileRef, localPath: string): Promise<void> {
    const startedMs = this.now();
    let fh: FileHandle;
    try {
      fh = await open(localPath, 'r');
    } catch (e) {
      throw new CacheError('local_io', `cannot adopt ${localPath}: ${(e as Error).message}`, { cause: e });
    }
    const n = blockCount(file.size);
    const digests: Buffer[] = [];
    let kept = 0;
    let done = 0;
    try {
      const size = (await fh.stat()).size;
      if (size !== file.size) throw new CacheError('local_io', `cannot adopt ${localPath}: it has ${size} bytes, rev ${file.rev} has ${file.size}`);
      const fit = blocksWithin(file.size, this.opts.budgetBytes); // older blocks are evicted to make room
      // A few blocks at once, so that reading, hashing and writing overlap; pooled buffers.
      let next = 0;
      let failure: Error | undefined;
      const worker = async (): Promise<void> => {
        while (failure === undefined && !this.closed && next < fit) {
          const b = next++;
          const buf = this.buffers.acquire();
          try {
            const data = await readLocalBlock(fh, localPath, file.size, b, buf);
            const key = blockKey(file.rev, b);
            if (this.index.has(key) || this.inflight.has(key)) {
              digests[b] = await this.hasher.digest(data);
            } else {
              let release!: (r: BlockResult) => void;
              const pending: Pending = { promise: new Promise<BlockResult>((r) => (release = r)), promote: noop };
              this.inflight.set(key, pending);
              try {
                const digest = await this.hasher.digest(data);
                if (await this.store(file.rev, b, data, digest)) kept++;
                digests[b] = digest;
              } finally {
                if (this.inflight.get(key) === pending) this.inflight.delete(key);
                release(data);
              }
            }
            done++;
          } catch (e) {
            failure ??= e instanceof Error ? e : new Error(String(e));
          } finally {
            this.buffers.releaseLater(buf);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(ADOPT_PARALLEL_BLOCKS, fit) }, worker));
      if (failure !== undefined) throw failure;
    } finally {
      await fh.close();
    }
    if (done === n && file.contentHash) {
      if (combineBlockDigests(digests) !== file.contentHash) {
        this.dropRev(file.rev);
        throw new CacheError('corrupt', `cannot adopt ${localPath}: its bytes do not make the content_hash of rev ${file.rev}`);
      }
      this.mismatches.delete(file.rev);
    }
    this.log(`cache: adopted ${kept} of ${n} blocks of rev ${file.rev} from ${localPath} in ${this.now() - startedMs} ms`);
  }

  // ---- open / close ----

  /** Loads the rows whose block file exists; removes rows without a file and files without a row. */
  private async load(): Promise<void> {
    const rows = this.persist.load();
    const scan = await this.files.scan();
    let missing = 0;
    for (const row of rows) {
      const file = this.files.path(row.rev, row.block);
      if (!scan.blocks.delete(file)) {
        this.persist.delete(row.rev, row.block);
        missing++;
        continue;
      }
      const key = blockKey(row.rev, row.block);
      if (row.bytes <= 0 || row.bytes > BLOCK_BYTES || !this.makeRoom(row.bytes)) {
        this.files.removePath(file);
        this.persist.delete(row.rev, row.block);
        continue;
      }
      this.reservedBytes -= row.bytes;
      const entry: Entry = { ...row, verified: false };
      this.index.set(key, entry);
      this.indexed(entry);
    }
    for (const file of [...scan.blocks, ...scan.temps]) this.files.removePath(file);
    this.persist.flush(false);
    await this.files.removeEmptyDirs(scan.dirs);
    if (rows.length > 0 || scan.blocks.size > 0) {
      this.log(
        `cache: ${this.index.size} blocks (${this.index.calculatedSize} bytes) kept from the last session; ` +
          `${missing} rows without a file and ${scan.blocks.size + scan.temps.length} files without a row removed`,
      );
    }
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    this.fetchAbort.abort();
    this.slots.close();
    this.diskSlots.close();
    clearInterval(this.timer);
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    while (this.ops.size > 0 || this.inflight.size > 0) {
      await Promise.allSettled([...this.ops, ...[...this.inflight.values()].map((p) => p.promise)]);
    }
    if (this.opts.removeDirOnClose) {
      this.keepFilesOnDispose = true; // the whole folder goes
      this.index.clear();
    }
    await this.hasher.close();
    this.persist.flush(true);
    this.files.closeFiles();
    await this.files.settle();
    if (this.opts.removeDirOnClose) await rm(this.opts.dir, { recursive: true, force: true });
  }

  private track<T>(fn: () => Promise<T>): Promise<T> {
    const p = fn();
    this.ops.add(p);
    const done = (): void => void this.ops.delete(p);
    void p.then(done, done);
    return p;
  }
}
