/**
 * RegistryDb on real SQLite files: creation, migrations, round-trips, new vs update, the unique
 * constraint, cascade delete, and a database the Python client created (its tables, as
 * SQLAlchemy emits them, and rows as its add() writes them).
 */
import test, { type ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CatalogError,
  MIGRATIONS,
  PY_COLLECTION_DDL,
  PY_CONTAINER_DDL,
  RegistryDb,
  formatImagesLine,
  inspectJson,
} from '../../src/catalog/index.js';
import { parseImageUri } from '../../src/registry/index.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-catalog-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function openDb(t: ExecutionContext, folder?: string): Promise<RegistryDb> {
  const db = RegistryDb.open(folder ?? path.join(await tempDir(t), 'singularity'));
  t.teardown(() => db.close());
  return db;
}

/** The Python client's two tables, then sreg's own (migration 2: the mount's), by name. */
// The Python client's tables and sreg's migration record only: the mount's own tables went to
// the cache folder's state database (migration 3; test/catalog/mount-state.test.ts).
const ALL_TABLES = ['collection', 'container', 'sqlite_sequence', 'sreg_schema'];

const RED = parseImageUri('pusheen/asaurus:red');
const HASH_A = '02c08a25c8f4697e16e896239e549a2b';
const HASH_B = 'ffffa25c8f4697e16e896239e549a2b0';
const URL = 'https://content.dropboxapi.com/2/files/download';

test('open creates the folder and sregistry.db, in WAL mode, with the sregistry tables and sreg_schema', async (t) => {
  const folder = path.join(await tempDir(t), 'a', 'b');
  const db = await openDb(t, folder);
  t.is(db.file, path.join(folder, 'sregistry.db'));
  t.is(db.dbUri, `sqlite:///${path.join(folder, 'sregistry.db')}`);
  t.true(db.dbUri.startsWith('sqlite:////'), 'an absolute path after sqlite:/// as the seed prints it');
  t.true((await stat(db.file)).isFile());
  t.is(db.sqlite.pragma('journal_mode', { simple: true }), 'wal');
  t.is(db.sqlite.pragma('foreign_keys', { simple: true }), 1);
  const tables = db.sqlite.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string; sql: string }[];
  t.deepEqual(tables.map((r) => r.name), ALL_TABLES);
  t.is(tables.find((r) => r.name === 'collection')?.sql, PY_COLLECTION_DDL);
  t.is(tables.find((r) => r.name === 'container')?.sql, PY_CONTAINER_DDL);
  const applied = db.sqlite.prepare('SELECT version FROM sreg_schema ORDER BY version').pluck().all();
  t.deepEqual(applied, MIGRATIONS.map((m) => m.version));
  t.is(db.sqlite.pragma('user_version', { simple: true }), 0, 'PRAGMA user_version is left alone');
});

test('reopening applies no migration twice', async (t) => {
  const folder = path.join(await tempDir(t), 'db');
  RegistryDb.open(folder).close();
  const db = await openDb(t, folder);
  const rows = db.sqlite.prepare('SELECT version FROM sreg_schema').pluck().all();
  t.deepEqual(rows, MIGRATIONS.map((m) => m.version));
});

test('upsertContainer: new, then update of the same row; round-trip of every field', async (t) => {
  const db = await openDb(t);
  const first = db.upsertContainer({ n: RED, image: null, url: URL, metrics: { a: 1, b: { c: 'é' } }, version: HASH_A });
  t.is(first.action, 'new');
  const r = first.record;
  t.like(r, { collection: 'pusheen', name: 'asaurus', tag: 'red', image: null, url: URL, uri: 'pusheen/asaurus:red', client: 'dropbox', version: HASH_A });
  t.deepEqual(r.metrics, { a: 1, b: { c: 'é' } });
  t.regex(r.createdAt ?? '', /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/, 'CURRENT_TIMESTAMP text, as SQLAlchemy stores func.now()');
  const stored = db.sqlite.prepare('SELECT metrics FROM container WHERE id = ?').pluck().get(r.id);
  t.is(stored, '{"a": 1, "b": {"c": "\\u00e9"}}', 'metrics text as Python json.dumps writes it');
  const col = db.getCollection('pusheen');
  t.is(col?.id, r.collectionId);
  t.regex(col?.token ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a uuid4 token');

  t.deepEqual(db.getContainer(RED), r);
  t.deepEqual(db.getContainer({ ...RED, version: HASH_A }), r);
  t.is(db.getContainer({ ...RED, version: HASH_B }), undefined);
  t.is(db.getContainer(RED, 'hub'), undefined, 'another client\'s record is not ours');
  t.deepEqual(db.getContainer(RED, null), r, 'null: any client');

  const second = db.upsertContainer({ n: RED, image: '/s/pusheen-asaurus:red.simg', url: 'u2', metrics: { b: 2, d: 4 }, version: HASH_A });
  t.is(second.action, 'update');
  t.is(second.record.id, r.id);
  t.like(second.record, { image: '/s/pusheen-asaurus:red.simg', url: 'u2', version: HASH_A, createdAt: r.createdAt });
  t.deepEqual(second.record.metrics, { a: 1, b: 2, d: 4 }, 'metrics merged key by key, as dict.update');

  const third = db.upsertContainer({ n: RED, image: null, url: 'u3', metrics: {} });
  t.is(third.action, 'update', 'no version: updates the newest record of the name');
  t.is(third.record.image, '/s/pusheen-asaurus:red.simg', 'a null image keeps the stored path');
  t.is(db.listContainers().length, 1);
});

test('a new version updates the record of that name (pull --force of a changed image)', async (t) => {
  const db = await openDb(t);
  const a = db.upsertContainer({ n: RED, image: '/s/red.simg', url: URL, metrics: {}, version: HASH_A });
  const b = db.upsertContainer({ n: { ...RED, version: HASH_B }, image: '/s/red.simg', url: URL, metrics: {} });
  t.is(b.action, 'update');
  t.is(b.record.id, a.record.id, 'still one record for pusheen/asaurus:red');
  t.is(b.record.version, HASH_B);
  t.is(db.getContainer(RED)?.version, HASH_B);
  t.is(db.getContainer({ ...RED, version: HASH_A }), undefined, 'the old version is no longer claimed for that file');
  t.is(db.sqlite.prepare('SELECT count(*) FROM container').pluck().get(), 1);
  t.is(db.sqlite.prepare('SELECT count(*) FROM collection').pluck().get(), 1);
});

test('a row that already holds the new version (Python keeps one per version) makes way', async (t) => {
  const db = await openDb(t);
  const a = db.upsertContainer({ n: RED, image: null, url: URL, metrics: {}, version: HASH_A });
  // The Python client's own row for another version of the same name.
  db.sqlite
    .prepare("INSERT INTO container (created_at, metrics, name, tag, client, version, collection_id) VALUES ('2018-01-28 18:42:13', '{}', 'asaurus', 'red', 'dropbox', ?, ?)")
    .run(HASH_B, a.record.collectionId);
  const newest = db.getContainer(RED);
  t.is(newest?.version, HASH_B, 'the newest row is the Python one');
  const c = db.upsertContainer({ n: { ...RED, version: HASH_A }, image: '/s/red.simg', url: URL, metrics: {} });
  t.is(c.action, 'update');
  t.is(c.record.version, HASH_A);
  t.is(db.sqlite.prepare('SELECT count(*) FROM container').pluck().get(), 1, 'no two rows claim one name and version');
});

test('no version is stored as \'\' and the row prints without @', async (t) => {
  const db = await openDb(t);
  const { record } = db.upsertContainer({ n: parseImageUri('pusheen/asaurus:green'), image: null, url: URL, metrics: {} });
  t.is(record.version, '');
  t.is(record.uri, 'pusheen/asaurus:green');
  t.regex(formatImagesLine(record, 32), /^32 [A-Z][a-z]+ \d{2}, \d{4}\t\[dropbox\]\tpusheen\/asaurus:green$/);
  const again = db.upsertContainer({ n: parseImageUri('pusheen/asaurus:green'), image: null, url: URL, metrics: {} });
  t.is(again.action, 'update');
});

test('the UNIQUE (collection_id, name, tag, client, version) constraint holds', async (t) => {
  const db = await openDb(t);
  const { record } = db.upsertContainer({ n: RED, image: null, url: URL, metrics: {}, version: HASH_A });
  const insert = db.sqlite.prepare(
    "INSERT INTO container (created_at, metrics, name, tag, client, version, collection_id) VALUES (CURRENT_TIMESTAMP, '{}', ?, ?, ?, ?, ?)",
  );
  // better-sqlite3's SqliteError is not a native Error for t.throws: catch it by hand.
  const codeOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
      return undefined;
    } catch (err) {
      return (err as { code?: string }).code;
    }
  };
  t.is(codeOf(() => insert.run('asaurus', 'red', 'dropbox', HASH_A, record.collectionId)), 'SQLITE_CONSTRAINT_UNIQUE');
  t.is(codeOf(() => insert.run('asaurus', 'red', 'hub', HASH_A, record.collectionId)), undefined, 'another client may hold the same image');
  t.is(codeOf(() => insert.run('asaurus', 'blue', 'dropbox', HASH_A, 9999)), 'SQLITE_CONSTRAINT_FOREIGNKEY');
});

test('listContainers: all by id, or those whose uri/name/tag contains the query (% and _ literal)', async (t) => {
  const db = await openDb(t);
  for (const uri of ['vsoch/hello-world:tacos', 'pusheen/asaurus:green', 'pusheen/asaurus:red', 'pusheen/asaurus:blue', 'x/100%_done:v1']) {
    db.upsertContainer({ n: parseImageUri(uri), image: null, url: URL, metrics: {} });
  }
  const uris = (q?: string): (string | null)[] => db.listContainers(q).map((r) => r.uri);
  t.deepEqual(uris(), ['vsoch/hello-world:tacos', 'pusheen/asaurus:green', 'pusheen/asaurus:red', 'pusheen/asaurus:blue', 'x/100%_done:v1']);
  t.deepEqual(uris('pusheen'), ['pusheen/asaurus:green', 'pusheen/asaurus:red', 'pusheen/asaurus:blue']);
  t.deepEqual(uris('green'), ['pusheen/asaurus:green']);
  t.deepEqual(uris('RED'), ['pusheen/asaurus:red'], 'case-insensitive like SQLite LIKE');
  t.deepEqual(uris('%'), ['x/100%_done:v1']);
  t.deepEqual(uris('o_d'), []);
  t.deepEqual(uris('nothing'), []);
});

test('removeContainer deletes and returns the record; the collection stays', async (t) => {
  const db = await openDb(t);
  const { record } = db.upsertContainer({ n: RED, image: '/x', url: URL, metrics: {}, version: HASH_A });
  t.is(db.removeContainer({ ...RED, version: HASH_B }), undefined);
  t.deepEqual(db.removeContainer(RED), record);
  t.is(db.getContainer(RED), undefined);
  t.is(db.removeContainer(RED), undefined);
  t.truthy(db.getCollection('pusheen'));
});

test('deleting a collection deletes its containers (removeCollection, and a plain DELETE)', async (t) => {
  const db = await openDb(t);
  for (const uri of ['pusheen/asaurus:red', 'pusheen/asaurus:blue', 'vsoch/hello-world:tacos', 'other/x:y']) {
    db.upsertContainer({ n: parseImageUri(uri), image: null, url: URL, metrics: {} });
  }
  t.is(db.removeCollection('pusheen'), 2);
  t.is(db.removeCollection('pusheen'), 0);
  t.deepEqual(db.listContainers().map((r) => r.uri), ['vsoch/hello-world:tacos', 'other/x:y']);
  // Another writer (sqlite3 shell, the Python client) deleting the row directly.
  db.sqlite.prepare("DELETE FROM collection WHERE name = 'vsoch'").run();
  t.deepEqual(db.listContainers().map((r) => r.uri), ['other/x:y']);
});

/** A database as the Python client leaves it: SQLAlchemy's tables, its add() rows, no WAL. */
function makePythonDb(file: string): void {
  const py = new Database(file);
  py.exec(PY_COLLECTION_DDL);
  py.exec(PY_CONTAINER_DDL);
  const collection = py.prepare('INSERT INTO collection (id, name, token, created_at) VALUES (?, ?, ?, ?)');
  collection.run(1, 'pusheen', '233ade22-7721-4add-bb17-c72bbea1c44a', '2018-01-28 18:40:00');
  collection.run(2, 'library', 'c7b2f6a4-1d1e-4c55-9a63-0f0d5e1c2b3a', '2018-01-28 18:40:01');
  const add = py.prepare(
    'INSERT INTO container (id, created_at, metrics, name, tag, image, url, uri, client, version, collection_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  add.run(32, '2018-01-28 18:41:00', '{"collection": "pusheen", "tag": "blue"}', 'asaurus', 'blue', null, URL, 'pusheen/asaurus:blue', 'dropbox', HASH_A, 1);
  add.run(33, '2018-01-28 18:42:13', '{"uri": "pusheen/asaurus:red", "data": {"type": "container"}}', 'asaurus', 'red',
    '/home/vanessa/.singularity/shub/pusheen-asaurus:red.simg', URL, 'pusheen/asaurus:red', 'dropbox', HASH_A, 1);
  // A Python bug: with no version, add() stores the uri with a trailing '@'.
  add.run(34, '2018-01-28 18:43:00.123456', '{}', 'asaurus', 'green', null, URL, 'pusheen/asaurus:green@', 'dropbox', '', 1);
  // An older client's row: no uri, NULL version, another client.
  add.run(35, '2018-01-28 18:44:00', '{}', 'busybox', 'latest', '/s/library-busybox:latest.simg', null, null, 'hub', null, 2);
  py.close();
}

test('a database the Python client created opens, keeps its tables as they were, and reads right', async (t) => {
  const folder = await tempDir(t);
  const file = path.join(folder, 'sregistry.db');
  makePythonDb(file);
  const db = await openDb(t, folder);
  const sql = (name: string): unknown => db.sqlite.prepare('SELECT sql FROM sqlite_master WHERE name = ?').pluck().get(name);
  t.is(sql('collection'), PY_COLLECTION_DDL);
  t.is(sql('container'), PY_CONTAINER_DDL);
  t.deepEqual(
    db.sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all(),
    ALL_TABLES,
  );

  const red = db.getContainer(RED);
  t.like(red, { id: 33, collectionId: 1, image: '/home/vanessa/.singularity/shub/pusheen-asaurus:red.simg', createdAt: '2018-01-28 18:42:13' });
  t.deepEqual(red?.metrics, { uri: 'pusheen/asaurus:red', data: { type: 'container' } });
  t.is(db.getContainer(parseImageUri('library/busybox'), 'hub')?.version, null);
  t.deepEqual(
    db.listContainers().map((r, i) => formatImagesLine(r, i + 1)),
    [
      `1  January 28, 2018\t[dropbox]\tpusheen/asaurus:blue@${HASH_A}`,
      `2  January 28, 2018\t[dropbox]\tpusheen/asaurus:red@${HASH_A}`,
      '3  January 28, 2018\t[dropbox]\tpusheen/asaurus:green',
      '4  January 28, 2018\t[hub]\tlibrary/busybox:latest',
    ],
  );
  const green = db.getContainer(parseImageUri('pusheen/asaurus:green'));
  t.is(JSON.parse(inspectJson(green!)).created_at, '2018-01-28 18:43:00.123456');

  // Writing keeps the Python rows' shape: an update of red, a new row in the same collection.
  t.is(db.upsertContainer({ n: RED, image: null, url: URL, metrics: { tag: 'red' }, version: HASH_A }).action, 'update');
  const pink = db.upsertContainer({ n: parseImageUri('pusheen/asaurus:pink'), image: null, url: URL, metrics: {}, version: HASH_B });
  t.is(pink.action, 'new');
  t.is(pink.record.collectionId, 1);
  t.deepEqual(db.getContainer(RED)?.metrics, { uri: 'pusheen/asaurus:red', data: { type: 'container' }, tag: 'red' });
});

test('a file whose container table is not sregistry\'s is refused and left untouched', async (t) => {
  const folder = await tempDir(t);
  const file = path.join(folder, 'sregistry.db');
  const other = new Database(file);
  other.exec('CREATE TABLE container (id INTEGER PRIMARY KEY, payload TEXT)');
  other.close();
  const err = t.throws(() => RegistryDb.open(folder), { instanceOf: CatalogError });
  t.is(err?.code, 'incompatible_schema');
  t.regex(err?.message ?? '', /table 'container' without column\(s\) created_at, metrics, name/);
  const check = new Database(file, { readonly: true });
  t.deepEqual(check.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all(), ['container']);
  check.close();
});

test('a database migrated by a newer sreg is refused with schema_too_new', async (t) => {
  const folder = await tempDir(t);
  RegistryDb.open(folder).close();
  const raw = new Database(path.join(folder, 'sregistry.db'));
  raw.prepare("INSERT INTO sreg_schema (version, name) VALUES (?, 'from the future')").run(MIGRATIONS.length + 1);
  raw.close();
  const err = t.throws(() => RegistryDb.open(folder), { instanceOf: CatalogError });
  t.is(err?.code, 'schema_too_new');
});

test('a file that is not SQLite is a CatalogError db_failed', async (t) => {
  const folder = await tempDir(t);
  await writeFile(path.join(folder, 'sregistry.db'), 'this is not a database, just text that is long enough to matter '.repeat(100));
  const err = t.throws(() => RegistryDb.open(folder), { instanceOf: CatalogError });
  t.is(err?.code, 'db_failed');
  t.true((await readdir(folder)).includes('sregistry.db'));
});
