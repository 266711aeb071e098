/**
 * The uploads in flight, and everyone waiting on them: hold() (a rename or removal deciding
 * on a path), whenSettled() (a cancel or retarget wanting an aborted upload's outcome), and
 * stop() (waiting for the worker to be idle). The queue owns the worker; this module owns the
 * bookkeeping of which row each running upload holds and which paths are held.
 *
 * Invariants:
 * - `active` maps a journal row id to its one running upload; never two of one path (the
 *   worker picks only free paths, see busyPaths()).
 * - A held path (a file, or a folder and everything below) starts no upload until every
 *   hold() of it is released; the hold's `settled` resolves once nothing runs at or below it.
 * - settle(a) is the one place an upload leaves `active`; it wakes the waiters it satisfies.
 * Concurrency: one JS thread; every method is synchronous (waiters are promises resolved here).
 */
import { SINGLE_REQUEST_MAX_BYTES } from '../dropbox/upload.js';
import type { PendingUpload } from '../vfs/ports.js';
import { UploadError } from './errors.js';
import { isUnder } from './paths.js';

/** One running upload of one journal row. */
export interface Active {
  job: PendingUpload;
  controller: AbortController;
  sentBytes: number;
  /** stop() or a hold() aborted it: back to 'queued', no attempt counted. */
  stopping: boolean;
  /** Its row left the journal while it ran: cancelled (spool goes) or moved (spool lives on). */
  detached?: 'cancelled' | 'moved';
  /** In Dropbox and out of the journal; only its spool file is still being removed. */
  landed?: boolean;
}

export class InFlight {
  /** Row id → its upload, while a worker holds it. */
  private readonly active = new Map<number, Active>();
  private idleWaiters: (() => void)[] = [];
  /** Path (lower case) → callers of whenSettled() waiting for its upload in flight to end. */
  private readonly pathWaiters = new Map<string, (() => void)[]>();
  /** Paths (lower case; a file, or a folder and everything below) no upload may start at. */
  private readonly held = new Map<string, number>();
  /** hold() callers waiting for the uploads in flight at their path to end. */
  private quietWaiters: { pathLower: string; resolve: () => void }[] = [];
  /** For the journal's transactions: is a worker uploading this row? */
  readonly isBusy = (id: number): boolean => this.active.has(id);

  get size(): number {
    return this.active.size;
  }

  has(id: number): boolean {
    return this.active.has(id);
  }

  values(): IterableIterator<Active> {
    return this.active.values();
  }

  add(a: Active): void {
    this.active.set(a.job.id, a);
  }

  /** Paths (lower case) with an upload running. */
  busyPaths(): Set<string> {
    const busy = new Set<string>();
    for (const a of this.active.values()) busy.add(a.job.pathLower);
    return busy;
  }

  /** Is a journal row's upload still finishing (its afterUpload, spool removal, event)? */
  finishing(): boolean {
    return [...this.active.values()].some((a) => !a.detached);
  }

  /** Bytes sent so far by the uploads still counted in the journal. */
  sentBytes(): number {
    let n = 0;
    for (const a of this.active.values()) if (!a.detached && !a.landed) n += a.sentBytes;
    return n;
  }

  /** See UploadPort.hold; `onRelease` runs after the last release of the path (wake the worker). */
  hold(pathLower: string, onRelease: () => void): { settled: Promise<void>; release: () => void } {
    this.held.set(pathLower, (this.held.get(pathLower) ?? 0) + 1);
    for (const a of this.active.values()) {
      // A session upload commits only at its finish: aborting it is safe and quicker than waiting.
      if (isUnder(a.job.pathLower, pathLower) && !a.detached && a.job.size > SINGLE_REQUEST_MAX_BYTES) {
        a.stopping = true;
        a.controller.abort(new UploadError('stopped', `${a.job.path} is being renamed or removed`));
      }
    }
    const inFlight = (): boolean => [...this.active.values()].some((a) => isUnder(a.job.pathLower, pathLower));
    const settled = inFlight() ? new Promise<void>((resolve) => this.quietWaiters.push({ pathLower, resolve })) : Promise.resolve();
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const n = (this.held.get(pathLower) ?? 1) - 1;
      if (n > 0) this.held.set(pathLower, n);
      else this.held.delete(pathLower);
      onRelease();
    };
    return { settled, release };
  }

  isHeld(pathLower: string): boolean {
    if (this.held.size === 0) return false;
    for (const h of this.held.keys()) if (isUnder(pathLower, h)) return true;
    return false;
  }

  /** See UploadPort.whenSettled. */
  whenSettled(pathLower: string): Promise<boolean> {
    if (![...this.active.values()].some((a) => a.job.pathLower === pathLower)) return Promise.resolve(false);
    return new Promise((resolve) => this.pathWaiters.set(pathLower, [...(this.pathWaiters.get(pathLower) ?? []), () => resolve(true)]));
  }

  /** Resolves when no upload runs (at once if none does). */
  whenIdle(): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** An upload ended (whatever its outcome): it leaves `active`, and its waiters wake. */
  settle(a: Active): void {
    this.active.delete(a.job.id);
    const pl = a.job.pathLower;
    if (![...this.active.values()].some((x) => x.job.pathLower === pl)) {
      const waiters = this.pathWaiters.get(pl) ?? [];
      this.pathWaiters.delete(pl);
      for (const w of waiters) w();
    }
    if (this.quietWaiters.length > 0) {
      const busy = [...this.active.values()].map((x) => x.job.pathLower);
      const [quiet, still] = partition(this.quietWaiters, (w) => !busy.some((b) => isUnder(b, w.pathLower)));
      this.quietWaiters = still;
      for (const w of quiet) w.resolve();
    }
    if (this.active.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Every upload is aborted and goes back to 'queued' (stop()). */
  abortAll(reason: Error): void {
    for (const a of this.active.values()) {
      a.stopping = true;
      a.controller.abort(reason);
    }
  }

  /** Row `id`'s upload lost its row (cancel or retarget). */
  detach(id: number, how: 'cancelled' | 'moved'): void {
    const a = this.active.get(id);
    if (!a) return;
    a.detached = how;
    // A single-request upload commits with its one request: aborting it only makes its outcome
    // unknown (the server may still commit after the client gave up), and an unseen landing
    // is a file that comes back. It finishes, and if it landed it is a 'stray' the VFS removes.
    // A session upload commits at its finish: aborting its appends means nothing lands.
    if (a.job.size <= SINGLE_REQUEST_MAX_BYTES) return;
    a.controller.abort(new UploadError('stopped', `the upload of ${a.job.path} was ${how}`));
  }

  /** Does a running upload (other than `except`) read this spool file? */
  holdsSpool(spool: string, except?: Active): boolean {
    for (const a of this.active.values()) if (a !== except && a.job.spoolFile === spool && a.detached !== 'cancelled') return true;
    return false;
  }
}

function partition<T>(xs: T[], yes: (x: T) => boolean): [T[], T[]] {
  const a: T[] = [];
  const b: T[] = [];
  for (const x of xs) (yes(x) ? a : b).push(x);
  return [a, b];
}
