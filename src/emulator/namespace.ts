/**
 * The app folder's namespace: entries (files and folders) keyed by `path_lower`, the change
 * journal that cursors replay, and the file bytes under `<root>/files/<blob>`.
 *
 * Invariants
 * - Every change to `entries` appends journal rows in the same SQLite transaction; a folder
 *   delete is one `deleted` row for its top; a move is `deleted(from)` then the moved subtree.
 * - Blobs are immutable: a new revision gets a new blob; copies hard-link; a blob is unlinked
 *   only after the transaction that stopped referring to it has committed.
 * - Methods here are synchronous (better-sqlite3) and touch no network; callers stream bytes.
 * Concurrency: one JS thread; each change is one SQLite transaction, and listeners hear of it
 * ('change', 'deleted') only after it committed. The row types are entries.ts's.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { linkSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { folderRow, newId, toMetadata, wholeSeconds, type CommitArgs, type CommitResult, type EntryRow, type Scope } from './entries.js';
import { conflict, lookupFailed, RelocationError, writeFailed, type Json, type Tagged } from './errors.js';
import { baseName, checkWritablePath, components, lower, parentOf } from './paths.js';

/** Older revisions kept per file (the newest ones); older blobs are deleted. */
const KEPT_REVISIONS = 10;

export class Namespace extends EventEmitter {
  private readonly st;
  private revCounter = 0;

  constructor(
    private readonly db: Database.Database,
    readonly filesDir: string,
    private readonly nowMs: () => number,
    private readonly quotaBytes: () => number,
  ) {
    super();
    this.setMaxListeners(0);
    this.st = {
      get: db.prepare('SELECT * FROM entries WHERE path_lower = ?'),
      byId: db.prepare('SELECT * FROM entries WHERE id = ?'),
      byRev: db.prepare('SELECT * FROM entries WHERE rev = ?'),
      insert: db.prepare(`INSERT INTO entries (path_lower, parent_lower, path_display, name, id, is_folder, rev, size,
        content_hash, client_modified, server_modified, blob) VALUES (@path_lower, @parent_lower, @path_display, @name,
        @id, @is_folder, @rev, @size, @content_hash, @client_modified, @server_modified, @blob)`),
      remove: db.prepare('DELETE FROM entries WHERE path_lower = ?'),
      subtree: db.prepare('SELECT * FROM entries WHERE path_lower > ? AND path_lower < ? ORDER BY path_lower'),
      children: db.prepare('SELECT * FROM entries WHERE parent_lower = ? AND path_lower > ? ORDER BY path_lower LIMIT ?'),
      subtreePage: db.prepare('SELECT * FROM entries WHERE path_lower > ? AND path_lower < ? ORDER BY path_lower LIMIT ?'),
      allPage: db.prepare('SELECT * FROM entries WHERE path_lower > ? ORDER BY path_lower LIMIT ?'),
      journal: db.prepare('INSERT INTO journal (path_lower, parent_lower, entry) VALUES (?, ?, ?)'),
      latestSeq: db.prepare("SELECT COALESCE(MAX(seq), 0) AS seq FROM journal"),
      lastJournal: db.prepare('SELECT entry FROM journal WHERE path_lower = ? ORDER BY seq DESC LIMIT 1'),
      changesAll: db.prepare('SELECT seq, entry FROM journal WHERE seq > ? ORDER BY seq LIMIT ?'),
      changesUnder: db.prepare(`SELECT seq, entry FROM journal WHERE seq > ? AND (path_lower = ? OR (path_lower > ? AND path_lower < ?))
        ORDER BY seq LIMIT ?`),
      changesChildren: db.prepare('SELECT seq, entry FROM journal WHERE seq > ? AND parent_lower = ? ORDER BY seq LIMIT ?'),
      used: db.prepare('SELECT COALESCE(SUM(size), 0) AS used FROM entries WHERE is_folder = 0'),
      oldRev: db.prepare('SELECT entry FROM revisions WHERE rev = ?'),
      oldRevs: db.prepare('SELECT entry FROM revisions WHERE file_id = ? ORDER BY retired_at DESC, rowid DESC'),
      retire: db.prepare('INSERT OR REPLACE INTO revisions (rev, file_id, blob, entry, retired_at) VALUES (?, ?, ?, ?, ?)'),
      surplus: db.prepare('SELECT rev, blob FROM revisions WHERE file_id = ? ORDER BY retired_at DESC, rowid DESC LIMIT -1 OFFSET ?'),
      dropRev: db.prepare('DELETE FROM revisions WHERE rev = ?'),
      blobUsed: db.prepare('SELECT (SELECT COUNT(*) FROM entries WHERE blob = @b) + (SELECT COUNT(*) FROM revisions WHERE blob = @b) AS n'),
    };
  }

  blobPath(blob: string): string {
    return path.join(this.filesDir, blob);
  }

  newBlobName(): string {
    return randomBytes(16).toString('hex');
  }

  get(pathLower: string): EntryRow | undefined {
    return this.st.get.get(pathLower) as EntryRow | undefined;
  }

  /** Resolves a read path (`/p`, `id:…`, `rev:…`) or throws a LookupError. */
  resolve(p: string): EntryRow {
    let row: EntryRow | undefined;
    if (p.startsWith('id:')) row = this.st.byId.get(p) as EntryRow | undefined;
    else if (p.startsWith('rev:')) {
      row = this.st.byRev.get(p.slice(4)) as EntryRow | undefined;
      const old = row ? undefined : (this.st.oldRev.get(p.slice(4)) as { entry: string } | undefined);
      if (old) row = JSON.parse(old.entry) as EntryRow;
    }
    else if (p.startsWith('ns:')) throw lookupFailed('not_found');
    else {
      components(p);
      row = this.get(lower(p));
    }
    if (!row) throw lookupFailed('not_found');
    return row;
  }

  /** The kept older revisions of a file id, newest first. */
  revisions(fileId: string): EntryRow[] {
    return (this.st.oldRevs.all(fileId) as { entry: string }[]).map((r) => JSON.parse(r.entry) as EntryRow);
  }

  /** The `deleted` metadata of a path whose last change was a delete, if any. */
  deletedEntry(p: string): Json | undefined {
    const row = this.st.lastJournal.get(lower(p)) as { entry: string } | undefined;
    if (!row) return undefined;
    const entry = JSON.parse(row.entry) as Tagged;
    return entry['.tag'] === 'deleted' ? entry : undefined;
  }

  usedBytes(): number {
    return (this.st.used.get() as { used: number }).used;
  }

  latestSeq(): number {
    return (this.st.latestSeq.get() as { seq: number }).seq;
  }

  /** One page of a listing, in `path_lower` order, after `afterKey`. */
  listPage(scope: Scope, afterKey: string, limit: number): EntryRow[] {
    const { pathLower: p, recursive } = scope;
    if (!recursive) return this.st.children.all(p, afterKey, limit) as EntryRow[];
    if (p === '') return this.st.allPage.all(afterKey, limit) as EntryRow[];
    // A recursive listing of a folder includes the folder's own entry, first.
    const rows: EntryRow[] = [];
    if (afterKey < p) {
      const self = this.get(p);
      if (self) rows.push(self);
    }
    const from = afterKey > `${p}/` ? afterKey : `${p}/`;
    return rows.concat(this.st.subtreePage.all(from, `${p}0`, limit - rows.length) as EntryRow[]);
  }

  /** Journal rows after `seq` within the scope, oldest first. */
  changesSince(scope: Scope, seq: number, limit: number): { seq: number; entry: Json }[] {
    const { pathLower: p, recursive } = scope;
    const rows = (
      !recursive
        ? this.st.changesChildren.all(seq, p, limit)
        : p === ''
          ? this.st.changesAll.all(seq, limit)
          : this.st.changesUnder.all(seq, p, `${p}/`, `${p}0`, limit)
    ) as { seq: number; entry: string }[];
    return rows.map((r) => ({ seq: r.seq, entry: JSON.parse(r.entry) as Json }));
  }

  // ---- writes ----------------------------------------------------------------------------

  private nextRev(): string {
    this.revCounter = (this.revCounter + 1) % 0x10000;
    return `${Math.floor(this.nowMs() / 1000).toString(16)}${this.revCounter.toString(16).padStart(4, '0')}${randomBytes(3).toString('hex')}`;
  }

  private record(row: EntryRow | { deleted: EntryRow }): void {
    if ('deleted' in row) {
      const d = row.deleted;
      const entry = { '.tag': 'deleted', name: d.name, path_lower: d.path_lower, path_display: d.path_display };
      this.st.journal.run(d.path_lower, d.parent_lower, JSON.stringify(entry));
    } else {
      this.st.journal.run(row.path_lower, row.parent_lower, JSON.stringify(toMetadata(row, true)));
    }
  }

  /**
   * Keeps a replaced or deleted file's revision (so `rev:` still reads it) and returns the
   * blobs that no entry or kept revision refers to any more, for the caller to unlink.
   */
  private retire(rows: EntryRow[]): string[] {
    const released: string[] = [];
    for (const e of rows) {
      if (e.is_folder || !e.rev || !e.blob) continue;
      this.st.retire.run(e.rev, e.id, e.blob, JSON.stringify(e), this.nowMs());
      for (const old of this.st.surplus.all(e.id, KEPT_REVISIONS) as { rev: string; blob: string }[]) {
        this.st.dropRev.run(old.rev);
        released.push(old.blob);
      }
    }
    return released.filter((b) => (this.st.blobUsed.get({ b }) as { n: number }).n === 0);
  }

  private changed(): void {
    this.emit('change');
  }

  /** Creates missing ancestor folders of `parts` (display case from the path given). */
  private ensureParents(parts: string[]): void {
    let display = '';
    for (const part of parts.slice(0, -1)) {
      display = `${display}/${part}`;
      const existing = this.get(lower(display));
      if (existing) {
        if (!existing.is_folder) throw writeFailed(conflict('file_ancestor'));
        display = existing.path_display;
        continue;
      }
      this.insert(folderRow(display));
    }
  }

  private insert(row: EntryRow): void {
    this.st.insert.run(row);
    this.record(row);
  }

  /** A free name for autorename: "name (1).ext", "name (2).ext", … */
  private freeName(p: string, suffix: (n: number) => string): string {
    const parent = p.slice(0, p.lastIndexOf('/'));
    const name = baseName(p);
    const dot = name.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
    for (let n = 1; ; n++) {
      const candidate = `${parent}/${stem} ${suffix(n)}${ext}`;
      if (!this.get(lower(candidate))) return candidate;
    }
  }

  commitFile(a: CommitArgs): CommitResult {
    return this.db.transaction((): CommitResult => {
      let p = a.path;
      let parts = checkWritablePath(p);
      this.ensureParentsCheckOnly(parts);
      let existing = this.get(lower(p));
      const same = existing && !existing.is_folder && existing.content_hash === a.contentHash && existing.size === a.size;
      // Identical content: nothing is written and the existing metadata comes back (§5.4 rule 3).
      if (existing && same && !a.strictConflict) return { entry: existing, wrote: false, released: [] };
      if (existing?.is_folder) {
        if (!a.autorename) throw writeFailed(conflict('folder'));
        p = this.freeName(p, (n) => `(${n})`);
      } else if (existing) {
        const mode = a.mode;
        const revMatches = mode['.tag'] === 'update' && mode.update === existing.rev;
        if (mode['.tag'] === 'add' || (mode['.tag'] === 'update' && !revMatches)) {
          if (!a.autorename) throw writeFailed(conflict('file'));
          p = this.freeName(p, (n) => (mode['.tag'] === 'update' ? `(conflicted copy${n > 1 ? ` ${n}` : ''})` : `(${n})`));
        }
      } else if (a.mode['.tag'] === 'update' && a.strictConflict) {
        throw writeFailed(conflict('file'));
      }
      parts = components(p);
      existing = this.get(lower(p));
      const used = this.usedBytes() - (existing?.size ?? 0) + a.size;
      if (used > this.quotaBytes()) throw writeFailed({ '.tag': 'insufficient_space' });
      this.ensureParents(parts);
      const parentDisplay = parentDisplayOf(this, p);
      const now = wholeSeconds(this.nowMs());
      const row: EntryRow = {
        path_lower: lower(p),
        parent_lower: parentOf(lower(p)),
        path_display: `${parentDisplay}/${baseName(p)}`,
        name: baseName(p),
        id: existing?.id ?? newId(),
        is_folder: 0,
        rev: this.nextRev(),
        size: a.size,
        content_hash: a.contentHash,
        client_modified: a.clientModified ?? now,
        server_modified: now,
        blob: a.blob,
      };
      if (existing) this.st.remove.run(existing.path_lower);
      this.insert(row);
      return { entry: row, wrote: true, released: existing ? this.retire([existing]) : [] };
    })();
  }

  /** Fails with file_ancestor when an ancestor is a file, without creating anything. */
  private ensureParentsCheckOnly(parts: string[]): void {
    let p = '';
    for (const part of parts.slice(0, -1)) {
      p = `${p}/${lower(part)}`;
      const e = this.get(p);
      if (e && !e.is_folder) throw writeFailed(conflict('file_ancestor'));
      if (!e) return;
    }
  }

  createFolder(p: string, autorename: boolean): EntryRow {
    const row = this.db.transaction((): EntryRow => {
      let target = p;
      const parts = checkWritablePath(target);
      this.ensureParentsCheckOnly(parts);
      const existing = this.get(lower(target));
      if (existing) {
        if (!autorename) throw writeFailed(conflict(existing.is_folder ? 'folder' : 'file'));
        target = this.freeName(target, (n) => `(${n})`);
      }
      this.ensureParents(components(target));
      const created = folderRow(`${parentDisplayOf(this, target)}/${baseName(target)}`);
      this.insert(created);
      return created;
    })();
    this.changed();
    return row;
  }

  /** Deletes a file or a folder and its subtree; returns the top entry as it was. */
  delete(p: string, parentRev?: string): { entry: EntryRow; released: string[] } {
    const result = this.db.transaction(() => {
      const top = this.resolveForWrite(p);
      if (parentRev !== undefined && (top.is_folder || top.rev !== parentRev)) throw writeFailed(conflict('file'));
      const doomed = [top, ...(top.is_folder ? (this.st.subtree.all(`${top.path_lower}/`, `${top.path_lower}0`) as EntryRow[]) : [])];
      for (const e of doomed) this.st.remove.run(e.path_lower);
      this.record({ deleted: top });
      return { entry: top, released: this.retire(doomed), ids: doomed.map((e) => e.id) };
    })();
    this.emit('deleted', result.ids);
    this.changed();
    return result;
  }

  private resolveForWrite(p: string): EntryRow {
    if (p.startsWith('id:')) return this.resolve(p);
    components(p);
    const row = this.get(lower(p));
    if (!row) throw lookupFailed('not_found');
    return row;
  }

  /**
   * move_v2 / copy_v2. Errors carry where they belong: `from` lookups as LookupError,
   * destination problems as WriteError (`to`), plus the relocation-specific tags.
   */
  relocate(from: string, to: string, autorename: boolean, copy: boolean): EntryRow {
    const result = this.db.transaction(() => {
      const src = this.resolveForWrite(from);
      let dest = to;
      checkWritablePath(dest);
      const destLower = lower(dest);
      // A case-only rename is not supported by move_v2 (spec note): the target "exists".
      if (destLower === src.path_lower && dest === src.path_display) throw new RelocationError('duplicated_or_nested_paths');
      if (destLower.startsWith(`${src.path_lower}/`)) throw new RelocationError('cant_move_folder_into_itself');
      this.ensureParentsCheckOnly(components(dest));
      const existing = this.get(destLower);
      if (existing) {
        if (!autorename) throw writeFailed(conflict(existing.is_folder ? 'folder' : 'file'));
        dest = this.freeName(dest, (n) => `(${n})`);
      }
      this.ensureParents(components(dest));
      const newTop = `${parentDisplayOf(this, dest)}/${baseName(dest)}`;
      const moved = [src, ...(src.is_folder ? (this.st.subtree.all(`${src.path_lower}/`, `${src.path_lower}0`) as EntryRow[]) : [])];
      if (!copy) {
        for (const e of moved) this.st.remove.run(e.path_lower);
        this.record({ deleted: src });
        // A moved file gets a new rev; the one it had stays readable as `rev:…`, as a replaced
        // file's does (a reader that opened it before the move reads on). Its blob stays in use.
        this.retire(moved);
      }
      let topRow: EntryRow | undefined;
      for (const e of moved) {
        const display = newTop + e.path_display.slice(src.path_display.length);
        const row: EntryRow = {
          ...e,
          path_display: display,
          path_lower: lower(display),
          parent_lower: parentOf(lower(display)),
          name: baseName(display),
          id: copy ? newId() : e.id,
          rev: e.is_folder ? null : this.nextRev(),
          server_modified: e.is_folder ? null : copy ? wholeSeconds(this.nowMs()) : e.server_modified,
          blob: e.blob && copy ? this.newBlobName() : e.blob,
        };
        // Blobs are immutable, so a copy shares bytes through a hard link (a metadata-only syscall).
        if (copy && e.blob && row.blob) linkSync(this.blobPath(e.blob), this.blobPath(row.blob));
        this.insert(row);
        topRow ??= row;
      }
      return topRow!;
    })();
    this.changed();
    return result;
  }

  /** Called after a commitFile that wrote: tells longpolls. */
  notify(): void {
    this.changed();
  }
}

function parentDisplayOf(ns: Namespace, p: string): string {
  const parentLower = parentOf(lower(p));
  if (parentLower === '') return '';
  return ns.get(parentLower)?.path_display ?? p.slice(0, p.lastIndexOf('/'));
}

