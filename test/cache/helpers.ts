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
