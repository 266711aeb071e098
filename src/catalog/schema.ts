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
];
