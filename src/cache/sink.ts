/**
 * The caller's buffer of one read, guarded. The read's blocks are written into it by copies on
 * the event loop and by positional reads of block files (in libuv's pool, which cannot be
 * stopped once started). A read settles only after close(): close forbids new writes and
 * resolves once the positional reads under way are done, so nothing writes into the caller's
 * buffer after the read's promise settles, also when one block failed while its siblings were
 * still coming (fuse/ answers the kernel then, and libfuse frees that buffer).
 *
 * The sink also closes when the caller's `intoGone` signal aborts (fuse/'s safety timer): then
 * waits on fetches end at once and no write starts.
 */
import { CacheError } from './errors.js';

const noop = (): void => undefined;

export class ReadSink {
  private open = true;
  private readonly busy = new Set<Promise<unknown>>();
  /** Rejects when the sink closes; made by the first wait (a read served from disk never waits). */
  private gone: Promise<never> | undefined;
  private fail: ((e: Error) => void) | undefined;
  private readonly onAbort = (): void => this.shut('was answered meanwhile');

  constructor(
    private readonly what: string,
    private readonly intoGone?: AbortSignal,
  ) {
    if (intoGone?.aborted) this.onAbort();
    else intoGone?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Throws unless writes into the buffer are still allowed. */
  check(): void {
    if (!this.open) throw this.error('was answered meanwhile');
  }

  /** A copy into the buffer, now (on the event loop), if still allowed. */
  copy(write: () => void): void {
    this.check();
    write();
  }

  /** An asynchronous write into the buffer, just started: close() waits for it. */
  async track<T>(write: Promise<T>): Promise<T> {
    this.busy.add(write);
    try {
      return await write;
    } finally {
      this.busy.delete(write);
    }
  }

  /** `p`, unless the sink closes first: then rejects at once (the wait is abandoned, not `p`). */
  wait<T>(p: Promise<T>): Promise<T> {
    if (!this.open) return Promise.reject(this.error('was answered meanwhile'));
    if (!this.gone) {
      this.gone = new Promise<never>((_, reject) => (this.fail = reject));
      this.gone.catch(noop);
    }
    return Promise.race([p, this.gone]);
  }

  /** No write starts any more; resolves when the ones under way are done. */
  async close(): Promise<void> {
    this.shut('has settled');
    while (this.busy.size > 0) await Promise.allSettled([...this.busy]);
  }

  private shut(why: string): void {
    if (!this.open) return;
    this.open = false;
    this.intoGone?.removeEventListener('abort', this.onAbort);
    this.fail?.(this.error(why));
  }

  private error(why: string): CacheError {
    return new CacheError('closed', `the reader of ${this.what} ${why}`);
  }
}
