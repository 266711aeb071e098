/**
 * The local catalog: `sregistry.db`, shared with the Python `sregistry` client, and the mount's
 * own state database (`mount-state.ts`: mirror, block index, upload journal, mounts registry;
 * private, on the cache folder's local disk).
 *
 * Purpose: the `collection` and `container` tables exactly as sregistry's SQLAlchemy models make
 * them (either tool can create the file, both keep working on it), `sreg`'s own `sreg_*` tables
 * beside them (numbered migrations recorded in `sreg_schema`), typed rows, and the text
 * `images`/`inspect` print.
 * Invariants: WAL; foreign keys on; every statement prepared once per connection; every change
 * of more than one row, or read-then-write, in one IMMEDIATE transaction; `created_at` is
 * SQLite's CURRENT_TIMESTAMP (UTC, `YYYY-MM-DD HH:MM:SS`), as SQLAlchemy writes it; `metrics`
 * is JSON written as Python's json.dumps writes it; a missing version is stored as '' (as the
 * Python client does), so the UNIQUE constraint (NULLs are distinct in SQLite) holds.
 * Concurrency: better-sqlite3 is synchronous; calls are short and indexed (lookups by
 * collection/name/tag use the `_container_uc` index). Other processes (the Python client,
 * another `sreg`) may write the same file: writers wait up to 5 s for the lock.
 */
export { CatalogError, type CatalogErrorCode } from './errors.js';
export {
  IMAGES_HEADER,
  formatImagesLine,
  imagesDate,
  inspectFields,
  inspectJson,
  pythonDateTimeString,
  recordUri,
} from './format.js';
export { migrate, schemaVersion } from './migrate.js';
export { pythonJsonDumps, type PyJsonOptions } from './pyjson.js';
export { DB_FILE_NAME, DEFAULT_CLIENT, RegistryDb } from './registry-db.js';
export { MIGRATIONS, PY_COLLECTION_DDL, PY_CONTAINER_DDL, type Migration } from './schema.js';
export type { CollectionRecord, ContainerRecord, ImageRef, UpsertContainer } from './types.js';
export { RemoteMirror, parentOf, toEntry } from './mirror.js';
export { CatalogSync, type CatalogSyncOptions, type SyncClient } from './sync.js';
export { MountStateDb, STATE_FILE_NAME, STATE_MIGRATIONS, privateDir, privateFile } from './mount-state.js';
export { MountRegistry, type MountRecord } from './mounts.js';
