/**
 * The waiters of drain(): each resolves when the journal is empty, and rejects when every row
 * still in it has failed at least once since that drain began (offline, account full, …), so
 * that unmount can refuse to drop data and say why instead of waiting forever.
 */
import type { UploadStatus } from '../vfs/ports.js';
import { UploadError } from './errors.js';
import { DRAIN_PROGRESS_MS } from './policy.js';

interface Waiter {
  failedSince: Set<number>;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export interface DrainView {
  totals(): { files: number; bytes: number };
  ids(): number[];
  /** Is an upload of a journal row still finishing (its afterUpload, spool removal, event)? */
  finishing(): boolean;
  status(): UploadStatus;
  lastError(): string | undefined;
}

export class Drains {
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly view: DrainView) {}

  get active(): boolean {
    return this.waiters.size > 0;
  }

  /** A new waiter; `onProgress` is called now and about once a second until it settles. */
  add(onProgress?: (s: UploadStatus) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { failedSince: new Set(), resolve, reject, timer: undefined };
      if (onProgress) {
        const report = (): void => {
          try {
            onProgress(this.view.status());
          } catch {
            // a progress display that throws must not stop the drain
          }
        };
        report();
        w.timer = setInterval(report, DRAIN_PROGRESS_MS);
      }
      this.waiters.add(w);
      this.check();
    });
  }

  /** An attempt of row `id` failed. */
  noteFailure(id: number): void {
    for (const w of this.waiters) w.failedSince.add(id);
  }

  /** Settles the waiters whose outcome is known (call after any change of the journal). */
  check(): void {
    if (this.waiters.size === 0) return;
    const { files, bytes } = this.view.totals();
    if (files === 0) {
      if (!this.view.finishing()) for (const w of [...this.waiters]) this.settle(w);
      return;
    }
    const ids = this.view.ids();
    for (const w of [...this.waiters]) {
      if (ids.every((id) => w.failedSince.has(id))) {
        const last = this.view.lastError();
        this.settle(
          w,
          new UploadError(
            'drain_failed',
            `${files} file${files === 1 ? '' : 's'} (${bytes} bytes) still waiting to upload: every one failed since the drain began` +
              (last ? `; last error: ${last}` : ''),
          ),
        );
      }
    }
  }

  rejectAll(e: Error): void {
    for (const w of [...this.waiters]) this.settle(w, e);
  }

  private settle(w: Waiter, e?: Error): void {
    this.waiters.delete(w);
    if (w.timer) clearInterval(w.timer);
    if (e) w.reject(e);
    else w.resolve();
  }
}
