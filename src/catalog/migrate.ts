/**
 * Applies `sreg`'s numbered migrations, each in one IMMEDIATE transaction with its row in
 * `sreg_schema`, so two processes opening the same file at once apply each migration once.
 */
import type { Database } from 'better-sqlite3';
import { CatalogError } from './errors.js';
import { MIGRATIONS, PY_COLUMNS, type Migration } from './schema.js';

const SCHEMA_TABLE_DDL = `CREATE TABLE IF NOT EXISTS sreg_schema (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)`;

/** The highest migration applied to `db` (0 for none). */
export function schemaVersion(db: Database): number {
  const row = db.prepare('SELECT max(version) AS v FROM sreg_schema').get() as { v: number | null } | undefined;
  return row?.v ?? 0;
}

/**
 * Brings `db` to the last of `migrations`; returns the versions it applied. `python: false`
 * for a database without the Python client's tables (the mount's state database).
 */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS, o: { python?: boolean } = {}): number[] {
  const python = o.python ?? true;
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${m.name} is numbered ${m.version}, expected ${i + 1}`);
  });
  if (python) checkPythonTables(db, false);
  db.exec(SCHEMA_TABLE_DDL);
  const latest = migrations.length;
  const found = schemaVersion(db);
  if (found > latest) {
    throw new CatalogError(
      'schema_too_new',
      `the database ${db.name} is at sreg schema version ${found}, newer than this sreg knows (${latest}): upgrade sreg`,
    );
  }
  const record = db.prepare('INSERT INTO sreg_schema (version, name) VALUES (?, ?)');
  const applied: number[] = [];
  for (const m of migrations.slice(found)) {
    const step = db.transaction(() => {
      if (schemaVersion(db) >= m.version) return false; // another process got there first
      m.up(db);
      record.run(m.version, m.name);
      return true;
    });
    if (step.immediate()) applied.push(m.version);
  }
  if (python) checkPythonTables(db, true);
  return applied;
}

/** Refuses a file whose `collection`/`container` tables are not sregistry's (or, with
 *  `mustExist`, are missing). Checked before migrating, so such a file is not touched. */
function checkPythonTables(db: Database, mustExist: boolean): void {
  for (const [table, wanted] of Object.entries(PY_COLUMNS)) {
    const have = new Set((db.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name));
    if (have.size === 0 && !mustExist) continue;
    const missing = wanted.filter((c) => !have.has(c));
    if (missing.length > 0) {
      throw new CatalogError(
        'incompatible_schema',
        `the database ${db.name} has a table '${table}' without column(s) ${missing.join(', ')}: it was not made by sregistry`,
      );
    }
  }
}
