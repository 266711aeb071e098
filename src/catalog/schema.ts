/**
 * The schema of `sregistry.db`: the two tables the Python client's SQLAlchemy models create
 * (sregistry-cli `sregistry/database/models.py`), and `sreg`'s numbered migrations.
 *
 * The CREATE TABLE text is what SQLAlchemy 1.x emits for those models on SQLite (checked
 * against SQLAlchemy 1.4's `metadata.create_all` echo), so a database `sreg` creates is the
 * same, table for table, as one the Python client creates. Note what SQLAlchemy does not put in
 * the file: the ORM's `cascade='delete,all'` (deleting a collection deletes its containers)
 * lives in Python, not in an `ON DELETE CASCADE`; migration 1 adds a trigger so that the rule
 * holds for every writer. `created_at` defaults to `func.now()`, which SQLAlchemy renders as
 * CURRENT_TIMESTAMP in the INSERT: UTC `YYYY-MM-DD HH:MM:SS` text; `sreg` inserts the same.
 *
 * `sreg`'s own tables are all named `sreg_*`; the applied migrations are rows of `sreg_schema`
 * (not PRAGMA user_version: the file is shared, and the version of `sreg`'s part should not
 * live in a slot that belongs to the whole file).
 */
import type { Database } from 'better-sqlite3';

export const PY_COLLECTION_DDL = `CREATE TABLE collection (
\tid INTEGER NOT NULL, 
\tname VARCHAR(150), 
\ttoken VARCHAR(50), 
\tcreated_at DATETIME, 
\tPRIMARY KEY (id), 
\tUNIQUE (name)
)`;

export const PY_CONTAINER_DDL = `CREATE TABLE container (
\tid INTEGER NOT NULL, 
\tcreated_at DATETIME, 
\tmetrics TEXT NOT NULL, 
\tname VARCHAR(250) NOT NULL, 
\ttag VARCHAR(250) NOT NULL, 
\timage VARCHAR(250), 
\turl VARCHAR(500), 
\turi VARCHAR(500), 
\tclient VARCHAR(50) NOT NULL, 
\tversion VARCHAR(250), 
\tcollection_id INTEGER NOT NULL, 
\tPRIMARY KEY (id), 
\tCONSTRAINT _container_uc UNIQUE (collection_id, name, tag, client, version), 
\tFOREIGN KEY(collection_id) REFERENCES collection (id)
)`;

/** The columns `sreg` reads and writes; a table of that name without them is not sregistry's. */
export const PY_COLUMNS: Readonly<Record<'collection' | 'container', readonly string[]>> = {
  collection: ['id', 'name', 'token', 'created_at'],
  container: ['id', 'created_at', 'metrics', 'name', 'tag', 'image', 'url', 'uri', 'client', 'version', 'collection_id'],
};

export interface Migration {
  /** 1, 2, 3, … without gaps; never renumber or edit one that has shipped. */
  version: number;
  name: string;
  /** Runs inside the migration's transaction. */
  up(db: Database): void;
}

/** The mount's tables migration 2 put in sregistry.db; migration 3 moves them out. */
export const MOVED_TABLES = ['sreg_remote_entries', 'sreg_remote_state', 'sreg_cache_blocks', 'sreg_uploads', 'sreg_mounts'] as const;
/** A moved table with rows waits in sregistry.db under this prefix until the state database adopts it. */
export const LEGACY_PREFIX = 'legacy_';

const ifNotExists = (ddl: string): string => ddl.replace(/^CREATE TABLE /, 'CREATE TABLE IF NOT EXISTS ');

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'sregistry tables; deleting a collection deletes its containers',
    up(db) {
      // A database the Python client made already has both tables: left as they are.
      db.exec(ifNotExists(PY_COLLECTION_DDL));
      db.exec(ifNotExists(PY_CONTAINER_DDL));
      db.exec(`CREATE TRIGGER IF NOT EXISTS sreg_collection_cascade
        BEFORE DELETE ON collection FOR EACH ROW
        BEGIN DELETE FROM container WHERE collection_id = OLD.id; END`);
    },
  },
  {
    version: 2,
    name: 'the mount: remote mirror, block-cache index, upload journal, mounts',
    up(db) {
      db.exec(`
        CREATE TABLE sreg_remote_entries (
          path_lower TEXT PRIMARY KEY,
          parent_lower TEXT NOT NULL,
          path_display TEXT NOT NULL,
          name TEXT NOT NULL,
          is_folder INTEGER NOT NULL,
          id TEXT,
          rev TEXT,
          size INTEGER NOT NULL DEFAULT 0,
          content_hash TEXT,
          server_modified_ms INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX sreg_remote_entries_parent ON sreg_remote_entries (parent_lower, name);
        -- key/value: cursor, and whose tree the mirror is (endpoint, account) so a change of either relists
        CREATE TABLE sreg_remote_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        -- one row per cached 4 MiB block of a revision; sha256 is the block's digest (content_hash check)
        CREATE TABLE sreg_cache_blocks (
          rev TEXT NOT NULL,
          block INTEGER NOT NULL,
          bytes INTEGER NOT NULL,
          sha256 BLOB NOT NULL,
          last_used_ms INTEGER NOT NULL,
          PRIMARY KEY (rev, block)
        );
        CREATE INDEX sreg_cache_blocks_lru ON sreg_cache_blocks (last_used_ms);
        -- files closed on the mount and not yet in Dropbox
        CREATE TABLE sreg_uploads (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          path TEXT NOT NULL,
          path_lower TEXT NOT NULL,
          parent_lower TEXT NOT NULL,
          spool TEXT NOT NULL,
          size INTEGER NOT NULL,
          state TEXT NOT NULL DEFAULT 'queued',
          attempts INTEGER NOT NULL DEFAULT 0,
          last_error TEXT,
          queued_at_ms INTEGER NOT NULL
        );
        CREATE INDEX sreg_uploads_path ON sreg_uploads (path_lower);
        CREATE INDEX sreg_uploads_parent ON sreg_uploads (parent_lower);
        CREATE TABLE sreg_mounts (
          mountpoint TEXT PRIMARY KEY,
          pid INTEGER NOT NULL,
          log_file TEXT NOT NULL,
          control_socket TEXT NOT NULL,
          started_at_ms INTEGER NOT NULL
        );`);
    },
  },
  {
    version: 3,
    name: "the mount's own state moved to the cache folder's state database (mount-state.ts)",
    up(db) {
      // An empty table (a fresh file, or no mount ever ran) simply goes; one with rows waits,
      // renamed, until the state database adopts its rows (MountStateDb.open) and drops it.
      for (const t of MOVED_TABLES) {
        const rows = (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
        db.exec(rows === 0 ? `DROP TABLE ${t}` : `ALTER TABLE ${t} RENAME TO ${LEGACY_PREFIX}${t}`);
      }
    },
  },
];
