/**
 * An in-memory UploadPort, stepped by the test (no timers): begin() starts the oldest upload
 * whose path is free, finish() completes one (or lets it fail, or lets an aborted one land
 * anyway), drain() runs everything. It keeps the rules of upload/'s journal and worker: a newer
 * enqueue of a path supersedes its idle rows; retarget/retargetTree/cancel take effect at once
 * and detach an upload in flight ('moved' / 'cancelled'); never two uploads of one path at
 * once; the spool file is deleted when its row is gone and no upload reads it. After a file is
 * in Dropbox, the catalog is told (as app/mount.ts's afterUpload does); an upload that landed
 * although it was detached is reported as a 'stray' (the VFS removes it).
 */
import { EventEmitter } from 'node:events';
import { readFile, unlink } from 'node:fs/promises';
import type { PendingUpload, UploadPort, UploadStatus } from '../ports.js';
import type { MemoryCatalog } from './catalog.js';
import { entryOf } from './catalog.js';
import type { MemoryRemote } from './remote.js';

interface Row extends PendingUpload {
  detached?: 'cancelled' | 'moved';
  bytes?: Buffer;
}

const parentOf = (pl: string): string => pl.slice(0, Math.max(0, pl.lastIndexOf('/')));
const under = (pl: string, folderLower: string): boolean => pl === folderLower || pl.startsWith(`${folderLower}/`);

export class MemoryUploads extends EventEmitter implements UploadPort {
  private rows: Row[] = [];
  private readonly active = new Map<number, Row>();
  private seq = 0;
  /** Spool files deleted by the queue (for tests that check nothing leaks). */
  readonly unlinked: string[] = [];
  private removals: Promise<void>[] = [];

  constructor(
    private readonly remote: MemoryRemote,
    private readonly catalog: MemoryCatalog,
  ) {
    super();
  }

  private live(): Row[] {
    return this.rows.filter((r) => !r.detached);
  }

  private drop(r: Row, how: 'cancelled' | 'moved'): void {
    this.rows = this.rows.filter((x) => x !== r);
    if (this.active.has(r.id)) r.detached = how;
    else if (how === 'cancelled') this.discardSpool(r.spoolFile);
  }

  private discardSpool(file: string): void {
    const inUse = [...this.active.values()].some((a) => a.spoolFile === file && a.detached !== 'cancelled') || this.rows.some((r) => r.spoolFile === file);
    if (inUse) return;
    this.unlinked.push(file);
    this.removals.push(unlink(file).catch(() => undefined));
  }

  enqueue(path: string, spoolFile: string, size: number, baseRev?: string): PendingUpload {
    const pl = path.toLowerCase();
    for (const r of this.rows.filter((x) => x.pathLower === pl && !this.active.has(x.id))) this.drop(r, r.spoolFile === spoolFile ? 'moved' : 'cancelled');
    const row: Row = { id: ++this.seq, path, pathLower: pl, spoolFile, size, queuedAtMs: this.seq, state: 'queued', attempts: 0 };
    if (baseRev !== undefined) row.baseRev = baseRev;
    this.rows.push(row);
    return { ...row };
  }

  pending(pathLower: string): PendingUpload | undefined {
    const r = this.live().filter((x) => x.pathLower === pathLower).at(-1);
    return r && { ...r, state: this.active.has(r.id) ? 'uploading' : r.state };
  }

  pendingChildren(parentLower: string): PendingUpload[] {
    const byPath = new Map<string, PendingUpload>();
    for (const r of this.live()) if (parentOf(r.pathLower) === parentLower) byPath.set(r.pathLower, { ...r });
    return [...byPath.values()];
  }

  pendingUnder(folderLower: string): PendingUpload[] {
    const byPath = new Map<string, PendingUpload>();
    for (const r of this.live()) if (r.pathLower.startsWith(`${folderLower}/`)) byPath.set(r.pathLower, { ...r, state: this.active.has(r.id) ? 'uploading' : r.state });
    return [...byPath.values()];
  }

  private moveRows(rows: Row[], toPath: string, baseRev?: string): void {
    const newest = rows.at(-1);
    if (!newest) return;
    for (const r of rows) this.drop(r, r === newest ? 'moved' : 'cancelled');
    const tl = toPath.toLowerCase();
    for (const r of this.rows.filter((x) => x.pathLower === tl && !this.active.has(x.id))) this.drop(r, 'cancelled');
    const moved: Row = { ...newest, id: ++this.seq, path: toPath, pathLower: tl, state: 'queued', detached: undefined, bytes: undefined };
    if (baseRev === undefined) delete moved.baseRev;
    else moved.baseRev = baseRev;
    this.rows.push(moved);
  }

  retarget(fromLower: string, toPath: string, baseRev?: string): boolean {
    const rows = this.rows.filter((r) => r.pathLower === fromLower);
    if (rows.length === 0) return false;
    this.moveRows(rows, toPath, baseRev);
    return true;
  }

  retargetTree(fromLower: string, toPath: string, baseRevOf?: (fromPathLower: string, baseRev: string | undefined) => string | undefined): number {
    const groups = new Map<string, Row[]>();
    for (const r of this.rows) if (r.pathLower.startsWith(`${fromLower}/`)) groups.set(r.pathLower, [...(groups.get(r.pathLower) ?? []), r]);
    const depth = fromLower.split('/').length;
    for (const [pl, rows] of groups) {
      const base = rows.at(-1)!.baseRev;
      this.moveRows(rows, [toPath, ...rows.at(-1)!.path.split('/').slice(depth)].join('/'), baseRevOf ? baseRevOf(pl, base) : base);
    }
    return groups.size;
  }

  cancel(pathLower: string): boolean {
    const rows = this.rows.filter((r) => r.pathLower === pathLower);
    for (const r of rows) this.drop(r, 'cancelled');
    return rows.length > 0;
  }

  private readonly held = new Map<string, number>();
  private quietWaiters: { pathLower: string; resolve: () => void }[] = [];
  /**
   * Whether a hold() lets the test end the uploads in flight itself (finish()), so that a
   * rename can be seen waiting for them; by default they end at once (and land).
   */
  holdInFlight = false;

  private isHeld(pl: string): boolean {
    for (const h of this.held.keys()) if (under(pl, h)) return true;
    return false;
  }

  hold(pathLower: string): { settled: Promise<void>; release: () => void } {
    this.held.set(pathLower, (this.held.get(pathLower) ?? 0) + 1);
    const mine = (): number[] => [...this.active].filter(([, r]) => under(r.pathLower, pathLower)).map(([id]) => id);
    let settled: Promise<void>;
    if (mine().length === 0) settled = Promise.resolve();
    else if (this.holdInFlight) settled = new Promise((resolve) => this.quietWaiters.push({ pathLower, resolve }));
    else settled = Promise.resolve().then(() => mine().forEach((id) => this.finish(id, { landAnyway: this.landDetached })));
    let released = false;
    return {
      settled,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.held.get(pathLower) ?? 1) - 1;
        if (n > 0) this.held.set(pathLower, n);
        else this.held.delete(pathLower);
      },
    };
  }

  /** Starts the oldest upload whose path is free (its bytes are read now); its id, or undefined. */
  async begin(): Promise<number | undefined> {
    const busy = new Set([...this.active.values()].map((a) => a.pathLower));
    const r = this.rows.find((x) => !this.active.has(x.id) && !busy.has(x.pathLower) && !this.isHeld(x.pathLower));
    if (!r) return undefined;
    this.active.set(r.id, r);
    r.state = 'uploading';
    r.bytes = await readFile(r.spoolFile);
    return r.id;
  }

  /** An upload in flight, by id. */
  job(id: number): PendingUpload | undefined {
    const r = this.active.get(id);
    return r && { ...r };
  }

  /** Uploads in flight, oldest first. */
  inFlight(): number[] {
    return [...this.active.keys()];
  }

  /**
   * Ends an upload: it reaches Dropbox unless `fail`; a detached one reaches it only when
   * `landAnyway` (the abort came too late), and is then a stray.
   */
  finish(id: number, o: { fail?: boolean; landAnyway?: boolean } = {}): void {
    const r = this.active.get(id);
    if (!r) return;
    this.active.delete(id);
    const lands = r.detached ? o.landAnyway === true : o.fail !== true;
    if (lands) {
      const meta = this.remote.upload(r.path, r.bytes!, r.baseRev);
      if (r.detached) {
        this.emit('stray', { ...r }, meta);
      } else {
        this.catalog.upsert(entryOf(meta));
        this.rows = this.rows.filter((x) => x !== r);
        // Every newer version of the path follows from ours now (not after a conflict).
        if (meta.pathLower === r.pathLower) for (const x of this.rows) if (x.pathLower === r.pathLower) x.baseRev = meta.rev;
        this.emit('uploaded', { ...r }, meta);
      }
    } else if (!r.detached) {
      r.state = 'queued';
      r.attempts++;
    }
    r.bytes = undefined;
    // A moved row's spool lives on in the row that took it over, unless that one is gone too.
    if (!this.rows.includes(r)) this.discardSpool(r.spoolFile);
    const busy = [...this.active.values()].map((a) => a.pathLower);
    const quiet = this.quietWaiters.filter((w) => !busy.some((b) => under(b, w.pathLower)));
    this.quietWaiters = this.quietWaiters.filter((w) => !quiet.includes(w));
    for (const w of quiet) w.resolve();
  }

  /** Resolves when every spool file the queue deleted is gone from the disk. */
  async settled(): Promise<void> {
    const all = this.removals;
    this.removals = [];
    await Promise.all(all);
  }

  /**
   * Whether a detached upload that whenSettled() has to end lands anyway (the abort came too
   * late) or not: the test sets it.
   */
  landDetached = false;

  async whenSettled(pathLower: string): Promise<boolean> {
    // Nothing runs by itself here: the uploads of this path in flight end now (not within the
    // caller's synchronous step, as with the real queue).
    await Promise.resolve();
    let waited = false;
    for (const [id, r] of [...this.active]) {
      if (r.pathLower !== pathLower) continue;
      this.finish(id, { landAnyway: this.landDetached });
      waited = true;
    }
    return waited;
  }

  start(): void {}

  async drain(): Promise<void> {
    for (;;) {
      for (const id of this.inFlight()) this.finish(id);
      const id = await this.begin();
      if (id === undefined) return;
      this.finish(id);
    }
  }

  status(): UploadStatus {
    const live = this.live();
    return { files: live.length, bytes: live.reduce((s, r) => s + r.size, 0), uploadedBytesInFlight: 0, failing: [] };
  }

  async stop(): Promise<void> {}
}
