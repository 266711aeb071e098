/**
 * `RegistryDb`: the local `sregistry.db`, read and written the way the Python client's
 * `sregistry/database/sqlite.py` does (get/add/images/rm), on tables it can still read.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { CatalogError } from './errors.js';
import { migrate } from './migrate.js';
import { pythonJsonDumps } from './pyjson.js';
import type { CollectionRecord, ContainerRecord, ImageRef, UpsertContainer } from './types.js';

export const DB_FILE_NAME = 'sregistry.db';
export const DEFAULT_CLIENT = 'dropbox';
/** How long a statement waits for another writer (the Python client, another sreg) to finish. */
const BUSY_TIMEOUT_MS = 5000;

interface ContainerRow {
  id: number;
  collection_id: number;
  collection: string;
  name: string;
  tag: string;
  image: string | null;
  url: string | null;
  uri: string | null;
  client: string;
  version: string | null;
  created_at: string | number | null;
  metrics: string;
}

const SELECT_CONTAINER = `SELECT c.id, c.collection_id, col.name AS collection, c.name, c.tag, c.image, c.url,
  c.uri, c.client, c.version, c.created_at, c.metrics
  FROM container c JOIN collection col ON col.id = c.collection_id`;

function parseMetrics(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function toRecord(row: ContainerRow): ContainerRecord {
  return {
    id: row.id,
    collectionId: row.collection_id,
    collection: row.collection,
    name: row.name,
    tag: row.tag,
    image: row.image,
    url: row.url,
    uri: row.uri,
    client: row.client,
    version: row.version,
    createdAt: row.created_at === null ? null : String(row.created_at),
    metrics: parseMetrics(row.metrics),
  };
}

/** Python's `dict.update`: the new keys over the old object (when the old one is an object). */
function mergeMetrics(old: unknown, update: object): object {
  if (old !== null && typeof old === 'object' && !Array.isArray(old)) return { ...old, ...update };
  return update;
}

/** '' and undefined both mean "no version". */
const versionOf = (n: ImageRef, override?: string): string | null => (override ?? n.version) || null;

/** Escapes LIKE's wildcards so a query matches as a plain substring. */
const likeSubstring = (q: string): string => `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export class RegistryDb {
  /** `sqlite:///<absolute path>`, as the `[database|…]` line prints it. */
  readonly dbUri: string;
  private readonly stmt;

  private constructor(
    /** The open connection, for `sreg`'s own `sreg_*` tables. */
    readonly sqlite: Database.Database,
    readonly file: string,
  ) {
    this.dbUri = `sqlite:///${file}`;
    const db = sqlite;
    this.stmt = {
      collectionByName: db.prepare<[string], { id: number; name: string; token: string | null; created_at: string | null }>(
        'SELECT id, name, token, created_at FROM collection WHERE name = ?',
      ),
      insertCollection: db.prepare<[string, string]>(
        'INSERT INTO collection (name, token, created_at) VALUES (?, ?, CURRENT_TIMESTAMP)',
      ),
      deleteCollection: db.prepare<[number]>('DELETE FROM collection WHERE id = ?'),
      countContainers: db.prepare<[number], { n: number }>('SELECT count(*) AS n FROM container WHERE collection_id = ?'),
      findContainer: db.prepare<{ collection: string; name: string; tag: string; client: string | null; version: string | null }, ContainerRow>(
        `${SELECT_CONTAINER} WHERE col.name = @collection AND c.name = @name AND c.tag = @tag
         AND (@client IS NULL OR c.client = @client) AND (@version IS NULL OR c.version = @version)
         ORDER BY c.id DESC LIMIT 1`,
      ),
      containerById: db.prepare<[number], ContainerRow>(`${SELECT_CONTAINER} WHERE c.id = ?`),
      listAll: db.prepare<[], ContainerRow>(`${SELECT_CONTAINER} ORDER BY c.id`),
      listLike: db.prepare<{ like: string }, ContainerRow>(
        `${SELECT_CONTAINER} WHERE c.uri LIKE @like ESCAPE '\\' OR c.name LIKE @like ESCAPE '\\'
         OR c.tag LIKE @like ESCAPE '\\' ORDER BY c.id`,
      ),
      insertContainer: db.prepare<{
        metrics: string; name: string; tag: string; image: string | null; url: string;
        uri: string; client: string; version: string; collection_id: number;
      }>(
        `INSERT INTO container (created_at, metrics, name, tag, image, url, uri, client, version, collection_id)
         VALUES (CURRENT_TIMESTAMP, @metrics, @name, @tag, @image, @url, @uri, @client, @version, @collection_id)`,
      ),
      updateContainer: db.prepare<{ id: number; metrics: string; url: string; client: string; image: string | null; version: string }>(
        'UPDATE container SET metrics = @metrics, url = @url, client = @client, image = coalesce(@image, image), version = @version WHERE id = @id',
      ),
      deleteContainer: db.prepare<[number]>('DELETE FROM container WHERE id = ?'),
    };
  }

  /** Opens (creating the folder and the file if needed) `<folder>/sregistry.db` and migrates it. */
  static open(folder: string): RegistryDb {
    const file = path.resolve(folder, DB_FILE_NAME);
    let sqlite: Database.Database;
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      // A file sreg creates is the user's alone (its -wal and -shm take its mode); one the
      // Python client made keeps the mode it has.
      if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
      sqlite = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    } catch (err) {
      throw new CatalogError('db_failed', `cannot open the database ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('foreign_keys = ON');
      migrate(sqlite);
      return new RegistryDb(sqlite, file);
    } catch (err) {
      sqlite.close();
      if (err instanceof CatalogError) throw err;
      throw new CatalogError('db_failed', `cannot use the database ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  close(): void {
    if (this.sqlite.open) this.sqlite.close();
  }

  getCollection(name: string): CollectionRecord | undefined {
    const row = this.stmt.collectionByName.get(name);
    return row && { id: row.id, name: row.name, token: row.token, createdAt: row.created_at };
  }

  /**
   * The record of `n` for `client` (null: any client). With a (non-empty) version, the row of
   * that version; without, the newest row of collection/name/tag.
   */
  getContainer(n: ImageRef, client: string | null = DEFAULT_CLIENT): ContainerRecord | undefined {
    const row = this.stmt.findContainer.get({
      collection: n.collection, name: n.name, tag: n.tag, client, version: versionOf(n),
    });
    return row && toRecord(row);
  }

  /**
   * Python's `add()`: creates the collection if needed, then updates the record `getContainer`
   * finds (merging metrics, replacing url and client, image unless null) or inserts a new one.
   * One transaction. `uri` is stored as `collection/name:tag`; no version is stored as ''.
   */
  upsertContainer(rec: UpsertContainer): { record: ContainerRecord; action: 'new' | 'update' } {
    const client = rec.client ?? DEFAULT_CLIENT;
    const version = versionOf(rec.n, rec.version);
    const run = this.sqlite.transaction(() => {
      // One record per collection/name:tag and client: a new version (a changed image pulled
      // again) updates it, as `pull --force` shows `[container][update]`. Another row that
      // already holds that exact version (the Python client keeps one per version) makes way.
      const existing = this.getContainer({ ...rec.n, version: undefined }, client);
      if (existing) {
        const newVersion = version ?? existing.version ?? '';
        const twin = this.getContainer({ ...rec.n, version: newVersion }, client);
        if (twin && twin.id !== existing.id) this.stmt.deleteContainer.run(twin.id);
        this.stmt.updateContainer.run({
          id: existing.id,
          metrics: pythonJsonDumps(mergeMetrics(existing.metrics, rec.metrics)),
          url: rec.url,
          client,
          image: rec.image,
          version: newVersion,
        });
        return { id: existing.id, action: 'update' as const };
      }
      const collectionId = this.collectionId(rec.n.collection);
      const info = this.stmt.insertContainer.run({
        metrics: pythonJsonDumps(rec.metrics),
        name: rec.n.name,
        tag: rec.n.tag,
        image: rec.image,
        url: rec.url,
        uri: `${rec.n.collection}/${rec.n.name}:${rec.n.tag}`,
        client,
        version: version ?? '',
        collection_id: collectionId,
      });
      return { id: Number(info.lastInsertRowid), action: 'new' as const };
    });
    const { id, action } = run.immediate();
    const row = this.stmt.containerById.get(id);
    if (!row) throw new CatalogError('db_failed', `container ${id} vanished right after it was written`);
    return { record: toRecord(row), action };
  }

  /** All records, oldest first; with a query, those whose uri, name or tag contains it
   *  (case-insensitive for ASCII, as SQLite's LIKE; `%` and `_` match themselves). */
  listContainers(query?: string): ContainerRecord[] {
    const rows = query ? this.stmt.listLike.all({ like: likeSubstring(query) }) : this.stmt.listAll.all();
    return rows.map(toRecord);
  }

  /** Deletes the record `getContainer(n, client)` finds; returns it. The file is the caller's. */
  removeContainer(n: ImageRef, client: string | null = DEFAULT_CLIENT): ContainerRecord | undefined {
    return this.sqlite.transaction(() => {
      const found = this.getContainer(n, client);
      if (found) this.stmt.deleteContainer.run(found.id);
      return found;
    }).immediate();
  }

  /** Deletes a collection and all its containers; returns how many containers went. */
  removeCollection(name: string): number {
    return this.sqlite.transaction(() => {
      const col = this.stmt.collectionByName.get(name);
      if (!col) return 0;
      const count = this.stmt.countContainers.get(col.id)?.n ?? 0;
      this.stmt.deleteCollection.run(col.id); // the sreg_collection_cascade trigger removes the containers
      return count;
    }).immediate();
  }

  /** The collection's id, inserting it (with a uuid4 token) when new. Call inside a transaction. */
  private collectionId(name: string): number {
    const found = this.stmt.collectionByName.get(name);
    if (found) return found.id;
    return Number(this.stmt.insertCollection.run(name, randomUUID()).lastInsertRowid);
  }
}
