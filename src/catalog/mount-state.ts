/**
 * The mount's own state database: `<cache folder>/sreg/state.db`, on local disk, private (the
 * folder 0700, the file and its -wal/-shm 0600), apart from `sregistry.db` (which lives in
 * ~/.singularity, often on NFS or Lustre where SQLite's WAL is unsafe, and which the Python
 * client locks). It holds the remote mirror and its cursor, the block-cache index, the upload
 * journal and the registry of running mounts.
 *
 * Two connections to the one file: `durable` (synchronous=FULL) for what must survive a power
 * loss once acknowledged — the upload journal (a close() it accepted) — and `fast`
 * (synchronous=NORMAL, still crash-safe in WAL: a process killed loses nothing committed) for
 * what can be rebuilt or means nothing after a power loss: the mirror, the sync cursor, the
 * block index and the mounts registry (no mount outlives the machine, and a row left by one is
 * recognised as dead by its pid's start time). Numbered migrations in its own `sreg_schema`.
 *
 * Existing state: sregistry.db's migration 3 renamed the tables that held rows to
 * `legacy_sreg_*`; `open` copies those rows here (one transaction, with a marker so a crash
 * between the copy and the drop never copies twice), then drops them from sregistry.db.
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import { CatalogError } from './errors.js';
import { migrate } from './migrate.js';
import { LEGACY_PREFIX, MOVED_TABLES, type Migration } from './schema.js';

export const STATE_FILE_NAME = 'state.db';
const BUSY_TIMEOUT_MS = 5000;

export const STATE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'remote mirror, block-cache index, upload journal, mounts',
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
        CREATE TABLE sreg_remote_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE sreg_cache_blocks (
          rev TEXT NOT NULL,
          block INTEGER NOT NULL,
          bytes INTEGER NOT NULL,
          sha256 BLOB NOT NULL,
          last_used_ms INTEGER NOT NULL,
          PRIMARY KEY (rev, block)
        );
        CREATE INDEX sreg_cache_blocks_lru ON sreg_cache_blocks (last_used_ms);
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
        -- pid_start: the process's start time (/proc/PID/stat), so a reused pid is not taken for the mount
        CREATE TABLE sreg_mounts (
          mountpoint TEXT PRIMARY KEY,
          pid INTEGER NOT NULL,
          pid_start TEXT,
          log_file TEXT NOT NULL,
          control_socket TEXT NOT NULL,
          started_at_ms INTEGER NOT NULL
        );
        -- rows adopted from an sregistry.db (key: its path), so a copy is never made twice
        CREATE TABLE sreg_adopted (source TEXT PRIMARY KEY, adopted_at_ms INTEGER NOT NULL);`);
    },
  },
  {
    version: 2,
    name: 'upload journal: the remote revision a file was opened from (uploaded with mode update)',
    up(db) {
      db.exec('ALTER TABLE sreg_uploads ADD COLUMN base_rev TEXT');
    },
  },
  {
    version: 3,
    name: 'block-cache index: the identity of a block file fsynced at a clean close (NULL: its bytes are checked at first use)',
    up(db) {
      db.exec('ALTER TABLE sreg_cache_blocks ADD COLUMN file_id TEXT');
    },
  },
];

/** Makes `dir` (and missing parents) and sets it to 0700. */
export function privateDir(dir: string): void {
  if (!existsSync(dir)) {
    // Parents first; the folder itself without `recursive`, which reports a read-only file
    // system as ENOENT instead of EROFS.
    mkdirSync(path.dirname(dir), { recursive: true });
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
    }
  }
  if ((statSync(dir).mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/** Creates `file` 0600 if missing; an existing one (and its -wal/-shm) is set to 0600. */
export function privateFile(file: string): void {
  closeSync(openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    if (existsSync(f) && (statSync(f).mode & 0o777) !== 0o600) chmodSync(f, 0o600);
  }
}

function connect(file: string, synchronous: 'FULL' | 'NORMAL'): Database.Database {
  const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

export class MountStateDb {
  private constructor(
    /** synchronous=FULL: the upload journal. */
    readonly durable: Database.Database,
    /** synchronous=NORMAL: the remote mirror, its cursor, the block index, the mounts registry. */
    readonly fast: Database.Database,
    readonly file: string,
  ) {}

  /**
   * Opens `<dir>/state.db` (dir is made 0700), migrates it, and adopts the mount state an older
   * sreg left in `legacyRegistry` (the path of an sregistry.db), if any.
   */
  static open(dir: string, legacyRegistry?: string): MountStateDb {
    const file = path.join(dir, STATE_FILE_NAME);
    let durable: Database.Database | undefined;
    let fast: Database.Database | undefined;
    try {
      privateDir(dir);
      privateFile(file);
      durable = connect(file, 'FULL');
      migrate(durable, STATE_MIGRATIONS, { python: false });
      if (legacyRegistry && existsSync(legacyRegistry)) adopt(durable, legacyRegistry);
      fast = connect(file, 'NORMAL');
      privateFile(file); // -wal and -shm exist now
      return new MountStateDb(durable, fast, file);
    } catch (err) {
      fast?.close();
      durable?.close();
      if (err instanceof CatalogError) throw err;
      throw new CatalogError('db_failed', `cannot use the mount state database ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  close(): void {
    if (this.fast.open) this.fast.close();
    if (this.durable.open) this.durable.close();
  }
}

/** Copies the rows of sregistry.db's `legacy_sreg_*` tables here, then drops those tables. */
function adopt(db: Database.Database, registryFile: string): void {
  const source = path.resolve(registryFile);
  db.prepare('ATTACH DATABASE ? AS legacy').run(source);
  try {
    const legacy = new Set(
      (db.prepare("SELECT name FROM legacy.sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '\\'").all(`${LEGACY_PREFIX.replace(/_/g, '\\_')}%`) as { name: string }[]).map((r) => r.name),
    );
    const tables = MOVED_TABLES.filter((t) => legacy.has(`${LEGACY_PREFIX}${t}`));
    if (tables.length === 0) return;
    db.transaction(() => {
      if (db.prepare('SELECT 1 FROM sreg_adopted WHERE source = ?').get(source)) return;
      for (const t of tables) {
        const cols = (db.pragma(`legacy.table_info(${LEGACY_PREFIX}${t})`) as { name: string }[]).map((c) => c.name).join(', ');
        db.exec(`INSERT OR REPLACE INTO main.${t} (${cols}) SELECT ${cols} FROM legacy.${LEGACY_PREFIX}${t}`);
      }
      db.prepare('INSERT INTO sreg_adopted (source, adopted_at_ms) VALUES (?, ?)').run(source, Date.now());
    }).immediate();
    // Committed here first: only then do the old rows go.
    db.transaction(() => {
      for (const t of tables) db.exec(`DROP TABLE IF EXISTS legacy.${LEGACY_PREFIX}${t}`);
    }).immediate();
  } finally {
    db.exec('DETACH DATABASE legacy');
  }
}
