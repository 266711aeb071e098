/**
 * SDK conformance: metadata, listing and change tracking, and namespace mutations
 * (dropbox-api.md §1–§5.2, §5.6), driven through the official `dropbox` SDK 10.34.
 */
import test, { type ExecutionContext } from 'ava';
import type { Dropbox } from 'dropbox';
import { endpointFetch } from '../../src/dropbox/endpoint.js';
import { startEmulator, sdk } from '../helpers/emulator.js';
import { apiError, checkFile, checkFolder, down, drain, expect400, expect409, listAll, sleep, summaryRe, up, ID } from './sdk-common.js';

const NOT_FOUND = { '.tag': 'path', path: { '.tag': 'not_found' } };

async function meta(dbx: Dropbox, path: string, extra: Record<string, unknown> = {}): Promise<any> {
  return (await dbx.filesGetMetadata({ path, ...extra })).result;
}

test('get_metadata: file and folder carry .tag; lookups are case-insensitive and case-preserving', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const content = Buffer.from('hello world');
  const uploaded = await up(dbx, '/Foo/Bar.txt', content);
  checkFile(t, uploaded, { tagged: false, path: '/Foo/Bar.txt', content });

  const m = await meta(dbx, '/foo/bar.TXT');
  checkFile(t, m, { tagged: true, path: '/Foo/Bar.txt', content });
  t.is(m.id, uploaded.id);
  t.is(m.rev, uploaded.rev);
  t.is(m.client_modified, uploaded.client_modified);

  const f = await meta(dbx, '/FOO');
  checkFolder(t, f, { tagged: true, path: '/Foo' });
  t.not(f.id, m.id);
});

test('get_metadata: by id: follows the file across overwrites; folders too', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const first = await up(dbx, '/r.txt', 'one');
  const second = await up(dbx, '/r.txt', 'two!', { mode: { '.tag': 'overwrite' } });
  t.not(first.rev, second.rev);
  const byId = await meta(dbx, first.id);
  t.is(byId['.tag'], 'file');
  t.is(byId.path_lower, '/r.txt');
  t.is(byId.rev, second.rev);
  const folder = (await dbx.filesCreateFolderV2({ path: '/Dir' })).result as any;
  t.is((await meta(dbx, folder.metadata.id)).path_display, '/Dir');
});

test('get_metadata: rev: paths name a revision, the current one and older ones (§3, §5.2)', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const first = await up(dbx, '/r.txt', 'one');
  const cur = await meta(dbx, `rev:${first.rev}`);
  t.is(cur.rev, first.rev);
  const second = await up(dbx, '/r.txt', 'two!', { mode: { '.tag': 'overwrite' } });
  t.is((await meta(dbx, `rev:${second.rev}`)).size, 4);
  const old = await meta(dbx, `rev:${first.rev}`);
  t.is(old['.tag'], 'file');
  t.is(old.rev, first.rev);
  t.is(old.size, 3);
  t.is(old.content_hash, first.content_hash);
});

test('rev: of a file from before a move (of it or of its folder) still reads its bytes', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const a = await up(dbx, '/A/f.txt', 'first');
  const b = await up(dbx, '/b.txt', 'second');
  await dbx.filesMoveV2({ from_path: '/A', to_path: '/c/moved' });
  await dbx.filesMoveV2({ from_path: '/b.txt', to_path: '/B2.txt' });
  for (const [old, bytes, now] of [[a, 'first', '/c/moved/f.txt'], [b, 'second', '/B2.txt']] as const) {
    const d = await down(dbx, `rev:${old.rev}`);
    t.is(d.bytes.toString(), bytes);
    t.is(d.meta.rev, old.rev);
    t.is((await meta(dbx, now)).content_hash, old.content_hash);
  }
});

test('get_metadata: not_found, root and malformed paths, deleted entries with include_deleted', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  await expect409(t, dbx.filesGetMetadata({ path: '/nope.txt' }), NOT_FOUND, 'path/not_found');
  await expect409(t, dbx.filesGetMetadata({ path: '/no/such/dir/x' }), NOT_FOUND, 'path/not_found');
  await expect400(t, dbx.filesGetMetadata({ path: '' }));
  await expect400(t, dbx.filesGetMetadata({ path: '/' }));
  await expect400(t, dbx.filesGetMetadata({ path: 'relative.txt' }));
  await expect400(t, dbx.filesGetMetadata({ path: '/x', bogus_field: true } as any));

  await up(dbx, '/Gone.txt', 'bye');
  await dbx.filesDeleteV2({ path: '/gone.txt' });
  await expect409(t, dbx.filesGetMetadata({ path: '/Gone.txt' }), NOT_FOUND, 'path/not_found');
  const d = await meta(dbx, '/gone.txt', { include_deleted: true });
  t.is(d['.tag'], 'deleted');
  t.is(d.name, 'Gone.txt');
  t.is(d.path_lower, '/gone.txt');
  t.false('id' in d);
  t.false('rev' in d);
});

test('list_folder: result shape, tagged entries, recursive vs direct children', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const empty = (await dbx.filesListFolder({ path: '' })).result as any;
  t.deepEqual(Object.keys(empty).sort(), ['cursor', 'entries', 'has_more']);
  t.deepEqual(empty.entries, []);
  t.is(empty.has_more, false);
  t.is(typeof empty.cursor, 'string');
  t.true(empty.cursor.length > 0);

  const a = Buffer.from('aaa');
  await up(dbx, '/A.txt', a);
  await up(dbx, '/Sub/B.txt', 'bb');
  await up(dbx, '/Sub/Deeper/C.txt', 'c');

  const top = await listAll(dbx, { path: '' });
  t.deepEqual(top.entries.map((e) => e.path_lower).sort(), ['/a.txt', '/sub']);
  for (const e of top.entries) {
    if (e.path_lower === '/a.txt') checkFile(t, e, { tagged: true, path: '/A.txt', content: a });
    else checkFolder(t, e, { tagged: true, path: '/Sub' });
  }

  const all = await listAll(dbx, { path: '', recursive: true });
  t.deepEqual(all.entries.map((e) => e.path_lower).sort(), ['/a.txt', '/sub', '/sub/b.txt', '/sub/deeper', '/sub/deeper/c.txt']);
  for (const e of all.entries) t.true(['file', 'folder'].includes(e['.tag']));

  const sub = await listAll(dbx, { path: '/SUB', recursive: true });
  // §5.1: a recursive listing of a non-root folder may include the folder itself; skip it.
  t.deepEqual(
    sub.entries.map((e) => e.path_lower).filter((p) => p !== '/sub').sort(),
    ['/sub/b.txt', '/sub/deeper', '/sub/deeper/c.txt'],
  );
  const subDirect = await listAll(dbx, { path: '/sub' });
  t.deepEqual(subDirect.entries.map((e) => e.path_display).sort(), ['/Sub/B.txt', '/Sub/Deeper']);
});

test('list_folder: errors (not_found, not_folder, "/" as root, limit out of range)', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  await up(dbx, '/file.txt', 'x');
  await expect409(t, dbx.filesListFolder({ path: '/missing' }), NOT_FOUND, 'path/not_found');
  await expect409(t, dbx.filesListFolder({ path: '/file.txt' }), { '.tag': 'path', path: { '.tag': 'not_folder' } }, 'path/not_folder');
  await expect400(t, dbx.filesListFolder({ path: '/' }));
  await expect400(t, dbx.filesListFolder({ path: 'file.txt' }));
  await expect400(t, dbx.filesListFolder({ path: '', limit: 0 }));
  await expect400(t, dbx.filesListFolder({ path: '', limit: 2001 }));
  await expect409(
    t,
    dbx.filesListFolderGetLatestCursor({ path: '/missing' }),
    NOT_FOUND,
    'path/not_found',
  );
});

test('list_folder: paging with limit covers every entry exactly once', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const expected: string[] = [];
  for (let i = 0; i < 25; i++) {
    const name = `/p/f${String(i).padStart(2, '0')}.txt`;
    expected.push(name);
    await up(dbx, name, `file ${i}`);
  }
  const listing = await listAll(dbx, { path: '/p', limit: 10 });
  t.true(listing.pages[0].has_more, 'first page of 25 entries with limit 10 must have has_more');
  t.true(listing.pages.length >= 2, `pages: ${listing.pages.length}`);
  t.is(listing.pages.at(-1).has_more, false);
  for (const p of listing.pages) t.is(typeof p.cursor, 'string');
  const paths = listing.entries.map((e) => e.path_lower);
  t.is(new Set(paths).size, paths.length, 'an entry appeared on two pages');
  t.deepEqual(paths.sort(), expected);

  // The final cursor is a bookmark: nothing new.
  const after = await drain(dbx, listing.cursor);
  t.deepEqual(after.entries, []);
});

/** Applies list_folder/continue entries in order (§5.1 change semantics) to a path_lower → entry map. */
function apply(model: Map<string, any>, entries: any[]): void {
  const dropSubtree = (p: string): void => {
    for (const k of [...model.keys()]) if (k === p || k.startsWith(`${p}/`)) model.delete(k);
  };
  for (const e of entries) {
    const p = e.path_lower as string;
    if (e['.tag'] === 'deleted') dropSubtree(p);
    else if (e['.tag'] === 'file') {
      dropSubtree(p);
      model.set(p, e);
    } else if (e['.tag'] === 'folder') {
      if (model.get(p)?.['.tag'] !== 'folder') dropSubtree(p);
      model.set(p, e);
    } else throw new Error(`unexpected entry ${JSON.stringify(e)}`);
  }
}

test('get_latest_cursor + continue: uploads, deletes, moves and overwrites arrive in order', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  await up(dbx, '/a.txt', 'a');
  const b = await up(dbx, '/dir/b.txt', 'b');
  const c = await up(dbx, '/dir/sub/c.txt', 'c');
  await up(dbx, '/keep.txt', 'keep');
  const initial = await listAll(dbx, { path: '', recursive: true });

  const latest = (await dbx.filesListFolderGetLatestCursor({ path: '', recursive: true })).result as any;
  t.deepEqual(Object.keys(latest), ['cursor']);
  const quiet = await drain(dbx, latest.cursor);
  t.deepEqual(quiet.entries, []);
  t.is(quiet.pages.at(-1).has_more, false);

  const added = await up(dbx, '/new.txt', 'new');
  await dbx.filesDeleteV2({ path: '/a.txt' });
  await dbx.filesMoveV2({ from_path: '/dir', to_path: '/moved' });
  const kept = await up(dbx, '/keep.txt', 'keep, changed', { mode: 'overwrite' });

  const changes = await drain(dbx, quiet.cursor);
  const byPath = (p: string, tag: string): any => changes.entries.find((e) => e.path_lower === p && e['.tag'] === tag);
  t.truthy(byPath('/new.txt', 'file'));
  t.is(byPath('/new.txt', 'file')?.rev, added.rev);
  const del = byPath('/a.txt', 'deleted');
  t.truthy(del, 'delete of /a.txt not reported');
  t.like(del, { name: 'a.txt', path_display: '/a.txt' });
  t.truthy(byPath('/dir', 'deleted'), 'move must report deleted(old path)');
  t.truthy(byPath('/moved', 'folder'));
  t.is(byPath('/moved/b.txt', 'file')?.id, b.id);
  t.is(byPath('/moved/sub/c.txt', 'file')?.id, c.id);
  t.is(byPath('/keep.txt', 'file')?.rev, kept.rev);
  for (const e of changes.entries) {
    if (e['.tag'] === 'file') checkFile(t, e, { tagged: true });
    if (e['.tag'] === 'folder') checkFolder(t, e, { tagged: true });
  }

  // Replaying the feed over the initial listing gives what a fresh listing shows.
  const model = new Map<string, any>(initial.entries.map((e) => [e.path_lower, e]));
  apply(model, changes.entries);
  const fresh = await listAll(dbx, { path: '', recursive: true });
  t.deepEqual([...model.keys()].sort(), fresh.entries.map((e) => e.path_lower).sort());
  for (const e of fresh.entries) if (e['.tag'] === 'file') t.is(model.get(e.path_lower)?.rev, e.rev, e.path_lower);

  t.deepEqual((await drain(dbx, changes.cursor)).entries, []);
});

test('continue: a cursor is scoped to its folder; delete + re-create arrive in order; deleted entries have no id', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  await up(dbx, '/watched/x.txt', 'x1');
  const { cursor } = (await dbx.filesListFolderGetLatestCursor({ path: '/Watched' })).result;
  await up(dbx, '/elsewhere.txt', 'e');
  await up(dbx, '/other/y.txt', 'y');
  t.deepEqual((await drain(dbx, cursor)).entries, [], 'changes outside the folder must not show up');

  await dbx.filesDeleteV2({ path: '/watched/x.txt' });
  const again = await up(dbx, '/watched/X.txt', 'x2, recreated');
  const changes = await drain(dbx, cursor);
  const seq = changes.entries.map((e) => `${e['.tag']}:${e.path_lower}`);
  const iDel = seq.indexOf('deleted:/watched/x.txt');
  const iFile = seq.lastIndexOf('file:/watched/x.txt');
  t.true(iDel >= 0 && iFile > iDel, `order: ${seq.join(', ')}`);
  t.is(changes.entries[iFile]?.rev, again.rev);
  for (const e of changes.entries.filter((x) => x['.tag'] === 'deleted')) {
    t.false('id' in e);
    t.false('rev' in e);
    t.is(typeof e.name, 'string');
  }
  const model = new Map<string, any>([['/watched/x.txt', { '.tag': 'file' }]]);
  apply(model, changes.entries);
  t.deepEqual([...model.keys()], ['/watched/x.txt']);

  const e = await apiErrorOr400(t, dbx.filesListFolderContinue({ cursor: 'not-a-real-cursor' }));
  if (e.status === 409) t.deepEqual(e.error.error, { '.tag': 'reset' });
});

test('admin reset-cursors: continue and longpoll answer 409 reset; a fresh listing works again', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  await up(dbx, '/x.txt', 'x');
  const { cursor } = (await dbx.filesListFolder({ path: '' })).result;
  await emu.admin('POST', '/reset-cursors');
  await expect409(t, dbx.filesListFolderContinue({ cursor }), { '.tag': 'reset' }, 'reset');
  await expect409(t, dbx.filesListFolderLongpoll({ cursor, timeout: 30 }), { '.tag': 'reset' }, 'reset');

  const again = await listAll(dbx, { path: '' });
  t.deepEqual(again.entries.map((e) => e.path_lower), ['/x.txt']);
  await up(dbx, '/y.txt', 'y');
  t.deepEqual((await drain(dbx, again.cursor)).entries.map((e) => e.path_lower), ['/y.txt']);
});

test('longpoll: no change → changes:false within the capped wait; backoff when configured', async (t) => {
  const emu = await startEmulator(t);
  await emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  const sent: Array<{ url: string; auth: boolean }> = [];
  const fetchImpl = endpointFetch(emu.url);
  const recording: typeof fetchImpl = (url, init) => {
    sent.push({ url: typeof url === 'string' ? url : 'href' in url ? url.href : url.url, auth: new Headers(init?.headers as any).has('authorization') });
    return fetchImpl(url, init);
  };
  const dbx = sdk(emu, { fetch: recording });
  const { cursor } = (await dbx.filesListFolderGetLatestCursor({ path: '' })).result;
  const t0 = Date.now();
  const r = (await dbx.filesListFolderLongpoll({ cursor, timeout: 30 })).result as any;
  t.true(Date.now() - t0 < 10_000);
  t.deepEqual(r, { changes: false });
  const polls = sent.filter((s) => s.url.includes('/2/files/list_folder/longpoll'));
  t.is(polls.length, 1);
  t.true(polls[0]?.url.startsWith('https://notify.dropboxapi.com/'));
  t.false(polls[0]?.auth, 'longpoll is noauth: the SDK sends no Authorization');

  await emu.admin('POST', '/config', { longpollBackoffSec: 3 });
  const r2 = (await dbx.filesListFolderLongpoll({ cursor, timeout: 30 })).result as any;
  t.is(r2.changes, false);
  t.is(r2.backoff, 3);
});

test('longpoll: wakes with changes:true soon after an upload by another client', async (t) => {
  const emu = await startEmulator(t);
  await emu.admin('POST', '/config', { longpollMaxWaitSec: 25 });
  const watcher = sdk(emu);
  const writer = sdk(emu);
  const { cursor } = (await watcher.filesListFolderGetLatestCursor({ path: '', recursive: true })).result;

  let settled = false;
  const t0 = Date.now();
  const poll = watcher.filesListFolderLongpoll({ cursor, timeout: 30 }).finally(() => (settled = true));
  await sleep(700);
  t.false(settled, 'longpoll returned before anything changed');
  await up(writer, '/deep/woke.txt', 'wake up');
  const r = (await poll).result as any;
  const elapsed = Date.now() - t0;
  t.is(r.changes, true);
  t.true(elapsed < 10_000, `woke after ${elapsed} ms`);
  const changes = await drain(watcher, cursor);
  t.true(changes.entries.some((e) => e.path_lower === '/deep/woke.txt' && e['.tag'] === 'file'));
});

test('longpoll: pending changes return at once; invalid cursor; timeout bounds', async (t) => {
  const emu = await startEmulator(t);
  await emu.admin('POST', '/config', { longpollMaxWaitSec: 25 });
  const dbx = sdk(emu);
  const { cursor } = (await dbx.filesListFolderGetLatestCursor({ path: '' })).result;
  await up(dbx, '/pending.txt', 'p');
  const t0 = Date.now();
  t.is(((await dbx.filesListFolderLongpoll({ cursor, timeout: 30 })).result as any).changes, true);
  t.true(Date.now() - t0 < 5_000);

  const e = await apiErrorOr400(t, dbx.filesListFolderLongpoll({ cursor: 'not-a-real-cursor', timeout: 30 }));
  if (e.status === 409) t.deepEqual(e.error.error, { '.tag': 'reset' });

  await expect400(t, dbx.filesListFolderLongpoll({ cursor, timeout: 29 }));
  await expect400(t, dbx.filesListFolderLongpoll({ cursor, timeout: 481 }));
});

async function apiErrorOr400(t: ExecutionContext, p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    const err = e as any;
    t.true([400, 409].includes(err.status), `status ${err.status}`);
    return err;
  }
  t.fail('expected an error');
  return { status: 0 };
}

test('delete_v2: returns the item as it was (tagged); folder delete removes the subtree', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const content = Buffer.from('delete me');
  const f = await up(dbx, '/F.txt', content);
  await up(dbx, '/d/x.txt', 'x');
  await up(dbx, '/d/y/z.txt', 'z');

  const r = (await dbx.filesDeleteV2({ path: '/f.TXT' })).result as any;
  t.deepEqual(Object.keys(r), ['metadata']);
  checkFile(t, r.metadata, { tagged: true, path: '/F.txt', content });
  t.is(r.metadata.rev, f.rev);
  t.is(r.metadata.id, f.id);
  await expect409(t, dbx.filesGetMetadata({ path: '/F.txt' }), NOT_FOUND, 'path/not_found');

  const dir = (await dbx.filesDeleteV2({ path: '/D' })).result as any;
  checkFolder(t, dir.metadata, { tagged: true, path: '/d' });
  await expect409(t, dbx.filesGetMetadata({ path: '/d/y/z.txt' }), NOT_FOUND, 'path/not_found');
  await expect409(t, dbx.filesGetMetadata({ path: '/d/y' }), NOT_FOUND, 'path/not_found');
  t.deepEqual((await listAll(dbx, { path: '', recursive: true })).entries, []);

  await expect409(
    t,
    dbx.filesDeleteV2({ path: '/F.txt' }),
    { '.tag': 'path_lookup', path_lookup: { '.tag': 'not_found' } },
    'path_lookup/not_found',
  );
  await expect400(t, dbx.filesDeleteV2({ path: 'F.txt' }));
});

test('move_v2: keeps id, creates missing parents, moves a folder with its children', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const content = Buffer.from('moving');
  const a = await up(dbx, '/src/a.txt', content);
  const b = await up(dbx, '/src/inner/b.txt', 'b');

  const r = (await dbx.filesMoveV2({ from_path: '/SRC/A.txt', to_path: '/dst/deep/A2.txt' })).result as any;
  t.deepEqual(Object.keys(r), ['metadata']);
  checkFile(t, r.metadata, { tagged: true, path: '/dst/deep/A2.txt', content });
  t.is(r.metadata.id, a.id);
  await expect409(t, dbx.filesGetMetadata({ path: '/src/a.txt' }), NOT_FOUND, 'path/not_found');
  checkFolder(t, await meta(dbx, '/dst/deep'), { tagged: true, path: '/dst/deep' });
  t.deepEqual((await down(dbx, '/dst/deep/a2.txt')).bytes, content);
  t.is((await meta(dbx, a.id)).path_lower, '/dst/deep/a2.txt');

  const srcId = (await meta(dbx, '/src')).id;
  const moved = (await dbx.filesMoveV2({ from_path: '/src', to_path: '/Moved' })).result as any;
  checkFolder(t, moved.metadata, { tagged: true, path: '/Moved' });
  t.is(moved.metadata.id, srcId);
  const inner = await meta(dbx, '/moved/inner/b.txt');
  t.is(inner.id, b.id);
  t.is(inner.path_lower, '/moved/inner/b.txt');
  await expect409(t, dbx.filesGetMetadata({ path: '/src' }), NOT_FOUND, 'path/not_found');
});

test('move_v2: never overwrites (to/conflict/file|folder); from_lookup; folder into itself', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const a = await up(dbx, '/a.txt', 'a');
  const b = await up(dbx, '/b.txt', 'b');
  await dbx.filesCreateFolderV2({ path: '/folder' });
  await up(dbx, '/folder/sub/x.txt', 'x');

  await expect409(
    t,
    dbx.filesMoveV2({ from_path: '/a.txt', to_path: '/B.txt' }),
    { '.tag': 'to', to: { '.tag': 'conflict', conflict: { '.tag': 'file' } } },
    'to/conflict/file',
  );
  await expect409(
    t,
    dbx.filesMoveV2({ from_path: '/a.txt', to_path: '/folder' }),
    { '.tag': 'to', to: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } },
    'to/conflict/folder',
  );
  t.is((await meta(dbx, '/a.txt')).rev, a.rev);
  t.is((await meta(dbx, '/b.txt')).rev, b.rev);

  await expect409(
    t,
    dbx.filesMoveV2({ from_path: '/missing.txt', to_path: '/c.txt' }),
    { '.tag': 'from_lookup', from_lookup: { '.tag': 'not_found' } },
    'from_lookup/not_found',
  );
  await expect409(
    t,
    dbx.filesMoveV2({ from_path: '/folder', to_path: '/folder/sub/inside' }),
    { '.tag': 'cant_move_folder_into_itself' },
    'cant_move_folder_into_itself',
  );
  t.is((await meta(dbx, '/folder/sub/x.txt'))['.tag'], 'file');
});

test('copy_v2: new id, same content, source intact; folder copy copies the subtree; errors', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const content = Buffer.from('copy me');
  const a = await up(dbx, '/a.txt', content);
  const r = (await dbx.filesCopyV2({ from_path: '/a.txt', to_path: '/Copies/B.txt' })).result as any;
  t.deepEqual(Object.keys(r), ['metadata']);
  checkFile(t, r.metadata, { tagged: true, path: '/Copies/B.txt', content });
  t.not(r.metadata.id, a.id);
  t.is((await meta(dbx, '/a.txt')).id, a.id);
  t.deepEqual((await down(dbx, '/copies/b.txt')).bytes, content);
  t.deepEqual((await down(dbx, '/a.txt')).bytes, content);

  const x = await up(dbx, '/d/x.txt', 'x');
  const dirCopy = (await dbx.filesCopyV2({ from_path: '/d', to_path: '/e' })).result as any;
  checkFolder(t, dirCopy.metadata, { tagged: true, path: '/e' });
  t.not(dirCopy.metadata.id, (await meta(dbx, '/d')).id);
  const ex = await meta(dbx, '/e/x.txt');
  t.not(ex.id, x.id);
  t.is(ex.content_hash, x.content_hash);
  t.is((await meta(dbx, '/d/x.txt')).id, x.id);

  await expect409(
    t,
    dbx.filesCopyV2({ from_path: '/a.txt', to_path: '/copies/b.txt' }),
    { '.tag': 'to', to: { '.tag': 'conflict', conflict: { '.tag': 'file' } } },
    'to/conflict/file',
  );
  await expect409(
    t,
    dbx.filesCopyV2({ from_path: '/zzz', to_path: '/yyy' }),
    { '.tag': 'from_lookup', from_lookup: { '.tag': 'not_found' } },
    'from_lookup/not_found',
  );
});

test('create_folder_v2: untagged FolderMetadata, parents, conflicts, autorename, malformed paths', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const r = (await dbx.filesCreateFolderV2({ path: '/New Folder' })).result as any;
  t.deepEqual(Object.keys(r), ['metadata']);
  checkFolder(t, r.metadata, { tagged: false, path: '/New Folder' });
  t.is((await meta(dbx, '/new folder')).id, r.metadata.id);

  await expect409(
    t,
    dbx.filesCreateFolderV2({ path: '/NEW FOLDER' }),
    { '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } },
    'path/conflict/folder',
  );
  await up(dbx, '/file.txt', 'f');
  await expect409(
    t,
    dbx.filesCreateFolderV2({ path: '/file.txt' }),
    { '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'file' } } },
    'path/conflict/file',
  );
  await expect409(
    t,
    dbx.filesCreateFolderV2({ path: '/file.txt/sub' }),
    { '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'file_ancestor' } } },
    'path/conflict/file_ancestor',
  );

  const renamed = (await dbx.filesCreateFolderV2({ path: '/New Folder', autorename: true })).result as any;
  checkFolder(t, renamed.metadata, { tagged: false });
  t.not(renamed.metadata.path_lower, '/new folder');
  t.not(renamed.metadata.id, r.metadata.id);
  t.is((await meta(dbx, '/New Folder')).id, r.metadata.id);
  t.is((await meta(dbx, renamed.metadata.path_lower))['.tag'], 'folder');

  const deep = (await dbx.filesCreateFolderV2({ path: '/a/b/c' })).result as any;
  checkFolder(t, deep.metadata, { tagged: false, path: '/a/b/c' });
  checkFolder(t, await meta(dbx, '/a/b'), { tagged: true, path: '/a/b' });

  const bad = await apiError(t, dbx.filesCreateFolderV2({ path: '/x//y' }), 409, /^path\/malformed_path\/\.{0,3}$/);
  t.is(bad.error['.tag'], 'path');
  t.is(bad.error.path?.['.tag'], 'malformed_path');
  await expect400(t, dbx.filesCreateFolderV2({ path: '/' }));
  await expect400(t, dbx.filesCreateFolderV2({ path: 'relative' }));
  await expect400(t, dbx.filesCreateFolderV2({ path: '/ok', root: true } as any));
});

test('ids and summaries: every id looks like id:…, summaries follow the tag chain', (t) => {
  // Guards the shared regexes themselves, so a too-lax pattern can't hide a failure elsewhere.
  t.regex('id:a4ayc_80_OEAAAAAAAAAXw', ID);
  t.notRegex('a4ayc_80_OEAAAAAAAAAXw', ID);
  t.regex('path/not_found/..', summaryRe('path/not_found'));
  t.regex('path/not_found/', summaryRe('path/not_found'));
  t.notRegex('path/not_found/....', summaryRe('path/not_found'));
  t.notRegex('path/not_found', summaryRe('path/not_found'));
  t.notRegex('path/not_found_x/', summaryRe('path/not_found'));
});
