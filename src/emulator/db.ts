/**
 * The emulator's SQLite database (`<root>/emulator.db`): WAL, numbered migrations, and a
 * `meta` table for the schema version and per-root facts (account id, cursor epoch).
 * File bytes are not in here: they live as files under `<root>/files/`.
 */
import Database from 'better-sqlite3';

type DB = Database.Database;

const MIGRATIONS: string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE entries (
     path_lower TEXT PRIMARY KEY,
     parent_lower TEXT NOT NULL,
     path_display TEXT NOT NULL,
     name TEXT NOT NULL,
     id TEXT NOT NULL UNIQUE,
     is_folder INTEGER NOT NULL,
     rev TEXT UNIQUE,
     size INTEGER,
     content_hash TEXT,
     client_modified TEXT,
     server_modified TEXT,
     blob TEXT
   );
   CREATE INDEX entries_parent ON entries (parent_lower);
   CREATE TABLE journal (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     path_lower TEXT NOT NULL,
     parent_lower TEXT NOT NULL,
     entry TEXT NOT NULL
   );
   CREATE INDEX journal_path ON journal (path_lower, seq);
   CREATE INDEX journal_parent ON journal (parent_lower, seq);
   CREATE TABLE shared_links (
     url TEXT PRIMARY KEY,
     file_id TEXT NOT NULL,
     link_id TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX shared_links_file ON shared_links (file_id);
   CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     type TEXT NOT NULL,
     length INTEGER NOT NULL,
     closed INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE session_chunks (
     session_id TEXT NOT NULL,
     offset INTEGER NOT NULL,
     length INTEGER NOT NULL,
     PRIMARY KEY (session_id, offset)
   );
   CREATE TABLE tokens (
     token_sha256 TEXT PRIMARY KEY,
     kind TEXT NOT NULL,
     expires_at INTEGER,
     revoked INTEGER NOT NULL DEFAULT 0,
     parent_sha256 TEXT,
     pkce INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE auth_codes (
     code TEXT PRIMARY KEY,
     client_id TEXT NOT NULL,
     challenge TEXT,
     redirect_uri TEXT,
     offline INTEGER NOT NULL,
     expires_at INTEGER NOT NULL
   );`,
  // Older revisions of files, so `rev:` paths name them (bounded per file id).
  `CREATE TABLE revisions (
     rev TEXT PRIMARY KEY,
     file_id TEXT NOT NULL,
     blob TEXT NOT NULL,
     entry TEXT NOT NULL,
     retired_at INTEGER NOT NULL
   );
   CREATE INDEX revisions_file ON revisions (file_id, retired_at);
   CREATE INDEX revisions_blob ON revisions (blob);
   CREATE INDEX entries_blob ON entries (blob);`,
];

export function openDatabase(file: string): DB {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    db.close();
    throw new Error(`${file} has schema version ${version}, newer than this sreg knows (${MIGRATIONS.length})`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return db;
}

export function getMeta(db: DB, key: string): string | undefined {
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
  return row?.value;
}

export function setMeta(db: DB, key: string, value: string): void {
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
}
