/**
 * Shared pieces of the block-cache tests: a fake remote (random files in memory, a counting
 * `fetch` with a gate, injected failures and corruption), temporary folders and databases that
 * are always removed, and a cache opened on them and closed at teardown.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { BlockCache, type BlockCacheOptions } from '../../src/cache/index.js';
import { migrate } from '../../src/catalog/migrate.js';
import { STATE_MIGRATIONS } from '../../src/catalog/mount-state.js';
import { contentHash } from '../../src/dropbox/content-hash.js';
import type { BodySink } from '../../src/dropbox/range-socket.js';
import type { FileRef } from '../../src/vfs/ports.js';

export const MiB = 1024 * 1024;
export const BLOCK = 4 * MiB;

export interface Call {
  rev: string;
  start: number;
  end: number;
  block: number;
}

type Fault = (call: Call) => Error | undefined;

export class FakeRemote {
  readonly files = new Map<string, Buffer>();
  readonly calls: Call[] = [];
  inFlight = 0;
  maxInFlightSeen = 0;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private faults: { fault: Fault; times: number }[] = [];
  private corruptions: { rev: string; block: number; times: number }[] = [];
  private seq = 0;

  /** A random file of `size` bytes under a new rev (or `rev`). */
  add(size: number, rev = `${(++this.seq).toString(16).padStart(4, '0')}${randomBytes(6).toString('hex')}`, id = `id:${rev}`): FileRef {
    const data = randomBytes(size);
    this.files.set(rev, data);
    return { id, rev, size, contentHash: contentHash(data) };
  }

  data(f: FileRef): Buffer {
    const d = this.files.get(f.rev);
    if (!d) throw new Error(`no file with rev ${f.rev}`);
    return d;
  }

  /** Like client.readRange: into the cache's pooled buffer when it passes one, so every test here runs on reused buffers. */
  readonly fetch = async (f: FileRef, start: number, end: number, into?: Buffer): Promise<Buffer> => {
    const call: Call = { rev: f.rev, start, end, block: Math.floor(start / BLOCK) };
    this.calls.push(call);
    this.inFlight++;
    this.maxInFlightSeen = Math.max(this.maxInFlightSeen, this.inFlight);
    try {
      while (this.gate) await this.gate;
      await new Promise((r) => setImmediate(r));
      for (const f of this.faults) {
        const err = f.times > 0 ? f.fault(call) : undefined;
        if (err) {
          f.times--;
          throw err;
        }
      }
      const src = this.data(f).subarray(start, end);
      const out = into && into.length >= src.length ? into.subarray(0, src.length) : Buffer.alloc(src.length);
      src.copy(out);
      const c = this.corruptions.find((x) => x.rev === f.rev && x.block === call.block && x.times > 0);
      if (c && out.length > 0) {
        c.times--;
        out[0] = (out[0] ?? 0) ^ 0xff;
      }
      return out;
    } finally {
      this.inFlight--;
    }
  };

  /** Requests of fetchRun: [start, end) each (its blocks are in `calls` too, one call each). */
  readonly runs: { rev: string; start: number; end: number }[] = [];
  /** Seeds how fetchRun cuts its bytes into writes. */
  pieces = rng(99);

  /**
   * Like client.readRangeInto: one request for a run of blocks (a call per block in `calls`, so
   * counts stay per block), its bytes written into the sink's rooms in random pieces with turns
   * of the event loop between them. A fault fails the request before its first byte or, when
   * its block is not the first, once the blocks before it are in (a cut midway).
   */
  readonly fetchRun = async (f: FileRef, start: number, end: number, sink: BodySink): Promise<void> => {
    this.runs.push({ rev: f.rev, start, end });
    const calls: Call[] = [];
    for (let b = Math.floor(start / BLOCK); b * BLOCK < end; b++) calls.push({ rev: f.rev, start: Math.max(start, b * BLOCK), end: Math.min(end, (b + 1) * BLOCK), block: b });
    this.calls.push(...calls);
    this.inFlight++;
    this.maxInFlightSeen = Math.max(this.maxInFlightSeen, this.inFlight);
    try {
      while (this.gate) await this.gate;
      await new Promise((r) => setImmediate(r));
      const src = this.data(f);
      let at = start;
      for (const call of calls) {
        for (const fl of this.faults) {
          const err = fl.times > 0 ? fl.fault(call) : undefined;
          if (err) {
            fl.times--;
            throw err;
          }
        }
        const c = this.corruptions.find((x) => x.rev === f.rev && x.block === call.block && x.times > 0);
        if (c) c.times--;
        while (at < call.end) {
          const room = await sink.room();
          const n = Math.min(room.length, call.end - at, 1 + this.pieces(256 * 1024));
          src.copy(room, 0, at, at + n);
          if (c && at === call.start) room[0] = (room[0] ?? 0) ^ 0xff;
          at += n;
          sink.wrote(n);
          if (this.pieces(4) === 0) await new Promise((r) => setImmediate(r));
        }
      }
    } finally {
      this.inFlight--;
    }
  };

  /** Fetches wait until release(). */
  hold(): void {
    this.gate ??= new Promise<void>((r) => (this.openGate = r));
  }

  release(): void {
    const open = this.openGate;
    this.gate = undefined;
    this.openGate = undefined;
    open?.();
  }

  /** The next `times` fetches for which `fault` returns an error fail with it. */
  failWhen(fault: Fault, times = 1): void {
    this.faults.push({ fault, times });
  }

  /** The next `times` fetches of that block return it with its first byte flipped. */
  corrupt(rev: string, block: number, times = 1): void {
    this.corruptions.push({ rev, block, times });
  }

  /** No more injected failures or corruption. */
  heal(): void {
    this.faults = [];
    this.corruptions = [];
  }

  count(rev?: string, block?: number): number {
    return this.calls.filter((c) => (rev === undefined || c.rev === rev) && (block === undefined || c.block === block)).length;
  }
}

export async function tempDir(t: ExecutionContext, prefix = 'sreg-cache-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A migrated mount state database in `dir`; closed at teardown. */
export function openDb(t: ExecutionContext, dir: string): Database.Database {
  const db = new Database(path.join(dir, 'state.db'));
  db.pragma('journal_mode = WAL');
  migrate(db, STATE_MIGRATIONS, { python: false });
  t.teardown(() => db.close());
  return db;
}

export interface Opened {
  cache: BlockCache;
  logs: string[];
}

/** Opens a cache (closed at teardown if the test did not close it). */
export async function openCache(t: ExecutionContext, opts: Partial<BlockCacheOptions> & Pick<BlockCacheOptions, 'dir' | 'fetch'>): Promise<Opened> {
  const logs: string[] = [];
  const cache = await BlockCache.open({ db: null, budgetBytes: 64 * MiB, maxInFlight: 4, log: (l) => logs.push(l), ...opts });
  t.teardown(() => cache.close());
  return { cache, logs };
}

/** Sum of the sizes of the files under `dir`. */
export async function diskBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    try {
      total += (await stat(path.join(e.parentPath, e.name))).size;
    } catch (err) {
      // A block's temporary file renamed (or an evicted block removed) since readdir: not there any more.
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
  }
  return total;
}

/** Deterministic pseudo-random integers (a test that fails can be replayed). */
export function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

let streamSeq = 1000;
/** A stream id no other read used (a random reader). */
export const freshStream = (): number => ++streamSeq;
