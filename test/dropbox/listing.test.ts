/**
 * Listing, change feed, longpoll and shared links through DropboxClient on a real emulator.
 */
import test from 'ava';
import { sdk, startEmulator } from '../helpers/emulator.js';
import { client, remoteError, stats } from './helpers.js';

async function putSmall(emu: Parameters<typeof sdk>[0], p: string, content = p): Promise<void> {
  await sdk(emu).filesUpload({ path: p, contents: Buffer.from(content), mode: { '.tag': 'overwrite' } });
}

test('listFolder with limit 5 on 12 files, then listContinue until !hasMore: every file once', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu);
  const names = Array.from({ length: 12 }, (_, i) => `/dir/f${String(i).padStart(2, '0')}.txt`);
  for (const n of names) await putSmall(emu, n);
  let page = await c.listFolder('/dir', false, 5);
  const seen = [...page.entries];
  let pages = 1;
  while (page.hasMore) {
    page = await c.listContinue(page.cursor);
    seen.push(...page.entries);
    pages++;
    if (pages > 50) break;
  }
  t.true(pages >= 3, `${pages} pages`);
  t.deepEqual(seen.map((e) => e.pathLower).sort(), names.map((n) => n.toLowerCase()));
  for (const e of seen) {
    t.is(e.kind, 'file');
    if (e.kind === 'file') {
      t.is(e.size, e.pathDisplay.length);
      t.regex(e.contentHash, /^[0-9a-f]{64}$/);
      t.regex(e.rev, /^[0-9a-f]{9,}$/);
      t.regex(e.id, /^id:/);
    }
  }
  // The final cursor follows changes
  await putSmall(emu, '/dir/new.txt');
  const changes = await c.listContinue(page.cursor);
  t.deepEqual(
    changes.entries.map((e) => [e.kind, e.pathLower]),
    [['file', '/dir/new.txt']],
  );
});

test('listAll: recursive listing with folders, the cursor sees deletes', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu);
  await putSmall(emu, '/a/one.txt');
  await putSmall(emu, '/a/b/two.txt');
  await c.createFolder('/empty');
  const all = await c.listAll('', true);
  t.deepEqual(all.entries.map((e) => `${e.kind}:${e.pathLower}`).sort(), [
    'file:/a/b/two.txt',
    'file:/a/one.txt',
    'folder:/a',
    'folder:/a/b',
    'folder:/empty',
  ]);
  await c.delete('/a/one.txt');
  const next = await c.listContinue(all.cursor);
  t.deepEqual(next.entries.map((e) => `${e.kind}:${e.pathLower}`), ['deleted:/a/one.txt']);
  t.is(await c.latestCursor('', true).then((cur) => typeof cur), 'string');
});

test('listContinue after reset-cursors → RemoteError reset (not retried)', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu);
  const { cursor } = await c.listAll('', true);
  await emu.admin('POST', '/reset-cursors');
  await remoteError(t, c.listContinue(cursor), 'reset');
  t.is((await stats(emu)).requests['files/list_folder/continue'], 1);
});

test('longpoll: changes true after an upload by another client', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu);
  const cursor = await c.latestCursor('', true);
  const poll = c.longpoll(cursor, 30);
  await new Promise((r) => setTimeout(r, 200));
  await putSmall(emu, '/from-elsewhere.txt');
  const r = await poll;
  t.true(r.changes);
  // Already behind: answers at once
  t.true((await c.longpoll(cursor, 30)).changes);
});

test('longpoll: nothing happens within longpollMaxWaitSec 1 → changes false; backoff is passed on', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu);
  await emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  const cursor = await c.latestCursor('', true);
  const t0 = performance.now();
  const r = await c.longpoll(cursor, 30);
  t.false(r.changes);
  t.true(performance.now() - t0 >= 900);
  t.is(r.backoffSec, undefined);
  await emu.admin('POST', '/config', { longpollBackoffSec: 5 });
  t.is((await c.longpoll(cursor, 30)).backoffSec, 5);
});

test('longpoll on a reset cursor → RemoteError reset', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu);
  const cursor = await c.latestCursor('', true);
  await emu.admin('POST', '/reset-cursors');
  await remoteError(t, c.longpoll(cursor, 30), 'reset');
});

test('shareLink twice returns the same URL; revokeSharedLink removes it', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu);
  await putSmall(emu, '/s/img.sif');
  const url = await c.shareLink('/s/img.sif');
  t.regex(url, /^https?:\/\//);
  t.is(await c.shareLink('/s/img.sif'), url);
  t.is(await c.shareLink('/S/IMG.sif'), url, 'case-insensitive path');
  t.deepEqual(await c.listSharedLinks('/s/img.sif', true), [url]);
  await c.revokeSharedLink(url);
  t.deepEqual(await c.listSharedLinks('/s/img.sif', true), []);
  await remoteError(t, c.revokeSharedLink(url));
  const again = await c.shareLink('/s/img.sif');
  t.regex(again, /^https?:\/\//);
  await remoteError(t, c.shareLink('/s/missing.sif'), 'not_found');
});

test('getMetadata, move, delete, account and space usage map their results', async (t) => {
  const emu = await startEmulator(t, { args: ['--display-name', 'Vanessa S'] });
  const c = client(t, emu);
  await putSmall(emu, '/m/a.txt', 'abc');
  const md = await c.getMetadata('/M/A.TXT');
  t.like(md, { kind: 'file', name: 'a.txt', pathLower: '/m/a.txt', pathDisplay: '/m/a.txt', size: 3 });
  t.like(await c.getMetadata('/m'), { kind: 'folder', pathLower: '/m' });
  const moved = await c.move('/m/a.txt', '/m/b.txt');
  t.like(moved, { kind: 'file', pathLower: '/m/b.txt' });
  t.is(await c.getMetadata('/m/a.txt'), undefined);
  await remoteError(t, c.move('/m/a.txt', '/m/c.txt'), 'not_found');
  // parent_rev: only the revision named is deleted; another one is a conflict and stays.
  await remoteError(t, c.delete('/m/b.txt', '0123456789abcdef'), 'conflict');
  t.like(await c.getMetadata('/m/b.txt'), { kind: 'file' });
  t.like(await c.delete('/m/b.txt', moved.kind === 'file' ? moved.rev : ''), { kind: 'file', pathLower: '/m/b.txt' });
  const acct = await c.currentAccount();
  t.is(acct.displayName, 'Vanessa S');
  t.regex(acct.accountId, /^dbid:/);
  const usage = await c.spaceUsage();
  t.true(usage.allocatedBytes > 0);
  t.is(typeof usage.usedBytes, 'number');
});
