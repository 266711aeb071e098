/**
 * SHA-256 of whole buffers (the cache's 4 MiB blocks) on a few worker threads, so that hashing
 * never runs on the event loop that serves FUSE calls and sockets.
 *
 * - A buffer that lives in a SharedArrayBuffer (the block cache's pooled buffers) reaches the
 *   worker as a view of the same memory: no copy. Any other buffer is copied by structured
 *   cloning (measured with scripts/lib/hash-pool-bench.mjs; see the commit that added it).
 *   The caller must not change the bytes until the digest has settled.
 * - One job per worker at a time; jobs wait in one queue, first come first served.
 * - Workers start at the first job, or at warm(); they are unref'd while idle (they never keep
 *   the process alive) and terminated by close(), which fails the jobs still waiting or running.
 * - A worker that dies (an uncaught error, exit, out of memory) fails the job it had with an
 *   error saying so; a new worker takes its place when the next job comes (never in a loop:
 *   a worker that cannot start fails one job per attempt).
 */
import { Worker } from 'node:worker_threads';

export interface Sha256PoolOptions {
  /** Worker threads (default 1: one hashes ~1.5 GB/s with SHA-NI, and each costs ~0.1 s of CPU to start). */
  size?: number;
  /** The worker's module (tests); default sha256-worker.js beside this file. */
  workerUrl?: URL;
}

interface Job {
  id: number;
  data: Uint8Array;
  resolve: (digest: Buffer) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  error: Error | undefined;
}

export class Sha256PoolError extends Error {
  override readonly name = 'Sha256PoolError';
}

export class Sha256Pool {
  private readonly size: number;
  private readonly workerUrl: URL;
  private readonly slots = new Set<Slot>();
  private readonly queue: Job[] = [];
  private seq = 0;
  private closed = false;
  /** Workers that died so far (stats, tests). */
  crashes = 0;

  constructor(opts: Sha256PoolOptions = {}) {
    this.size = opts.size ?? 1;
    if (!Number.isInteger(this.size) || this.size < 1) throw new RangeError(`a SHA-256 pool needs at least one worker, not ${this.size}`);
    this.workerUrl = opts.workerUrl ?? new URL('./sha256-worker.js', import.meta.url);
  }

  /** The SHA-256 of `data` (32 bytes). */
  digest(data: Uint8Array): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Sha256PoolError('the SHA-256 pool is closed'));
    return new Promise<Buffer>((resolve, reject) => {
      this.queue.push({ id: ++this.seq, data, resolve, reject });
      this.pump();
    });
  }

  /**
   * Starts the workers now, idle (unref'd), so that the first digest does not wait for one to
   * boot (~0.1 s): the block cache calls it when its first fetch goes out, so the start overlaps
   * the network's answer.
   */
  warm(): void {
    while (!this.closed && this.slots.size < this.size) this.spawn();
  }

  /** Live workers (tests). */
  get workers(): number {
    return this.slots.size;
  }

  /** Terminates the workers; jobs waiting or running fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const gone = new Sha256PoolError('the SHA-256 pool was closed');
    for (const job of this.queue.splice(0)) job.reject(gone);
    const slots = [...this.slots];
    this.slots.clear();
    for (const s of slots) {
      s.job?.reject(gone);
      s.job = undefined;
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot: Slot | undefined;
      for (const s of this.slots) if (!s.job) { slot = s; break; }
      if (!slot) {
        if (this.slots.size >= this.size) return;
        slot = this.spawn();
      }
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.ref(); // a job under way keeps the process alive until it is answered
      slot.worker.postMessage({ id: job.id, data: job.data });
    }
  }

  private spawn(): Slot {
    // execArgv: none of the parent's (--input-type, --cpu-prof... are not for a worker).
    const worker = new Worker(this.workerUrl, { execArgv: [] });
    const slot: Slot = { worker, job: undefined, error: undefined };
    worker.unref();
    // An unref before the thread is up does not hold (measured: a process whose only worker was
    // warmed and never used did not exit): again once it is online, unless a job runs.
    worker.once('online', () => {
      if (!slot.job) worker.unref();
    });
    worker.on('message', (m: { id: number; digest: Uint8Array }) => {
      const job = slot.job;
      if (!job || job.id !== m.id) return;
      slot.job = undefined;
      worker.unref();
      job.resolve(Buffer.from(m.digest.buffer, m.digest.byteOffset, m.digest.byteLength));
      this.pump();
    });
    worker.on('error', (e) => (slot.error = e));
    worker.on('exit', (code) => {
      if (!this.slots.delete(slot)) return; // closed
      this.crashes++;
      const job = slot.job;
      slot.job = undefined;
      const why = slot.error ? `: ${slot.error.message}` : '';
      job?.reject(new Sha256PoolError(`a SHA-256 worker stopped (exit code ${code}${why}) while hashing ${job.data.length} bytes`, { cause: slot.error }));
      this.pump(); // a new worker takes its place if jobs wait
    });
    this.slots.add(slot);
    return slot;
  }
}
