/** How long a failed job waits before its next attempt. */

export const FIRST_RETRY_MAX_MS = 2_000;
export const RETRY_CAP_MS = 5 * 60_000;
/** While draining, a failed job waits at most this long (no spinning, no long waits). */
export const DRAIN_RETRY_MAX_MS = 1_000;
/** How often drain() reports progress. */
export const DRAIN_PROGRESS_MS = 1_000;

/**
 * Capped exponential backoff with jitter: attempt 1 → 1–2 s, doubling, at most 2.5–5 min.
 * Jitter keeps many failing jobs (or many mounts) from retrying in step.
 */
export function defaultRetryDelayMs(attempt: number): number {
  const ceiling = Math.min(RETRY_CAP_MS, FIRST_RETRY_MAX_MS * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}
