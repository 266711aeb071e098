/**
 * The upload journal: typed access to `sreg_uploads` (catalog/schema.ts, migration 2) with
 * statements prepared once. Every change of more than one row is one IMMEDIATE transaction.
 * `isBusy(id)` tells which rows a worker is uploading right now: those are never deleted by a
 * supersede (their upload finishes first), only detached by cancel/retarget (the caller aborts
 * the upload).
 */
import type { Database } from 'better-sqlite3';
import type { PendingUpload } from '../vfs/ports.js';
import { lowerOf, parentOf } from './paths.js';

export interface UploadRow {
  id: number;
  path: string;
  path_lower: string;
  parent_lower: string;
  spool: string;
  size: number;
  state: PendingUpload['state'];
  attempts: number;
  last_error: string | null;
  queued_at_ms: number;
  /** The remote revision the file was opened from: uploaded with mode update (null: overwrite). */
  base_rev: string | null;
}

const COLS = 'id, path, path_lower, parent_lower, spool, size, state, attempts, last_error, queued_at_ms, base_rev';

export function toPending(r: UploadRow): PendingUpload {
  const p: PendingUpload = {
    id: r.id,
    path: r.path,
    pathLower: r.path_lower,
    spoolFile: r.spool,
    size: r.size,
    queuedAtMs: r.queued_at_ms,
    state: r.state,
    attempts: r.attempts,
  };
  if (r.last_error !== null) p.lastError = r.last_error;
  if (r.base_rev !== null) p.baseRev = r.base_rev;
  return p;
}

export interface NewRow {
  path: string;
  spool: string;
  size: number;
  queuedAtMs: number;
  attempts?: number;
  baseRev?: string | null;
}

/** The rows a change removed, by what should happen to them next. */
export interface Removed {
  /** No worker holds them: their spool files can go. */
  idle: UploadRow[];
  /** A worker is uploading them: abort the upload, then remove the spool file. */
  busy: UploadRow[];
  /** A worker is uploading them but their spool file went on in a new row: abort only. */
  moved: UploadRow[];
}

export class Journal {
  private readonly s;

  constructor(private readonly db: Database) {
    this.s = {
      insert: db.prepare<{ path: string; path_lower: string; parent_lower: string; spool: string; size: number; attempts: number; queued_at_ms: number; base_rev: string | null }>(
        `INSERT INTO sreg_uploads (path, path_lower, parent_lower, spool, size, state, attempts, queued_at_ms, base_rev)
         VALUES (@path, @path_lower, @parent_lower, @spool, @size, 'queued', @attempts, @queued_at_ms, @base_rev)`,
      ),
      rebase: db.prepare<[string, string]>('UPDATE sreg_uploads SET base_rev = ? WHERE path_lower = ?'),
      byId: db.prepare<[number], UploadRow>(`SELECT ${COLS} FROM sreg_uploads WHERE id = ?`),
      byPath: db.prepare<[string], UploadRow>(`SELECT ${COLS} FROM sreg_uploads WHERE path_lower = ? ORDER BY id`),
      newest: db.prepare<[string], UploadRow>(`SELECT ${COLS} FROM sreg_uploads WHERE path_lower = ? ORDER BY id DESC LIMIT 1`),
      // The newest row of each path in a folder (the index on path_lower answers NOT EXISTS).
      children: db.prepare<[string], UploadRow>(
        `SELECT ${COLS} FROM sreg_uploads u WHERE u.parent_lower = ?
         AND NOT EXISTS (SELECT 1 FROM sreg_uploads n WHERE n.path_lower = u.path_lower AND n.id > u.id)
         ORDER BY u.path_lower`,
      ),
      // Rows strictly below a folder: path_lower in [prefix + '/', prefix + '0') ('0' follows '/').
      under: db.prepare<[string, string], UploadRow>(`SELECT ${COLS} FROM sreg_uploads WHERE path_lower >= ? AND path_lower < ? ORDER BY id`),
      oldest: db.prepare<[], UploadRow>(`SELECT ${COLS} FROM sreg_uploads ORDER BY id`),
      setState: db.prepare<[string, number]>('UPDATE sreg_uploads SET state = ? WHERE id = ?'),
      fail: db.prepare<[string, number], { attempts: number }>(
        `UPDATE sreg_uploads SET state = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ? RETURNING attempts`,
      ),
      delete: db.prepare<[number]>('DELETE FROM sreg_uploads WHERE id = ?'),
      resetUploading: db.prepare(`UPDATE sreg_uploads SET state = 'queued' WHERE state = 'uploading'`),
      shadowed: db.prepare<[], UploadRow>(
        `SELECT ${COLS} FROM sreg_uploads u
         WHERE EXISTS (SELECT 1 FROM sreg_uploads n WHERE n.path_lower = u.path_lower AND n.id > u.id)`,
      ),
      totals: db.prepare<[], { files: number; bytes: number }>('SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes FROM sreg_uploads'),
      failing: db.prepare<[], { path: string; last_error: string | null }>(
        `SELECT path, last_error FROM sreg_uploads WHERE state = 'failed' ORDER BY id`,
      ),
      ids: db.prepare<[], { id: number }>('SELECT id FROM sreg_uploads'),
      spoolRef: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM sreg_uploads WHERE spool = ? LIMIT 1'),
    };
  }

  get(id: number): UploadRow | undefined {
    return this.s.byId.get(id);
  }

  newest(pathLower: string): UploadRow | undefined {
    return this.s.newest.get(pathLower);
  }

  children(parentLower: string): UploadRow[] {
    return this.s.children.all(parentLower);
  }

  ofPath(pathLower: string): UploadRow[] {
    return this.s.byPath.all(pathLower);
  }

  under(folderLower: string): UploadRow[] {
    return this.s.under.all(`${folderLower}/`, `${folderLower}0`);
  }

  /** Oldest first; the caller must finish (or break out of) the loop before any other query. */
  oldest(): IterableIterator<UploadRow> {
    return this.s.oldest.iterate();
  }

  setState(id: number, state: PendingUpload['state']): void {
    this.s.setState.run(state, id);
  }

  /** Records a failed attempt; returns the attempts so far, or undefined if the row is gone. */
  fail(id: number, error: string): number | undefined {
    return this.s.fail.get(error, id)?.attempts;
  }

  delete(id: number): void {
    this.s.delete.run(id);
  }

  /** Every row of a path derives from revision `to` now (ours, just uploaded there). */
  rebase(pathLower: string, to: string): void {
    this.s.rebase.run(to, pathLower);
  }

  totals(): { files: number; bytes: number } {
    return this.s.totals.get() ?? { files: 0, bytes: 0 };
  }

  failing(): { path: string; error: string }[] {
    return this.s.failing.all().map((r) => ({ path: r.path, error: r.last_error ?? '' }));
  }

  ids(): number[] {
    return this.s.ids.all().map((r) => r.id);
  }

  /** Does a row refer to this spool file? (a scan: for start-up and rare checks only) */
  refersTo(spool: string): boolean {
    return this.s.spoolRef.get(spool) !== undefined;
  }

  /**
   * One transaction: removes the rows of `path`'s key that no worker holds (superseded), and
   * inserts the new one.
   */
  add(row: NewRow, isBusy: (id: number) => boolean): { row: UploadRow; removed: UploadRow[] } {
    return this.db
      .transaction(() => {
        const removed = this.supersede(lowerOf(row.path), isBusy);
        return { row: this.insert(row), removed };
      })
      .immediate();
  }

  /**
   * One transaction: `rows` (of one path, oldest first) leave it: the newest goes to `toPath`
   * as a new row (so it is the newest there too), the older ones are removed, and idle rows
   * already at `toPath` are superseded.
   */
  move(rows: UploadRow[], toPath: string, isBusy: (id: number) => boolean, baseRev: string | null): { row: UploadRow; removed: Removed } {
    return this.db.transaction(() => this.moveRows(rows, toPath, isBusy, baseRev)).immediate();
  }

  /**
   * move() for several paths at once (a folder renamed), in one transaction; each group's
   * moved row gets the base revision the group says (null: none, it uploads with overwrite).
   */
  moveMany(groups: { rows: UploadRow[]; toPath: string; baseRev: string | null }[], isBusy: (id: number) => boolean): Removed {
    return this.db
      .transaction(() => {
        const all: Removed = { idle: [], busy: [], moved: [] };
        for (const g of groups) {
          const { removed } = this.moveRows(g.rows, g.toPath, isBusy, g.baseRev);
          all.idle.push(...removed.idle);
          all.busy.push(...removed.busy);
          all.moved.push(...removed.moved);
        }
        return all;
      })
      .immediate();
  }

  /** One transaction: removes every row of a path. */
  removePath(pathLower: string, isBusy: (id: number) => boolean): Removed {
    return this.db
      .transaction(() => {
        const removed: Removed = { idle: [], busy: [], moved: [] };
        for (const r of this.s.byPath.all(pathLower)) {
          this.s.delete.run(r.id);
          (isBusy(r.id) ? removed.busy : removed.idle).push(r);
        }
        return removed;
      })
      .immediate();
  }

  /**
   * After a crash (nothing is uploading yet): rows left 'uploading' become 'queued', and of
   * several rows of one path only the newest stays. Returns the rows removed.
   */
  recover(): UploadRow[] {
    return this.db
      .transaction(() => {
        this.s.resetUploading.run();
        const shadowed = this.s.shadowed.all();
        for (const r of shadowed) this.s.delete.run(r.id);
        return shadowed;
      })
      .immediate();
  }

  private insert(row: NewRow): UploadRow {
    const pathLower = lowerOf(row.path);
    const info = this.s.insert.run({
      path: row.path,
      path_lower: pathLower,
      parent_lower: parentOf(pathLower),
      spool: row.spool,
      size: row.size,
      attempts: row.attempts ?? 0,
      queued_at_ms: row.queuedAtMs,
      base_rev: row.baseRev ?? null,
    });
    const inserted = this.s.byId.get(Number(info.lastInsertRowid));
    if (!inserted) throw new Error(`upload journal row ${String(info.lastInsertRowid)} vanished right after it was written`);
    return inserted;
  }

  private supersede(pathLower: string, isBusy: (id: number) => boolean, keep?: number): UploadRow[] {
    const removed: UploadRow[] = [];
    for (const r of this.s.byPath.all(pathLower)) {
      if (r.id === keep || isBusy(r.id)) continue;
      this.s.delete.run(r.id);
      removed.push(r);
    }
    return removed;
  }

  private moveRows(rows: UploadRow[], toPath: string, isBusy: (id: number) => boolean, baseRev: string | null): { row: UploadRow; removed: Removed } {
    const newest = rows[rows.length - 1];
    if (!newest) throw new Error('move() needs at least one row');
    const removed: Removed = { idle: [], busy: [], moved: [] };
    for (const r of rows) {
      this.s.delete.run(r.id);
      // The newest row's spool goes on in the new row: it is neither idle garbage nor cancelled.
      if (r === newest) {
        if (isBusy(r.id)) removed.moved.push(r);
      } else {
        (isBusy(r.id) ? removed.busy : removed.idle).push(r);
      }
    }
    removed.idle.push(...this.supersede(lowerOf(toPath), isBusy));
    const row = this.insert({ path: toPath, spool: newest.spool, size: newest.size, queuedAtMs: newest.queued_at_ms, baseRev });
    return { row, removed };
  }
}
