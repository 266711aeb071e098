/**
 * The one retry policy every Dropbox call goes through: 5xx and dropped connections back off
 * exponentially with full jitter; 429 and `too_many_write_operations` (both forms) wait what
 * `Retry-After` says (with a little jitter, never less); an expired token is refreshed once and
 * the call retried at once. Anything else fails at once. Bounded: `maxAttempts` tries; a dead
 * endpoint (refused, no such host) and a stalled one (no answer within the transport's timeout,
 * StallError or node-fetch's timeouts) get only a few, so a command gives up within about
 * 3 × SREGISTRY_DROPBOX_TIMEOUT (plus under 2 s of backoff) per call.
 *
 * With `deadlineMs` (reads through the mount) the call instead rides out an outage: every
 * retryable failure, unreachable and stalled included, is tried again with backoff (at most
 * OUTAGE_MAX_DELAY_MS apart, to notice the recovery soon) until the next try would start past
 * the deadline; then the last error is thrown.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { classify, isStall, LocalError, type RemoteError } from './errors.js';

export interface RetryOptions {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Called before each wait: for --debug logs and progress displays. */
  onRetry?: (e: RemoteError, attempt: number, delayMs: number) => void;
  /** Called on an expired token, with the token the attempt used, before the retry; should refresh it. */
  onExpired?: (usedToken: string | undefined) => Promise<void>;
  signal?: AbortSignal;
  endpointLabel?: string;
  /** Ride out an outage: retry retryable failures until this long after the first try (see above). */
  deadlineMs?: number;
  nowMs?: () => number;
}

export const DEFAULT_RETRY: RetryOptions = { maxAttempts: 8, baseDelayMs: 250, maxDelayMs: 20_000 };

const UNREACHABLE_ATTEMPTS = 3;
/** Tries of a call whose attempts stall (each one waits a whole timeout). */
export const STALLED_ATTEMPTS = 3;
const OUTAGE_MAX_DELAY_MS = 2000;

function isUnreachable(e: unknown): boolean {
  const err = e as { code?: string; cause?: { code?: string } };
  const code = err?.code ?? err?.cause?.code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH';
}

export function backoffMs(attempt: number, o: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs'>): number {
  const ceiling = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** What an attempt tells the policy: the access token it sent (so a refresh happens once). */
export interface Attempt {
  number: number;
  token?: string;
}

export async function withRetries<T>(route: string, fn: (attempt: Attempt) => Promise<T>, o: RetryOptions = DEFAULT_RETRY): Promise<T> {
  let refreshed = false;
  let stalls = 0;
  const now = o.nowMs ?? Date.now;
  const startedMs = now();
  for (let n = 1; ; n++) {
    const attempt: Attempt = { number: n };
    try {
      return await fn(attempt);
    } catch (raw) {
      if (o.signal?.aborted || raw instanceof LocalError) throw raw;
      const e = classify(route, raw, o.endpointLabel);
      if (e.code === 'auth_expired') {
        if (refreshed || !o.onExpired) throw e;
        refreshed = true;
        await o.onExpired(attempt.token);
        continue;
      }
      if (!e.retryable) throw e;
      if (isStall(raw)) stalls++;
      if (o.deadlineMs === undefined) {
        if (n >= o.maxAttempts) throw e;
        // Nothing listening, or no such host: a few quick tries, not a long wait on a dead endpoint.
        if (isUnreachable(raw) && n >= UNREACHABLE_ATTEMPTS) throw e;
        // Each stalled try cost a whole timeout: a few, then the command says so.
        if (stalls >= STALLED_ATTEMPTS) throw e;
      }
      const delay =
        e.opts.retryAfterMs !== undefined
          ? e.opts.retryAfterMs + Math.floor(Math.random() * Math.min(1000, e.opts.retryAfterMs / 4 + 100))
          : o.deadlineMs !== undefined
            ? backoffMs(n, { baseDelayMs: o.baseDelayMs, maxDelayMs: Math.min(o.maxDelayMs, OUTAGE_MAX_DELAY_MS) })
            : backoffMs(n, o);
      if (o.deadlineMs !== undefined && now() + delay - startedMs > o.deadlineMs) throw e;
      o.onRetry?.(e, n, delay);
      await sleep(delay, undefined, { signal: o.signal });
    }
  }
}
