/**
 * BlockCache: the BlockCachePort over block files, an in-memory LRU index persisted to
 * SQLite, single-flight fetches and readahead. See index.ts for the invariants and the
 * concurrency rules. Its parts: the index (store.ts), blocks kept from an earlier session
 * (kept.ts), the content_hash check (rev-check.ts), adopting a local copy (adopt.ts).
 */
import { EventEmitter } from 'node:events';
import { mkdir, rm } from 'node:fs/promises';
import type { Database } from 'better-sqlite3';
import type { BodySink } from '../dropbox/range-socket.js';
import type { BlockCachePort, CacheStats, FileRef } from '../vfs/ports.js';
import { BLOCK_BYTES, blockCount, blockKey } from './blocks.js';
import { BlockFiles } from './disk.js';
import { noop, RETRY, type Entry, type Hasher, type Pending, type Unwritten } from './entry.js';
import { CacheError } from './errors.js';
import { KeptBlocks } from './kept.js';
import { IndexDb } from './persist.js';
import { bufferFor } from '../util/read.js';
import { Sha256Pool } from '../util/sha256-pool.js';
import { adoptFile } from './adopt.js';
import { DirectWrites } from './direct.js';
import { BlockBufferPool } from './pool.js';
import { ReadSink } from './sink.js';
import { ReadaheadPlanner } from './readahead.js';
import { RevChecks } from './rev-check.js';
import { FetchRun, type Part } from './run.js';
import { FetchSlots, type Priority } from './slots.js';
import { BlockStore } from './store.js';

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
  /**
   * Bytes [start, end) of `file`'s revision (a run of blocks) in one request, into `sink`'s
   * rooms in turn (client.readRangeInto). Without it, runs are fetched with `fetch`, a request
   * per block.
   */
  fetchRun?: (file: FileRef, start: number, end: number, sink: BodySink, signal: AbortSignal) => Promise<void>;
  /** Concurrent fetches (SREGISTRY_PYTHON_THREADS). */
  maxInFlight: number;
  /**
   * Fetched blocks that may wait for their hash and their write behind the fetches on the wire
   * (default: half of maxInFlight, rounded up): a slow disk write does not hold a connection.
   */
  writeBehindBlocks?: number;
  removeDirOnClose?: boolean;
  log?: (line: string) => void;
  nowMs?: () => number;
  /** How often last-use times are written to the index (default 5000). */
  indexFlushIntervalMs?: number;
  /** Worker threads that hash blocks (default 1). */
  hashWorkers?: number;
  /** What digests blocks (default: a Sha256Pool of `hashWorkers`; tests count its digests). Closed by close(). */
  hasher?: Hasher;
  /**
   * Block files written with O_DIRECT from aligned pooled buffers where the filesystem takes it
   * (default true; direct.ts says why). False: always through the page cache.
   */
  directWrites?: boolean;
}

const MAX_ATTEMPTS = 5;

/**
 * Blocks per readahead request at most (16 MiB): at 20 ms and 40 MB/s per connection, 4 MiB
 * requests got 0.84 of the bandwidth and 16 MiB ones 0.95 (run.ts).
 */
const RUN_BLOCKS_MAX = 4;

/**
 * Emits 'ready' (rev, index, file) once a block is on disk and verified (stored after a fetch
 * or an adopt, or a kept block trusted or checked at its first use: kept.ts), and 'gone' (rev,
 * index) when it leaves the index (evicted, dropped): the native FUSE adapter serves reads of
 * ready blocks itself (src/fuse3/blocks.ts). See "the native adapter's API" below.
 */
export class BlockCache extends EventEmitter implements BlockCachePort {
  private readonly inflight = new Map<string, Pending>();
  /** Fetched blocks being written behind their readers (writeBehind). */
  private readonly behind = new Set<Promise<void>>();
  private readonly ops = new Set<Promise<unknown>>();
  /** Connections: held by a fetch while its bytes come. */
  private readonly slots: FetchSlots;
  /** Block buffers: held by a fetch from before its bytes come until its block is written. */
  private readonly memorySlots: FetchSlots;
  private readonly diskSlots: FetchSlots;
  private readonly planner: ReadaheadPlanner;
  private readonly buffers: BlockBufferPool;
  private readonly direct: DirectWrites;
  /** Block digests, off the event loop; closed by close(). */
  private readonly hasher: Hasher;
  private readonly files: BlockFiles;
  private readonly persist: IndexDb;
  private readonly store: BlockStore;
  private readonly kept: KeptBlocks;
  private readonly revs: RevChecks;
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  private hits = 0;
  private misses = 0;
  private fetchedBytes = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Aborted at close: fetches in flight stop at once instead of waiting out their deadline. */
  private readonly fetchAbort = new AbortController();

  static async open(opts: BlockCacheOptions): Promise<BlockCache> {
    if (!Number.isSafeInteger(opts.budgetBytes) || opts.budgetBytes < 0) throw new RangeError(`budgetBytes must be a non-negative integer, not ${opts.budgetBytes}`);
    await mkdir(opts.dir, { recursive: true });
    const cache = new BlockCache(opts);
    // The probe of direct writes (a few ms of disk writes) runs while kept.load scans and stats.
    const [, aligned] = await Promise.all([cache.kept.load(), cache.direct.prepare(cache.bufferCount)]);
    cache.buffers.addAligned(aligned);
    cache.timer = setInterval(() => cache.persist.flush(true), opts.indexFlushIntervalMs ?? 5000);
    cache.timer.unref();
    return cache;
  }

  private constructor(private readonly opts: BlockCacheOptions) {
    super();
    this.log = opts.log ?? noop;
    this.now = opts.nowMs ?? Date.now;
    this.slots = new FetchSlots(opts.maxInFlight);
    this.memorySlots = new FetchSlots(this.bufferCount);
    this.diskSlots = new FetchSlots(opts.maxInFlight);
    this.buffers = new BlockBufferPool(this.bufferCount);
    this.hasher = opts.hasher ?? new Sha256Pool({ size: opts.hashWorkers ?? 1 });
    // The window reaches four times as far as the fetches that may run: readahead goes out in
    // runs of window / maxInFlight blocks per request (runBlocks), so that every connection
    // has a run and a connection that frees while the reader still waits on an earlier block
    // goes to the next run at once. (With a window of maxInFlight and a block per request,
    // fetches went in waves that ended together and connections stood idle until the reader
    // caught up.) The planner's earned rule keeps the window small for a container start.
    this.planner = new ReadaheadPlanner(Math.min(4 * opts.maxInFlight, Math.max(0, Math.floor(opts.budgetBytes / BLOCK_BYTES) - 1)));
    this.direct = new DirectWrites(opts.dir, this.log, opts.directWrites ?? true);
    this.files = new BlockFiles(opts.dir, this.log, undefined, this.direct);
    this.persist = new IndexDb(opts.db, this.log);
    const onReady = (e: Entry): void => {
      if (this.listenerCount('ready') > 0) this.emit('ready', e.rev, e.block, this.files.path(e.rev, e.block));
    };
    const common = { files: this.files, persist: this.persist, log: this.log, onReady };
    this.store = new BlockStore({ ...common, budgetBytes: opts.budgetBytes, now: this.now, onGone: (e) => this.emit('gone', e.rev, e.block) });
    this.kept = new KeptBlocks({ ...common, store: this.store, hasher: this.hasher, buffers: this.buffers, slots: this.diskSlots, inflight: this.inflight });
    this.revs = new RevChecks(this.store, this.inflight, this.log);
  }

  /** Fetched blocks in memory at most: on the wire, then hashed and written behind them. */
  private get bufferCount(): number {
    return this.opts.maxInFlight + (this.opts.writeBehindBlocks ?? Math.ceil(this.opts.maxInFlight / 2));
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
      this.revs.onFirstUse(file);
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
      this.readahead(file, this.planner.onRead(stream, file.rev, file.size, offset, end));
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
    const c = { budgetBytes: this.opts.budgetBytes, store: this.store, revs: this.revs, hasher: this.hasher, buffers: this.buffers, inflight: this.inflight };
    return this.track(() => adoptFile({ ...c, closed: () => this.closed, log: this.log, now: this.now }, file, localPath));
  }

  stats(): CacheStats {
    return {
      budgetBytes: this.opts.budgetBytes,
      usedBytes: this.store.index.calculatedSize,
      blocks: this.store.index.size,
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

  /** Blocks of `rev` on disk and verified: the native adapter may read them itself. */
  readyBlocks(rev: string): number[] {
    const out: number[] = [];
    for (const [b, e] of this.store.blocksOf(rev) ?? []) if (e.verified) out.push(b);
    return out;
  }

  /** The file that holds block `index` of `rev`. */
  blockFile(rev: string, index: number): string {
    return this.files.path(rev, index);
  }

  /**
   * A handle opens `file` for reading: its rev is checked (content_hash) as at a first read, and
   * its kept blocks whose files are the ones sealed at a clean close become ready (kept.ts: a
   * stat each, no read), so that the adapter serves them from the first read on.
   */
  async prepare(file: FileRef): Promise<void> {
    if (this.closed) return;
    this.revs.onFirstUse(file);
    await this.track(() => this.kept.trustAll(this.store.blocksOf(file.rev)?.values() ?? []));
  }

  /**
   * A read the native adapter served without us: readahead planned as if we had served it,
   * so that a sequential reader's window keeps moving ahead of it.
   */
  advise(file: FileRef, offset: number, length: number, stream: number): void {
    const end = Math.min(file.size, offset + length);
    if (this.closed || offset >= end) return;
    this.readahead(file, this.planner.onRead(stream, file.rev, file.size, offset, end));
  }

  /**
   * Missing blocks are fetched, contiguous ones in runs of one request each (runBlocks); kept
   * ones not verified yet are trusted or digested ahead of the reader. A run shorter than the
   * others at the window's far edge waits for the window to move on and make it whole (a
   * sequential reader moves it a block at a time), unless it ends the file.
   */
  private readahead(file: FileRef, blocks: readonly number[]): void {
    const runLen = this.runBlocks(blocks.length);
    let first = 0;
    let count = 0;
    const start = (): void => {
      if (count > 0) this.startRun(file, first, count, 'readahead');
      count = 0;
    };
    for (const b of blocks) {
      const key = blockKey(file.rev, b);
      const busy = this.inflight.has(key);
      const entry = busy ? undefined : this.store.index.peek(key);
      if (busy || entry) {
        start();
        if (entry && !entry.verified) this.kept.ahead(key, entry);
        continue;
      }
      if (count === 0) first = b;
      if (++count === runLen) start();
    }
    if (count > 0 && first + count === blockCount(file.size)) start();
  }

  /**
   * Blocks per readahead request for a window of `window` blocks: as many as keep every
   * connection busy with the window (window / maxInFlight), at most RUN_BLOCKS_MAX.
   */
  private runBlocks(window: number): number {
    return Math.max(1, Math.min(RUN_BLOCKS_MAX, Math.floor(window / this.opts.maxInFlight)));
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
      const entry = this.store.index.get(key);
      if (entry) {
        this.store.touch(key, entry);
        if (!entry.verified) {
          if (entry.keptId !== undefined) {
            await sink.wait(this.kept.trust(entry)); // a stat: then read from disk, or digested
            continue;
          }
          const r = await sink.wait(this.kept.verify(key, entry).promise);
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
          if (this.store.index.peek(key) === entry) this.store.index.delete(key);
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
    const existing = this.inflight.get(blockKey(file.rev, b));
    if (existing) {
      if (priority === 'demand') existing.promote();
      return existing;
    }
    return this.startRun(file, b, 1, priority)[0]!.pending;
  }

  /** Fetches blocks [first, first + count) of `file` (none in flight) in one request. */
  private startRun(file: FileRef, first: number, count: number, priority: Priority): Part[] {
    const slots = { net: this.slots, memory: this.memorySlots, buffers: this.buffers };
    const run = new FetchRun(file, first, count, priority, slots, (part) => void this.track(() => this.filled(file, part)));
    for (const part of run.parts) this.inflight.set(part.key, part.pending);
    void this.track(() => this.runFetch(run));
    return run.parts;
  }

  /**
   * The request of a run: it holds a connection while its bytes come, and each part takes its
   * buffer (its memory slot) when the bytes reach it (run.ts) and keeps it until its block is
   * written: at most `bufferCount` fetched blocks are in memory. Parts whose bytes did not all
   * come when the request fails are rejected with its error.
   */
  private async runFetch(run: FetchRun): Promise<void> {
    const { file } = run;
    try {
      // The hashing worker boots (~0.1 s) while the first fetch waits for the network, not after it.
      this.hasher.warm?.();
      await run.connection();
      await this.fetchInto(file, run.start, run.end, run, this.fetchAbort.signal);
      if (run.unfilled().length > 0) throw new CacheError('bad_fetch', `fetching bytes ${run.start}-${run.end} of rev ${file.rev} ended before all of them came`);
    } catch (raw) {
      const e = this.fetchAbort.signal.aborted ? new CacheError('closed', 'the block cache is closed', { cause: raw }) : raw instanceof Error ? raw : new Error(String(raw));
      const parts = run.unfilled();
      if (parts.length > 0 && !(e instanceof CacheError && e.code === 'closed')) {
        const which = parts.length === 1 ? `block ${parts[0]!.b}` : `blocks ${parts[0]!.b}-${parts.at(-1)!.b}`;
        this.log(`cache: ${which} of rev ${file.rev}: ${e.message}`);
      }
      for (const part of parts) {
        part.settle(e);
        this.dropPart(part);
      }
    } finally {
      run.releaseConnection();
    }
  }

  /**
   * Bytes [start, end) of `file` into `sink`'s rooms: one request through `fetchRun`, or a
   * `fetch` per room (a buffer it returns that is not the room is copied in).
   */
  private async fetchInto(file: FileRef, start: number, end: number, sink: FetchRun, signal: AbortSignal): Promise<void> {
    if (this.opts.fetchRun) return this.opts.fetchRun(file, start, end, sink, signal);
    for (let at = start; at < end; ) {
      const room = await sink.room();
      const n = Math.min(room.length, end - at);
      const data = await this.opts.fetch(file, at, at + n, room.subarray(0, n), signal);
      if (!Buffer.isBuffer(data) || data.length !== n) {
        throw new CacheError('bad_fetch', `fetching bytes ${at}-${at + n} of rev ${file.rev} returned ${Buffer.isBuffer(data) ? data.length : typeof data} bytes`);
      }
      if (data.buffer !== room.buffer || data.byteOffset !== room.byteOffset) data.copy(room);
      sink.wrote(n);
      at += n;
    }
  }

  /**
   * A part's bytes are in: digested, checked with its rev, handed to its readers at once (the
   * pooled buffer), and written behind them (writeBehind).
   */
  private async filled(file: FileRef, part: Part): Promise<void> {
    const data = part.buf!.subarray(0, part.bytes);
    let writing = false;
    try {
      this.fetchedBytes += data.length;
      const fresh: Unwritten = { bytes: data.length, sha256: await this.hasher.digest(data), pending: part.pending };
      this.revs.addUnwritten(file.rev, part.b, fresh);
      if (this.revs.check(file) === 'mismatch') {
        const times = this.revs.onMismatch(file); // drops this block too
        if (times < 2) {
          part.settle(RETRY);
          return;
        }
        this.revs.matched(file.rev);
        throw new CacheError('corrupt', `rev ${file.rev} (${file.id}) did not match its content_hash twice in a row`);
      }
      writing = true;
      const w = this.track(() => this.writeBehind(file.rev, part, data, fresh));
      this.behind.add(w);
      void w.finally(() => this.behind.delete(w));
      part.settle(data);
    } catch (raw) {
      const e = this.closed ? new CacheError('closed', 'the block cache is closed', { cause: raw }) : (raw as Error);
      if (!(e instanceof CacheError && e.code === 'closed')) this.log(`cache: block ${part.b} of rev ${file.rev}: ${e.message}`);
      part.settle(e);
    } finally {
      if (!writing) this.dropPart(part);
    }
  }

  /** Writes a fetched block (already served) and indexes it unless its rev was dropped meanwhile. */
  private async writeBehind(rev: string, part: Part, data: Buffer, fresh: Unwritten): Promise<void> {
    try {
      await this.store.store(rev, part.b, data, fresh.sha256, () => this.revs.isUnwritten(rev, part.b, fresh));
    } finally {
      this.revs.removeUnwritten(rev, part.b, fresh);
      this.dropPart(part);
    }
  }

  /** A part is written or given up: out of `inflight`, its buffer and memory slot back (after its readers' copies). */
  private dropPart(part: Part): void {
    if (this.inflight.get(part.key) === part.pending) this.inflight.delete(part.key);
    part.released = true;
    this.buffers.releaseLater(part.buf, part.memory);
  }

  // ---- close ----

  private async shutDown(): Promise<void> {
    this.closed = true;
    this.store.stopFlushing();
    this.fetchAbort.abort();
    this.slots.close();
    this.memorySlots.close();
    this.diskSlots.close();
    clearInterval(this.timer);
    while (this.ops.size > 0 || this.inflight.size > 0) {
      await Promise.allSettled([...this.ops, ...[...this.inflight.values()].map((p) => p.promise)]);
    }
    await this.kept.settle();
    if (this.opts.removeDirOnClose) {
      this.store.keepFilesOnDispose = true; // the whole folder goes
      this.store.index.clear();
    } else if (this.persist.persistent) {
      // A clean close: the files written in this session are fsynced and their rows sealed, so
      // that the next session trusts them without reading them (kept.ts).
      await this.kept.seal();
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
