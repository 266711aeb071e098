/**
 * Reused 4 MiB block buffers for fetches and checks. A fresh 4 MiB Buffer is fresh pages: a
 * thousand page faults as it fills, and external memory that drives the garbage collector.
 * Measured on a cold `dd` through the mount, before the pool: 1.7 s of Buffer copies (mostly
 * page faults) and 2.4 s of GC per GiB on the event loop.
 *
 * A buffer goes back only after everyone who was handed it is done: a fetch's readers copy
 * their slices in the microtasks that follow the fetch's settling, so `releaseLater` waits
 * for the next macrotask (setImmediate). The fetch's memory slot is given back in the same
 * callback, after its buffer: the fetch that takes the slot next takes that buffer, so a
 * steady stream of fetches uses as many buffers as there are memory slots (block-cache.ts:
 * the fetch limit plus the blocks written behind), not more (measured when a fetch freed its
 * only slot at once and took a fresh buffer: peak RSS of a cold 1 GiB read 187–211 MiB).
 * At most `keep` free buffers are kept.
 *
 * The buffers live in SharedArrayBuffers, so the hashing workers (util/sha256-pool.ts) read
 * them in place: measured (scripts/lib/hash-pool-bench.mjs), 0.1–0.2 ms of the event loop per
 * 4 MiB block against 3 ms when postMessage copies a plain buffer (and 6–9 ms to hash it on
 * the event loop).
 */
import { BLOCK_BYTES } from './blocks.js';

export class BlockBufferPool {
  private readonly free: Buffer[] = [];
  /** Buffers aligned for direct writes (direct.ts): always kept, and handed out first. */
  private readonly alignedFree: Buffer[] = [];
  private readonly alignedSet = new WeakSet<Buffer>();

  constructor(private readonly keep: number) {}

  /** Aligned buffers (DirectWrites.prepare), once they are ready: block files written from them skip the page cache. */
  addAligned(bufs: Buffer[]): void {
    for (const b of bufs) {
      this.alignedSet.add(b);
      this.alignedFree.push(b);
    }
  }

  acquire(): Buffer {
    return this.alignedFree.pop() ?? this.free.pop() ?? Buffer.from(new SharedArrayBuffer(BLOCK_BYTES));
  }

  /**
   * Back to the pool once the current macrotask's microtasks (the readers' copies) have run;
   * then `slot` (if any) is released.
   */
  releaseLater(buf: Buffer | undefined, slot?: { release(): void }): void {
    setImmediate(() => {
      if (buf && this.alignedSet.has(buf)) this.alignedFree.push(buf);
      else if (buf && this.free.length < this.keep) this.free.push(buf);
      slot?.release();
    });
  }
}
