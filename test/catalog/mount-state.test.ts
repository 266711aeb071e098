/**
 * The mount state database (catalog/mount-state.ts) on real SQLite files: private (0700 folder,
 * 0600 file, -wal and -shm), FULL sync only on the durable connection, sregistry.db left with
 * the Python client's tables, and an older sreg's mount state in sregistry.db adopted once
 * (migration 3 of sregistry.db, then the copy), also after a crash between copy and drop.
 */
import test, { type ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MIGRATIONS, MountRegistry, MountStateDb, RegistryDb, STATE_FILE_NAME, migrate } from '../../src/catalog/index.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-state-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;
const tables = (db: Database.Database, prefix = ''): string[] =>
  (db.prepare(`SELECT name FROM ${prefix}sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all() as string[]).filter((n) => n !== 'sqlite_sequence');

test('a new state database is private: folder 0700, state.db and its -wal and -shm 0600', async (t) => {
  const old = process.umask(0o022);
  t.teardown(() => process.umask(old));
  const dir = path.join(await tempDir(t), 'cache', 'sreg');
  const s = MountStateDb.open(dir);
  t.teardown(() => s.close());
  new MountRegistry(s.durable).put({ mountpoint: '/m', pid: 1, pidStart: '5', logFile: '/l', controlSocket: '/s', startedAtMs: 1 });
  t.is(await mode(dir), 0o700);
  for (const f of ['', '-wal', '-shm']) t.is(await mode(path.join(dir, `${STATE_FILE_NAME}${f}`)), 0o600, `state.db${f}`);
});

test('an existing state folder and files that others could read are made private at open', async (t) => {
  const dir = path.join(await tempDir(t), 'sreg');
  MountStateDb.open(dir).close();
  await chmod(dir, 0o755);
  await chmod(path.join(dir, STATE_FILE_NAME), 0o644);
  await writeFile(path.join(dir, `${STATE_FILE_NAME}-wal`), '');
  await chmod(path.join(dir, `${STATE_FILE_NAME}-wal`), 0o644);
  const s = MountStateDb.open(dir);
  t.teardown(() => s.close());
  t.is(await mode(dir), 0o700);
  t.is(await mode(path.join(dir, STATE_FILE_NAME)), 0o600);
  t.is(await mode(path.join(dir, `${STATE_FILE_NAME}-wal`)), 0o600);
});

test('a new sregistry.db is 0600 too (its -wal and -shm take its mode); the mount tables are not in it', async (t) => {
  const old = process.umask(0o022);
  t.teardown(() => process.umask(old));
  const dir = path.join(await tempDir(t), 'singularity');
  const reg = RegistryDb.open(dir);
  t.teardown(() => reg.close());
  reg.upsertContainer({ n: { collection: 'c', name: 'n', tag: 't' }, image: null, url: '', metrics: {} });
  for (const f of ['', '-wal', '-shm']) t.is(await mode(path.join(dir, `sregistry.db${f}`)), 0o600, `sregistry.db${f}`);
  t.deepEqual(tables(reg.sqlite), ['collection', 'container', 'sreg_schema']);
});

test('synchronous=FULL on the durable connection (journal, mounts) only; both in WAL', async (t) => {
  const s = MountStateDb.open(path.join(await tempDir(t), 'sreg'));
  t.teardown(() => s.close());
  t.is(s.durable.pragma('synchronous', { simple: true }), 2);
  t.is(s.fast.pragma('synchronous', { simple: true }), 1);
  t.is(s.durable.pragma('journal_mode', { simple: true }), 'wal');
  t.is(s.fast.pragma('journal_mode', { simple: true }), 'wal');
  t.deepEqual(tables(s.durable), ['sreg_adopted', 'sreg_cache_blocks', 'sreg_mounts', 'sreg_remote_entries', 'sreg_remote_state', 'sreg_schema', 'sreg_uploads']);
});

/** An sregistry.db as sreg 0.1 left it: migrations 1 and 2, with mount state in it. */
function olderSregistryDb(folder: string): void {
  const db = new Database(path.join(folder, 'sregistry.db'));
  db.pragma('journal_mode = WAL');
  migrate(db, MIGRATIONS.slice(0, 2));
  db.prepare("INSERT INTO sreg_remote_entries (path_lower, parent_lower, path_display, name, is_folder, id, rev, size) VALUES ('/a/b.simg', '/a', '/a/B.simg', 'B.simg', 0, 'id:1', 'r1', 7)").run();
  db.prepare("INSERT INTO sreg_remote_state (key, value) VALUES ('cursor', 'c-1')").run();
  db.prepare("INSERT INTO sreg_cache_blocks (rev, block, bytes, sha256, last_used_ms) VALUES ('r1', 0, 7, x'00', 5)").run();
  db.prepare("INSERT INTO sreg_uploads (id, path, path_lower, parent_lower, spool, size, queued_at_ms) VALUES (41, '/a/new.simg', '/a/new.simg', '/a', '/spool/x', 3, 9)").run();
  db.prepare("INSERT INTO sreg_uploads (id, path, path_lower, parent_lower, spool, size, queued_at_ms) VALUES (42, '/a/two.simg', '/a/two.simg', '/a', '/spool/y', 4, 10)").run();
  db.prepare("INSERT INTO sreg_mounts (mountpoint, pid, log_file, control_socket, started_at_ms) VALUES ('/m', 123, '/l', '/tmp/s.sock', 1)").run();
  db.close();
}

const counts = (db: Database.Database): Record<string, number> =>
  Object.fromEntries(['sreg_remote_entries', 'sreg_remote_state', 'sreg_cache_blocks', 'sreg_uploads', 'sreg_mounts'].map((x) => [x, db.prepare(`SELECT count(*) FROM ${x}`).pluck().get() as number]));

test('an older sreg\'s mount state in sregistry.db moves to the state database once; sregistry.db keeps the Python tables only', async (t) => {
  const root = await tempDir(t);
  const dbDir = path.join(root, 'singularity');
  await mkdir(dbDir);
  olderSregistryDb(dbDir);
  const registryFile = path.join(dbDir, 'sregistry.db');
  // Any command opens sregistry.db first: migration 3 puts the tables with rows aside.
  const reg = RegistryDb.open(dbDir);
  t.deepEqual(tables(reg.sqlite), ['collection', 'container', 'legacy_sreg_cache_blocks', 'legacy_sreg_mounts', 'legacy_sreg_remote_entries', 'legacy_sreg_remote_state', 'legacy_sreg_uploads', 'sreg_schema']);
  reg.close();

  const stateDir = path.join(root, 'cache', 'sreg');
  const s = MountStateDb.open(stateDir, registryFile);
  const want = { sreg_remote_entries: 1, sreg_remote_state: 1, sreg_cache_blocks: 1, sreg_uploads: 2, sreg_mounts: 1 };
  t.deepEqual(counts(s.durable), want);
  t.deepEqual(s.durable.prepare('SELECT id, path FROM sreg_uploads ORDER BY id').all(), [{ id: 41, path: '/a/new.simg' }, { id: 42, path: '/a/two.simg' }], 'journal ids kept (upload order)');
  t.like(new MountRegistry(s.durable).get('/m'), { pid: 123, pidStart: null });
  s.close();
  const after = new Database(registryFile);
  t.deepEqual(tables(after), ['collection', 'container', 'sreg_schema']);

  // A crash after the copy and before the drop: the old tables are still there the next time.
  after.exec("CREATE TABLE legacy_sreg_uploads (id INTEGER PRIMARY KEY, path TEXT, path_lower TEXT, parent_lower TEXT, spool TEXT, size INTEGER, state TEXT, attempts INTEGER, last_error TEXT, queued_at_ms INTEGER); INSERT INTO legacy_sreg_uploads VALUES (41, '/a/new.simg', '/a/new.simg', '/a', '/spool/x', 3, 'queued', 0, NULL, 9)");
  after.close();
  const again = MountStateDb.open(stateDir, registryFile);
  t.teardown(() => again.close());
  t.deepEqual(counts(again.durable), want, 'nothing copied twice');
  const last = new Database(registryFile);
  t.deepEqual(tables(last), ['collection', 'container', 'sreg_schema'], 'and the leftover is dropped');
  last.close();
});
