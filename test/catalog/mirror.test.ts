/**
 * RemoteMirror on a real mount state database (temp file, WAL): the change-application rules of
 * dropbox-api.md §5.1, children order, the CatalogPort methods, query plans, and 10,000 entries.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MountStateDb, RemoteMirror, parentOf, toEntry } from '../../src/catalog/index.js';
import type { DeletedMeta, FileMeta, FolderMeta, Meta } from '../../src/dropbox/client.js';

async function openDb(t: ExecutionContext, folder?: string): Promise<{ db: MountStateDb; folder: string }> {
  let dir = folder;
  if (!dir) {
    const tmp = await mkdtemp(path.join(tmpdir(), 'sreg-mirror-'));
    t.teardown(() => rm(tmp, { recursive: true, force: true }));
    dir = tmp;
  }
  const db = MountStateDb.open(dir);
  t.teardown(() => db.close());
  return { db, folder: dir };
}

async function mirror(t: ExecutionContext, openedMs = 1_000_000): Promise<RemoteMirror> {
  const { db } = await openDb(t);
  return new RemoteMirror(db.fast, { openedMs });
}

const base = (p: string): string => p.slice(p.lastIndexOf('/') + 1);
let revs = 0;
function file(p: string, size = 1, serverModified = '2024-05-01T10:00:00Z'): FileMeta {
  revs++;
  return {
    kind: 'file',
    name: base(p),
    pathLower: p.toLowerCase(),
    pathDisplay: p,
    id: `id:f${revs}`,
    rev: `0123456789${revs.toString(16)}`,
    size,
    contentHash: 'a'.repeat(64),
    serverModified,
    clientModified: serverModified,
  };
}
const folder = (p: string): FolderMeta => ({ kind: 'folder', name: base(p), pathLower: p.toLowerCase(), pathDisplay: p, id: `id:d-${p}` });
const deleted = (p: string): DeletedMeta => ({ kind: 'deleted', name: base(p), pathLower: p.toLowerCase(), pathDisplay: p });

/** Every row as "f:/path" or "d:/path", sorted. */
function tree(m: RemoteMirror, parent = ''): string[] {
  const out: string[] = [];
  for (const e of m.children(parent)) {
    out.push(`${e.isFolder ? 'd' : 'f'}:${e.pathLower}`);
    if (e.isFolder) out.push(...tree(m, e.pathLower));
  }
  return out.sort();
}

test('parentOf and toEntry', (t) => {
  t.is(parentOf('/a'), '');
  t.is(parentOf('/a/b/c'), '/a/b');
  const f = file('/Coll/Img:latest.sif', 42, '2024-05-01T10:00:00Z');
  t.deepEqual(toEntry(f, 5), {
    pathLower: '/coll/img:latest.sif',
    pathDisplay: '/Coll/Img:latest.sif',
    name: 'Img:latest.sif',
    isFolder: false,
    id: f.id,
    rev: f.rev,
    size: 42,
    contentHash: 'a'.repeat(64),
    mtimeMs: Date.UTC(2024, 4, 1, 10),
  });
  t.deepEqual(toEntry(folder('/Coll'), 5), { pathLower: '/coll', pathDisplay: '/Coll', name: 'Coll', isFolder: true, size: 0, mtimeMs: 5 });
});

test('the root is an implicit folder; unknown paths are undefined', async (t) => {
  const m = await mirror(t, 777);
  t.deepEqual(m.lookup(''), { pathLower: '', pathDisplay: '', name: '', isFolder: true, size: 0, mtimeMs: 777 });
  t.is(m.lookup('/nope'), undefined);
  t.deepEqual(m.children(''), []);
  t.is(m.count(), 0);
});

test('missing parents are created as folders on the fly; the folder entry arriving later keeps its children', async (t) => {
  const m = await mirror(t, 777);
  m.applyPage([file('/Coll/Sub/x.sif', 7)]);
  t.deepEqual(tree(m), ['d:/coll', 'd:/coll/sub', 'f:/coll/sub/x.sif']);
  t.like(m.lookup('/coll/sub'), { isFolder: true, name: 'Sub', pathDisplay: '/Coll/Sub', mtimeMs: 777 });
  t.like(m.lookup('/coll/sub/x.sif'), { isFolder: false, size: 7, name: 'x.sif', mtimeMs: Date.UTC(2024, 4, 1, 10) });
  m.applyPage([folder('/COLL'), folder('/COLL/sub')]);
  t.deepEqual(tree(m), ['d:/coll', 'd:/coll/sub', 'f:/coll/sub/x.sif']);
  t.like(m.lookup('/coll'), { name: 'COLL', pathDisplay: '/COLL' });
  t.is(m.count(), 3);
});

test('a file entry replaces a folder and its whole subtree', async (t) => {
  const m = await mirror(t);
  m.applyPage([folder('/a'), folder('/a/b'), file('/a/b/c.sif'), file('/a/d.sif'), file('/a-b/e.sif'), file('/a0'), file('/ab')]);
  m.applyPage([file('/a', 99)]);
  t.deepEqual(tree(m), ['d:/a-b', 'f:/a', 'f:/a-b/e.sif', 'f:/a0', 'f:/ab']);
  t.like(m.lookup('/a'), { isFolder: false, size: 99 });
  t.deepEqual(m.children('/a'), []);
  t.is(m.lookup('/a/b/c.sif'), undefined);
});

test('a folder entry replaces a file; a folder over a folder keeps its children', async (t) => {
  const m = await mirror(t);
  m.applyPage([file('/x', 5)]);
  m.applyPage([folder('/x')]);
  t.like(m.lookup('/x'), { isFolder: true, size: 0 });
  t.is(m.lookup('/x')?.rev, undefined);
  m.applyPage([file('/x/in.sif')]);
  m.applyPage([folder('/X')]);
  t.deepEqual(tree(m), ['d:/x', 'f:/x/in.sif']);
  t.is(m.lookup('/x')?.pathDisplay, '/X');
});

test('deleted removes the path and its subtree, and nothing that only shares a prefix', async (t) => {
  const m = await mirror(t);
  m.applyPage([file('/a/b/c/d.sif'), file('/a/e.sif'), file('/a-b'), file('/a.b/f'), file('/a0/g'), file('/ab/h')]);
  m.applyPage([deleted('/A')]);
  t.deepEqual(tree(m), ['d:/a.b', 'd:/a0', 'd:/ab', 'f:/a-b', 'f:/a.b/f', 'f:/a0/g', 'f:/ab/h']);
  m.applyPage([deleted('/does/not/exist'), deleted('/ab/h')]);
  t.deepEqual(m.children('/ab'), []);
  t.truthy(m.lookup('/ab'));
});

test('entries apply in page order: a move arrives as deleted(old) + new entries', async (t) => {
  const m = await mirror(t);
  m.applyPage([folder('/old'), file('/old/1.sif'), folder('/old/sub'), file('/old/sub/2.sif')]);
  m.applyPage([deleted('/old'), folder('/new'), file('/new/1.sif'), folder('/new/sub'), file('/new/sub/2.sif')]);
  t.deepEqual(tree(m), ['d:/new', 'd:/new/sub', 'f:/new/1.sif', 'f:/new/sub/2.sif']);
  // Re-created in the same page after its parent was deleted: the parent comes back.
  m.applyPage([file('/p/q/r.sif'), deleted('/p'), file('/p/q/s.sif')]);
  t.deepEqual(tree(m).filter((e) => e.includes('/p')), ['d:/p', 'd:/p/q', 'f:/p/q/s.sif']);
});

test('children come in name order, only direct children', async (t) => {
  const m = await mirror(t);
  m.applyPage([file('/c/b.sif'), file('/c/A.sif'), folder('/c/a-dir'), file('/c/a-dir/deep.sif'), file('/c/_x.sif'), file('/top')]);
  t.deepEqual(
    m.children('/c').map((e) => e.name),
    ['A.sif', '_x.sif', 'a-dir', 'b.sif'],
  );
  t.deepEqual(
    m.children('').map((e) => e.name),
    ['c', 'top'],
  );
});

test('replaceAll swaps the whole tree; clear empties it; count', async (t) => {
  const m = await mirror(t);
  m.applyPage([file('/old/1'), file('/keep/2')]);
  m.replaceAll([file('/keep/2'), file('/fresh/3')]);
  t.deepEqual(tree(m), ['d:/fresh', 'd:/keep', 'f:/fresh/3', 'f:/keep/2']);
  t.is(m.count(), 4);
  m.clear();
  t.deepEqual(tree(m), []);
  t.is(m.count(), 0);
});

test('CatalogPort upsert/remove: a local change before the feed echoes it; known folder times are kept', async (t) => {
  const m = await mirror(t, 777);
  m.upsert({ pathLower: '/new/dir', pathDisplay: '/New/Dir', name: 'Dir', isFolder: true, size: 0, mtimeMs: 5000 });
  t.like(m.lookup('/new'), { isFolder: true, mtimeMs: 777 });
  t.like(m.lookup('/new/dir'), { isFolder: true, mtimeMs: 5000 });
  // The feed's echo (folders have no time in Dropbox) keeps the known time.
  m.applyPage([folder('/New/Dir')]);
  t.like(m.lookup('/new/dir'), { mtimeMs: 5000 });
  m.upsert({ pathLower: '/new/dir/f.sif', pathDisplay: '/New/Dir/f.sif', name: 'f.sif', isFolder: false, id: 'id:1', rev: 'abcdef0123', size: 3, contentHash: 'h', mtimeMs: 9000 });
  t.deepEqual(m.lookup('/new/dir/f.sif'), {
    pathLower: '/new/dir/f.sif', pathDisplay: '/New/Dir/f.sif', name: 'f.sif', isFolder: false, id: 'id:1', rev: 'abcdef0123', size: 3, contentHash: 'h', mtimeMs: 9000,
  });
  // A file upserted over a folder replaces the subtree
  m.upsert({ pathLower: '/new', pathDisplay: '/new', name: 'new', isFolder: false, size: 1, mtimeMs: 1 });
  t.deepEqual(tree(m), ['f:/new']);
  m.remove('/new');
  t.deepEqual(tree(m), []);
  m.applyPage([file('/a/b'), file('/c')]);
  m.remove('');
  t.is(m.count(), 0);
});

test('the mirror is in the file: a second connection sees it', async (t) => {
  const { db, folder: dir } = await openDb(t);
  new RemoteMirror(db.fast).applyPage([file('/persist/me.sif', 3)]);
  const { db: db2 } = await openDb(t, dir);
  t.like(new RemoteMirror(db2.fast).lookup('/persist/me.sif'), { size: 3 });
});

test('10,000 entries: applyPage, children of a 10,000-entry folder, lookups, replaceAll (times logged)', async (t) => {
  const m = await mirror(t);
  const page: Meta[] = Array.from({ length: 10_000 }, (_, i) => file(`/big/img${String(i).padStart(5, '0')}:latest.sif`, i));
  // the folder's own entry last: children before parents, as a recursive listing may send them
  page.push(folder('/big'));
  let t0 = performance.now();
  m.applyPage(page);
  t.log(`applyPage(10,001 entries): ${(performance.now() - t0).toFixed(1)} ms`);
  t.is(m.count(), 10_001);

  t0 = performance.now();
  const kids = m.children('/big');
  t.log(`children() of a 10,000-entry folder: ${(performance.now() - t0).toFixed(1)} ms`);
  t.is(kids.length, 10_000);
  t.is(kids[0]?.name, 'img00000:latest.sif');
  t.is(kids[9999]?.name, 'img09999:latest.sif');

  t0 = performance.now();
  for (let i = 0; i < 10_000; i += 7) t.truthy(m.lookup(`/big/img${String(i).padStart(5, '0')}:latest.sif`));
  t.log(`lookup(): ${((performance.now() - t0) / Math.ceil(10_000 / 7)).toFixed(4)} ms each (1,429 lookups)`);

  t0 = performance.now();
  const n = m.count();
  t.log(`count() of ${n} rows: ${(performance.now() - t0).toFixed(2)} ms`);

  t0 = performance.now();
  m.replaceAll(page.slice(0, 5000));
  t.log(`replaceAll(5,000 entries over 10,001): ${(performance.now() - t0).toFixed(1)} ms`);
  t.is(m.count(), 5001);

  t0 = performance.now();
  m.applyPage([deleted('/big')]);
  t.log(`deleted of a 5,000-entry folder: ${(performance.now() - t0).toFixed(1)} ms`);
  t.is(m.count(), 0);
});
