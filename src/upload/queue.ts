/**
 * UploadQueue: the write-back queue (see index.ts for its invariants and concurrency rules):
 * the UploadPort calls on the journal (journal.ts), and the worker that picks rows and uploads
 * them. Which rows are uploading, the held paths and their waiters are inflight.ts's.
 * Lock order: none; everything runs on the event loop, the journal is the only shared state
 * and every change to it is one synchronous transaction.
 */
import { EventEmitter } from 'node:events';
import type { Database } from 'better-sqlite3';
import type { DropboxClient, FileMeta } from '../dropbox/client.js';
import type { PendingUpload, UploadPort, UploadStatus } from '../vfs/ports.js';
import { Drains } from './drain.js';
import { UploadError } from './errors.js';
import { InFlight, type Active } from './inflight.js';
import { Journal, toPending, type Removed, type UploadRow } from './journal.js';
import { checkFilePath, describeError, insideDir, rebase } from './paths.js';
import { defaultRetryDelayMs, DRAIN_RETRY_MAX_MS } from './policy.js';
import { removeOrphans, unlinkQuiet } from './spool.js';

/** After the journal itself fails (SQLITE_BUSY past the timeout, disk full), the worker waits this long. */
const DB_RETRY_MS = 1_000;

export interface UploadQueueOptions {
  /** The `sregistry.db` connection (RegistryDb.sqlite), migrated to version 2 or later. */
  db: Database;
  /** Where spool files live; enqueue() refuses files elsewhere; start() removes orphans here. */
  spoolDir: string;
  client: Pick<DropboxClient, 'upload'>;
  /** Files uploaded at once (each may use several connections of the client). Default 2. */
  concurrency?: number;
  /**
   * Called after a file is in Dropbox and awaited before its journal row and spool file are
   * deleted (a crash in between uploads it again: harmless with mode overwrite). It must not
   * move or delete `job.spoolFile` (hard-link or copy it): the queue deletes it afterwards. If
   * it throws, the error is logged and the job still counts as uploaded (the bytes are there).
   */
  afterUpload?: (job: PendingUpload, meta: FileMeta) => Promise<void>;
  log?: (line: string) => void;
  nowMs?: () => number;
  /** Wait between failed attempts of one job (attempt = failures so far, from 1). */
  retryDelayMs?: (attempt: number) => number;
}

/** The events, for listeners' types. */
export interface UploadQueueEvents {
  /** The file is in Dropbox (after afterUpload). */
  uploaded: [job: PendingUpload, meta: FileMeta];
  /** An attempt failed; the job is retried after its delay. */
  failed: [job: PendingUpload, error: Error];
  /** A job cancelled or renamed mid-upload reached Dropbox anyway, at `job.path`. */
  stray: [job: PendingUpload, meta: FileMeta];
}

export class UploadQueue extends EventEmitter implements UploadPort {
  private readonly journal: Journal;
  private readonly spoolDir: string;
  private readonly client: Pick<DropboxClient, 'upload'>;
  private readonly concurrency: number;
  private readonly afterUpload: UploadQueueOptions['afterUpload'];
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  private readonly retryDelayMs: (attempt: number) => number;
  private readonly drains: Drains;
  /** The uploads running now, the held paths and their waiters. */
  private readonly active = new InFlight();
  /** Row id → earliest next attempt (ms, `nowMs` clock), for rows whose last attempt failed. */
  private readonly notBefore = new Map<number, number>();
  private running = false;
  private stopped = false;
  private recovered = false;
  private startup: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private kickScheduled = false;
  private lastError: string | undefined;
  private readonly isBusy = this.active.isBusy;

  constructor(o: UploadQueueOptions) {
    super();
    const concurrency = o.concurrency ?? 2;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a whole number ≥ 1, not ${concurrency}`);
    this.journal = new Journal(o.db);
    this.spoolDir = o.spoolDir;
    this.client = o.client;
    this.concurrency = concurrency;
    this.afterUpload = o.afterUpload;
    this.log = o.log ?? (() => undefined);
    this.now = o.nowMs ?? Date.now;
    this.retryDelayMs = o.retryDelayMs ?? defaultRetryDelayMs;
    this.drains = new Drains({
      totals: () => this.journal.totals(),
      ids: () => this.journal.ids(),
      finishing: () => this.active.finishing(),
      status: () => this.status(),
      lastError: () => this.lastError,
    });
  }

  enqueue(path: string, spoolFile: string, size: number, baseRev?: string): PendingUpload {
    checkFilePath(path);
    const spool = insideDir(this.spoolDir, spoolFile);
    if (!Number.isSafeInteger(size) || size < 0) throw new UploadError('bad_spool', `bad size ${size} for ${path}`);
    const { row, removed } = this.journal.add({ path, spool, size, queuedAtMs: this.now(), baseRev }, this.isBusy);
    this.discard(removed.filter((r) => r.spool !== spool));
    this.kick();
    return toPending(row);
  }

  pending(pathLower: string): PendingUpload | undefined {
    const r = this.journal.newest(pathLower);
    return r && toPending(r);
  }

  pendingChildren(parentLower: string): PendingUpload[] {
    return this.journal.children(parentLower).map(toPending);
  }

  pendingUnder(folderLower: string): PendingUpload[] {
    const newest = new Map<string, PendingUpload>();
    for (const r of this.journal.under(folderLower)) newest.set(r.path_lower, { ...toPending(r), state: this.active.has(r.id) ? 'uploading' : toPending(r).state });
    return [...newest.values()];
  }

  retarget(fromLower: string, toPath: string, baseRev?: string): boolean {
    checkFilePath(toPath);
    const rows = this.journal.ofPath(fromLower);
    if (rows.length === 0) return false;
    for (const r of rows) this.notBefore.delete(r.id);
    const { removed } = this.journal.move(rows, toPath, this.isBusy, baseRev ?? null);
    this.afterRemoval(removed);
    this.log(`upload: ${rows[rows.length - 1]?.path} renamed to ${toPath} before its upload`);
    this.kick();
    return true;
  }

  retargetTree(fromLower: string, toPath: string, baseRevOf?: (fromPathLower: string, baseRev: string | undefined) => string | undefined): number {
    checkFilePath(toPath);
    const byPath = new Map<string, UploadRow[]>();
    for (const r of this.journal.under(fromLower)) {
      this.notBefore.delete(r.id);
      const list = byPath.get(r.path_lower);
      if (list) list.push(r);
      else byPath.set(r.path_lower, [r]);
    }
    if (byPath.size === 0) return 0;
    const groups = [...byPath.entries()].map(([pl, rows]) => {
      const base = rows[rows.length - 1]?.base_rev ?? undefined;
      return { rows, toPath: rebase(rows[rows.length - 1]?.path ?? '', fromLower, toPath), baseRev: (baseRevOf ? baseRevOf(pl, base) : base) ?? null };
    });
    this.afterRemoval(this.journal.moveMany(groups, this.isBusy));
    this.kick();
    return groups.length;
  }

  cancel(pathLower: string): boolean {
    const removed = this.journal.removePath(pathLower, this.isBusy);
    if (removed.idle.length + removed.busy.length === 0) return false;
    this.afterRemoval(removed);
    this.kick();
    return true;
  }

  hold(pathLower: string): { settled: Promise<void>; release: () => void } {
    return this.active.hold(pathLower, () => this.kick());
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopped = false;
    if (!this.recovered) {
      this.recovered = true;
      const startedAtMs = Date.now();
      // Nothing of ours is uploading yet: 'uploading' rows are a crashed run's.
      const shadowed = this.journal.recover();
      for (const r of shadowed) this.log(`upload: ${r.path}: an older pending version is superseded by a newer one`);
      const { files, bytes } = this.journal.totals();
      if (files > 0) this.log(`upload: resuming ${files} pending upload(s), ${bytes} bytes`);
      this.startup = (async () => {
        for (const r of shadowed) if (!this.journal.refersTo(r.spool)) await unlinkQuiet(r.spool, this.log);
        const n = await removeOrphans(this.spoolDir, startedAtMs, (f) => this.journal.refersTo(f) || this.active.holdsSpool(f), this.log);
        if (n > 0) this.log(`upload: removed ${n} spool file(s) that no pending upload refers to`);
      })().catch((e: unknown) => this.log(`upload: start-up clean-up failed: ${describeError(e)}`));
    }
    this.kick();
  }

  /** Resolves when start()'s clean-up of the spool folder is done. */
  whenStarted(): Promise<void> {
    return this.startup;
  }

  /**
   * Resolves when the journal is empty (starting the worker if start() was not called);
   * rejects with `drain_failed` (the journal intact) once every pending job has failed since
   * this call, or with `stopped` if stop() is called meanwhile.
   */
  drain(onProgress?: (s: UploadStatus) => void): Promise<void> {
    if (this.stopped) return Promise.reject(new UploadError('stopped', 'the upload queue is stopped'));
    this.start();
    // Failed jobs do not sit out their delay while someone waits for them.
    this.notBefore.clear();
    const done = this.drains.add(onProgress);
    this.kick();
    return done;
  }

  status(): UploadStatus {
    const { files, bytes } = this.journal.totals();
    return { files, bytes, uploadedBytesInFlight: this.active.sentBytes(), failing: this.journal.failing() };
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopped = true;
    this.clearTimer();
    this.active.abortAll(new UploadError('stopped', 'the upload queue is stopping'));
    this.drains.rejectAll(new UploadError('stopped', 'the upload queue was stopped; the journal keeps what is left'));
    await this.active.whenIdle();
  }

  // ---- the worker -------------------------------------------------------------------------

  /** Picks work and settles drains soon, outside the caller's stack (enqueue stays cheap). */
  private kick(): void {
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      try {
        this.pump();
        this.drains.check();
      } catch (e) {
        // The database refused (locked for too long, disk full): never crash the mount for it.
        this.log(`upload: the journal failed, trying again in ${DB_RETRY_MS / 1000} s: ${describeError(e)}`);
        setTimeout(() => this.kick(), DB_RETRY_MS).unref();
      }
    });
  }

  private pump(): void {
    if (!this.running) return;
    while (this.active.size < this.concurrency) {
      const row = this.next();
      if (!row) break;
      this.launch(row);
    }
    this.armTimer();
  }

  /** The oldest row that is not uploading, whose path is free and whose retry time has come. */
  private next(): UploadRow | undefined {
    const busyPaths = this.active.busyPaths();
    const now = this.now();
    for (const row of this.journal.oldest()) {
      if (this.active.has(row.id) || busyPaths.has(row.path_lower) || this.active.isHeld(row.path_lower)) continue;
      const at = this.notBefore.get(row.id);
      if (at !== undefined && at > now) continue;
      return row; // leaving the loop closes the statement's iterator
    }
    return undefined;
  }

  private launch(row: UploadRow): void {
    this.journal.setState(row.id, 'uploading');
    this.notBefore.delete(row.id);
    const a: Active = { job: toPending({ ...row, state: 'uploading' }), controller: new AbortController(), sentBytes: 0, stopping: false };
    this.active.add(a);
    void this.attempt(a)
      .catch((e: unknown) => this.log(`upload: internal error on ${a.job.path}: ${describeError(e)}`))
      .finally(() => this.settled(a));
  }

  private async attempt(a: Active): Promise<void> {
    const { job } = a;
    let meta: FileMeta;
    try {
      meta = await this.client.upload(
        job.spoolFile,
        job.size,
        // Opened from a known revision: an update of it, so a change made elsewhere meanwhile
        // is kept (Dropbox saves ours as a conflicted copy next to it). A new file: overwrite.
        job.baseRev ? { path: job.path, mode: { update: job.baseRev }, autorename: true } : { path: job.path, mode: 'overwrite' },
        { onBytes: (n) => void (a.sentBytes = Math.max(0, a.sentBytes + n)), signal: a.controller.signal },
      );
    } catch (e) {
      await this.attemptFailed(a, e);
      return;
    }
    if (a.detached) {
      // The abort came too late: the bytes are in Dropbox under the old name.
      this.log(`upload: ${job.path} reached Dropbox although it was ${a.detached === 'moved' ? 'renamed' : 'deleted'} meanwhile`);
      this.emitSafe('stray', job, meta);
      await this.dropDetachedSpool(a);
      return;
    }
    if (this.afterUpload) {
      try {
        await this.afterUpload(job, meta);
      } catch (e) {
        this.log(`upload: ${job.path} is in Dropbox, but recording it failed: ${describeError(e)}`);
      }
    }
    const conflicted = meta.pathLower !== job.pathLower;
    if (!a.detached) {
      this.journal.delete(job.id);
      // Dropbox holds ours now: every newer local version of the path follows from it (between
      // this mount's own versions the last close wins, as before).
      if (!conflicted) this.journal.rebase(job.pathLower, meta.rev);
    }
    if (conflicted) {
      this.log(`upload: ${job.path} was changed in Dropbox since it was opened (rev ${job.baseRev}): both are kept, ours as ${meta.pathDisplay} (${job.size} bytes, rev ${meta.rev})`);
    } else {
      this.log(`upload: ${job.path} uploaded (${job.size} bytes, rev ${meta.rev})`);
    }
    // In the same step as the journal's rebase: a writer that closes meanwhile must not journal
    // the base it had before (its upload would conflict with ours). The spool goes after.
    a.landed = true;
    this.emitSafe('uploaded', job, meta);
    if (a.detached !== 'moved') await unlinkQuiet(job.spoolFile, this.log);
  }

  private async attemptFailed(a: Active, e: unknown): Promise<void> {
    const { job } = a;
    if (a.detached) {
      await this.dropDetachedSpool(a);
      return;
    }
    if (a.stopping) {
      this.journal.setState(job.id, 'queued');
      return;
    }
    const msg = describeError(e);
    const attempts = this.journal.fail(job.id, msg);
    if (attempts === undefined) return;
    this.lastError = `${job.path}: ${msg}`;
    let delayMs = Math.max(0, this.retryDelayMs(attempts));
    if (this.drains.active) delayMs = Math.min(delayMs, DRAIN_RETRY_MAX_MS);
    this.notBefore.set(job.id, this.now() + delayMs);
    this.drains.noteFailure(job.id);
    this.log(`upload: ${job.path} failed (attempt ${attempts}); next try in ${Math.ceil(delayMs / 1000)} s: ${msg}`);
    this.emitSafe('failed', { ...job, state: 'failed', attempts, lastError: msg }, e instanceof Error ? e : new Error(msg));
  }

  whenSettled(pathLower: string): Promise<boolean> {
    return this.active.whenSettled(pathLower);
  }

  private settled(a: Active): void {
    this.active.settle(a);
    this.kick();
  }

  /** Wakes the worker when the soonest retry is due (only if a slot is free to take it). */
  private armTimer(): void {
    this.clearTimer();
    if (!this.running || this.active.size >= this.concurrency) return;
    const now = this.now();
    let soonest = Infinity;
    // Rows already due but not picked wait on a busy path: its end kicks the worker.
    for (const at of this.notBefore.values()) if (at > now && at < soonest) soonest = at;
    if (soonest === Infinity) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, soonest - now);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  // ---- removals -----------------------------------------------------------------------------

  private afterRemoval(removed: Removed): void {
    this.discard(removed.idle);
    for (const r of removed.busy) this.active.detach(r.id, 'cancelled');
    for (const r of removed.moved) this.active.detach(r.id, 'moved');
  }

  /** Rows gone from the journal that no worker holds: their spool files go (after the commit). */
  private discard(rows: UploadRow[]): void {
    for (const r of rows) {
      this.notBefore.delete(r.id);
      if (!this.active.holdsSpool(r.spool)) void unlinkQuiet(r.spool, this.log);
    }
  }

  /**
   * A detached upload ended: its spool goes if cancelled, and also if it was moved but the row
   * that took it over is gone meanwhile (superseded or cancelled while this upload held the file).
   */
  private async dropDetachedSpool(a: Active): Promise<void> {
    const spool = a.job.spoolFile;
    if (a.detached === 'cancelled' || (!this.journal.refersTo(spool) && !this.active.holdsSpool(spool, a))) await unlinkQuiet(spool, this.log);
  }

  private emitSafe<K extends keyof UploadQueueEvents>(event: K, ...args: UploadQueueEvents[K]): void {
    try {
      this.emit(event, ...args);
    } catch (e) {
      this.log(`upload: a listener of '${event}' threw: ${describeError(e)}`);
    }
  }
}
