/**
 * One kernel callback, answered exactly once: the result of the work, its error mapped to an
 * errno (vfs/errors.ts), or EIO from the safety timer when the work takes longer than
 * `timeoutMs`. The timer does not leave the work running blind:
 * - it aborts the signal the work was given (a read waiting on a fetch stops at once);
 * - what the work produces after the answer is undone (`undo`: an open that returns a handle
 *   the kernel never got releases it, so unmount is not refused forever);
 * - work that uses a buffer the kernel owns (`holdsBuffer`: read and write) is answered only once
 *   it has settled, after the abort: libfuse frees that buffer when we answer, so nothing may
 *   read or write it afterwards. Those works settle promptly once aborted (a positional read or
 *   write of a local file already under way is the most they wait for).
 */
import { constants } from 'node:os';
import { errnoOf, type Errno } from '../vfs/index.js';

export type Cb = (...args: unknown[]) => void;

export interface FuseLog {
  (line: string): void;
}

export const errnoNumber = (e: Errno): number => -(constants.errno[e] ?? constants.errno.EIO);

/** Errnos worth a log line: the others are a user's ordinary mistakes (ENOENT, EEXIST, …). */
const LOGGED = new Set<Errno>(['EIO', 'EACCES', 'ENOSPC', 'EAGAIN', 'EFBIG']);

export interface ReplyContext {
  log: FuseLog;
  timeoutMs: number;
}

export interface Call<T> {
  op: string;
  path: string;
  cb: Cb;
  /** `signal` is given to work that holds the kernel's buffer (the only work it can stop). */
  work: (signal?: AbortSignal) => T | Promise<T>;
  /** Answers with the result (calls its `cb` once); may throw, which answers the error. */
  ok: (r: T, cb: Cb) => void;
  /** Called with a result the work produced after the timer had answered for it. */
  undo?: (r: T) => unknown;
  /** The work reads or writes a buffer that the kernel owns until the answer. */
  holdsBuffer?: boolean;
}

export function reply<T>(ctx: ReplyContext, call: Call<T>): void {
  const { op, path, cb } = call;
  // Only a buffer-holding work (read, write) is given a signal: the other calls (getattr,
  // readdir… thousands per `ls -lR`) need no AbortController each.
  const cancel = call.holdsBuffer ? new AbortController() : undefined;
  let done = false;
  let timedOut = false;
  let settled = false;
  const once = (...args: unknown[]): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    cb(...args);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    cancel?.abort(new Error(`${op} ${path}: no answer after ${ctx.timeoutMs} ms`));
    if (call.holdsBuffer && !settled) {
      ctx.log(`${op} ${path}: no answer after ${ctx.timeoutMs / 1000} s: cancelled; replying EIO once it lets go of the kernel's buffer`);
      return;
    }
    ctx.log(`${op} ${path}: no answer after ${ctx.timeoutMs / 1000} s, replying EIO`);
    once(errnoNumber('EIO'));
  }, ctx.timeoutMs);
  const fail = (e: unknown): void => {
    settled = true;
    if (timedOut) {
      once(errnoNumber('EIO'));
      return;
    }
    const errno = errnoOf(e);
    if (LOGGED.has(errno)) ctx.log(`${op} ${path}: ${errno}: ${(e as Error)?.message ?? String(e)}`);
    once(errnoNumber(errno));
  };
  const succeed = (v: T): void => {
    settled = true;
    if (done) {
      if (call.undo) {
        ctx.log(`${op} ${path}: finished after EIO was answered for it: undoing what it did`);
        Promise.resolve()
          .then(() => call.undo?.(v))
          .catch((e: unknown) => ctx.log(`${op} ${path}: undoing a late result failed: ${(e as Error)?.message ?? String(e)}`));
      } else {
        ctx.log(`${op} ${path}: finished after EIO was answered for it`);
      }
      return;
    }
    if (timedOut) {
      // A buffer-holding work that completed after the abort: the kernel gets the EIO it was promised.
      once(errnoNumber('EIO'));
      return;
    }
    try {
      call.ok(v, once);
    } catch (e) {
      fail(e);
    }
  };
  try {
    const r = call.work(cancel?.signal);
    if (r instanceof Promise) r.then(succeed, fail);
    else succeed(r);
  } catch (e) {
    fail(e);
  }
}
