/**
 * CatalogSync against a real emulator (first listing in pages, live changes from another
 * client, restart from the saved cursor, another endpoint/account, reset-cursors, a 429 storm,
 * stop), and against a scripted client (10,000 entries, offline start, backoff, no spinning).
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CatalogSync, MountStateDb, RemoteMirror, type SyncClient } from '../../src/catalog/index.js';
import { DropboxClient, type ClientOptions, type ListPage, type Meta } from '../../src/dropbox/client.js';
import { RemoteError } from '../../src/dropbox/errors.js';
import { sdk, startEmulator, type Emulator } from '../helpers/emulator.js';

/** A client on the emulator with its long-lived token; closed at teardown. */
function client(t: ExecutionContext, emu: Emulator, opts: Partial<ClientOptions> = {}): DropboxClient {
  const c = new DropboxClient({ endpoint: emu.url, accessToken: emu.token, workers: 2, ...opts });
  t.teardown(() => c.close());
  return c;
}

interface Stats {
  requests: Record<string, number>;
}
const stats = (emu: Emulator): Promise<Stats> => emu.admin<Stats>('GET', '/stats');
const resetStats = (emu: Emulator): Promise<unknown> => emu.admin('POST', '/stats/reset');
const fault = (emu: Emulator, rule: Record<string, unknown>): Promise<unknown> => emu.admin('POST', '/faults', rule);

async function dbFolder(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-sync-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Rig {
  db: MountStateDb;
  mirror: RemoteMirror;
  sync: CatalogSync;
  logs: string[];
  changes: string[][];
}

/** A MountStateDb (own connection) + mirror + sync; the sync is stopped and the db closed at teardown. */
function rig(
  t: ExecutionContext,
  folder: string,
  c: SyncClient,
  endpoint: string,
  extra: Partial<ConstructorParameters<typeof CatalogSync>[0]> = {},
): Rig {
  const db = MountStateDb.open(folder);
  const mirror = new RemoteMirror(db.fast);
  const logs: string[] = [];
  const changes: string[][] = [];
  const sync = new CatalogSync({
    mirror,
    db: db.fast,
    client: c,
    identity: { endpoint },
    log: (l) => logs.push(l),
    onChange: (p) => changes.push(p),
    ...extra,
  });
  t.teardown(async () => {
    await sync.stop();
    db.close();
  });
  return { db, mirror, sync, logs, changes };
}

/** Waits until `cond()` holds (checked every 25 ms); throws after `limitMs`. Logs how long it took. */
async function until(t: ExecutionContext, what: string, cond: () => boolean, limitMs = 30_000): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > limitMs) throw new Error(`gave up waiting for ${what} after ${limitMs} ms`);
    await sleep(25);
  }
  t.log(`${what}: ${Math.round(performance.now() - t0)} ms`);
}

/** Every row of the mirror as "f:/path" or "d:/path", sorted. */
function tree(m: RemoteMirror, parent = ''): string[] {
  const out: string[] = [];
  for (const e of m.children(parent)) {
    out.push(`${e.isFolder ? 'd' : 'f'}:${e.pathLower}`);
    if (e.isFolder) out.push(...tree(m, e.pathLower));
  }
  return out.sort();
}

async function put(emu: Emulator, p: string, content = p): Promise<void> {
  await sdk(emu).filesUpload({ path: p, contents: Buffer.from(content), mode: { '.tag': 'overwrite' } });
}

/** A few files in nested folders and an empty folder; returns the expected tree. */
async function seed(emu: Emulator): Promise<string[]> {
  const files = ['/keep/a.sif', '/keep/b.sif', '/Coll/x/1.sif', '/Coll/x/2.sif', '/Coll/y/3.sif', '/top.sif'];
  for (let i = 0; i < 14; i++) files.push(`/many/img${String(i).padStart(2, '0')}.sif`);
  for (const f of files) await put(emu, f);
  await sdk(emu).filesCreateFolderV2({ path: '/Empty' });
  const folders = ['/keep', '/coll', '/coll/x', '/coll/y', '/many', '/empty'];
  return [...files.map((f) => `f:${f.toLowerCase()}`), ...folders.map((d) => `d:${d}`)].sort();
}

const fastLongpoll = (emu: Emulator): Promise<unknown> => emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });

test('start(): a full recursive listing in pages of 5 fills the mirror and saves the cursor', async (t) => {
  const emu = await startEmulator(t);
  const expected = await seed(emu);
  const c = client(t, emu);
  await resetStats(emu);
  const r = rig(t, await dbFolder(t), c, emu.url, { pageLimit: 5 });
  await r.sync.start();
  t.deepEqual(tree(r.mirror), expected);
  const s = await stats(emu);
  t.is(s.requests['files/list_folder'], 1);
  t.true((s.requests['files/list_folder/continue'] ?? 0) >= 4, JSON.stringify(s.requests));
  const st = r.sync.status();
  t.is(st.entries, expected.length);
  t.true(st.lastSyncMs > 0);
  t.is(st.lastError, undefined);
  const state = Object.fromEntries(
    r.db.fast.prepare<[], { key: string; value: string }>('SELECT key, value FROM sreg_remote_state').all().map((x) => [x.key, x.value]),
  );
  t.is(state.endpoint, emu.url);
  t.is(state.account_id, (await c.currentAccount()).accountId);
  t.truthy(state.cursor);
  t.like(r.mirror.lookup('/keep/a.sif'), { isFolder: false, size: '/keep/a.sif'.length, name: 'a.sif' });
  t.like(r.mirror.lookup('/coll'), { isFolder: true, pathDisplay: '/Coll' });
});

test('live: a file uploaded by another client appears, a deleted one disappears, a moved folder moves with its children', async (t) => {
  const emu = await startEmulator(t);
  await fastLongpoll(emu);
  await put(emu, '/keep/a.sif');
  const r = rig(t, await dbFolder(t), client(t, emu), emu.url);
  await r.sync.start();

  await put(emu, '/live/new.sif', 'hello');
  await until(t, 'upload visible', () => r.mirror.lookup('/live/new.sif') !== undefined);
  t.like(r.mirror.lookup('/live/new.sif'), { size: 5 });
  t.true(r.changes.some((c) => c.includes('/live/new.sif')));

  await sdk(emu).filesDeleteV2({ path: '/live/new.sif' });
  await until(t, 'delete visible', () => r.mirror.lookup('/live/new.sif') === undefined);
  t.deepEqual(r.mirror.children('/live'), []);

  await put(emu, '/mv/a/1.sif');
  await put(emu, '/mv/a/b/2.sif');
  await until(t, 'folder tree visible', () => r.mirror.lookup('/mv/a/b/2.sif') !== undefined);
  await sdk(emu).filesMoveV2({ from_path: '/mv/a', to_path: '/Moved/A2' });
  await until(t, 'move visible', () => r.mirror.lookup('/moved/a2/b/2.sif') !== undefined && r.mirror.lookup('/mv/a') === undefined);
  t.deepEqual(
    tree(r.mirror).filter((e) => e.includes('/mv') || e.includes('/moved')),
    ['d:/moved', 'd:/moved/a2', 'd:/moved/a2/b', 'd:/mv', 'f:/moved/a2/1.sif', 'f:/moved/a2/b/2.sif'],
  );
  t.is(r.mirror.lookup('/moved/a2')?.pathDisplay, '/Moved/A2');
  t.is(r.sync.status().lastError, undefined);
});

test('restart: a second CatalogSync on the same db catches up from the saved cursor, no full listing', async (t) => {
  const emu = await startEmulator(t);
  await fastLongpoll(emu);
  const expected = await seed(emu);
  const c = client(t, emu);
  const folder = await dbFolder(t);
  const first = rig(t, folder, c, emu.url);
  await first.sync.start();
  await first.sync.stop();
  first.db.close();

  // Changes while nothing was mounted
  await put(emu, '/while-away.sif');
  await sdk(emu).filesDeleteV2({ path: '/keep' });
  await resetStats(emu);
  const second = rig(t, folder, c, emu.url);
  t.is(second.mirror.count(), expected.length, 'the mirror is still in the file');
  await second.sync.start();
  const s = await stats(emu);
  t.is(s.requests['files/list_folder'], undefined, JSON.stringify(s.requests));
  t.true((s.requests['files/list_folder/continue'] ?? 0) >= 1);
  t.deepEqual(tree(second.mirror), [...expected.filter((e) => !e.includes('/keep')), 'f:/while-away.sif'].sort());
});

test('another endpoint or another account: the saved mirror is dropped and listed again', async (t) => {
  const emu = await startEmulator(t);
  const expected = await seed(emu);
  const c = client(t, emu);
  const folder = await dbFolder(t);
  const otherAccount: SyncClient = {
    listFolder: (p, rec, limit) => c.listFolder(p, rec, limit),
    listContinue: (cur) => c.listContinue(cur),
    longpoll: (cur, sec, sig) => c.longpoll(cur, sec, sig),
    currentAccount: () => Promise.resolve({ accountId: 'dbid:someone-else', displayName: 'X', email: 'x@example.com' }),
  };
  const fullListings = async (): Promise<number> => (await stats(emu)).requests['files/list_folder'] ?? 0;
  const round = async (cl: SyncClient, endpoint: string): Promise<Rig> => {
    const r = rig(t, folder, cl, endpoint);
    await r.sync.start();
    await r.sync.stop();
    return r;
  };

  const a = await round(c, emu.url);
  a.mirror.upsert({ pathLower: '/stale', pathDisplay: '/stale', name: 'stale', isFolder: false, size: 1, mtimeMs: 1 });
  t.is(await fullListings(), 1);

  const b = await round(otherAccount, emu.url);
  t.is(await fullListings(), 2, 'another account relists');
  t.deepEqual(tree(b.mirror), expected, 'the stale row went with the old mirror');

  b.mirror.upsert({ pathLower: '/stale', pathDisplay: '/stale', name: 'stale', isFolder: false, size: 1, mtimeMs: 1 });
  const cc = await round(otherAccount, 'http://elsewhere.invalid:1');
  t.is(await fullListings(), 3, 'another endpoint relists');
  t.deepEqual(tree(cc.mirror), expected);

  await round(otherAccount, 'http://elsewhere.invalid:1');
  t.is(await fullListings(), 3, 'same endpoint and account: catch-up only');
});

test('reset-cursors: a full relist, the tree stays right and is never empty meanwhile', async (t) => {
  const emu = await startEmulator(t);
  await fastLongpoll(emu);
  const expected = await seed(emu);
  const r = rig(t, await dbFolder(t), client(t, emu), emu.url, { pageLimit: 3 });
  await r.sync.start();
  await resetStats(emu);

  let samples = 0;
  let missing = 0;
  const sampler = setInterval(() => {
    samples++;
    if (!r.mirror.lookup('/keep/a.sif') || r.mirror.children('/many').length !== 14) missing++;
  }, 2);
  t.teardown(() => clearInterval(sampler));

  await emu.admin('POST', '/reset-cursors');
  await put(emu, '/after-reset.sif');
  await until(t, 'relist done and the new file visible', () => r.mirror.lookup('/after-reset.sif') !== undefined);
  clearInterval(sampler);
  t.true(r.logs.some((l) => l.includes('reset')), r.logs.join('\n'));
  t.is((await stats(emu)).requests['files/list_folder'], 1, 'one full listing');
  t.true(r.changes.some((c) => c.length === 1 && c[0] === ''), 'onChange([""]) after the relist');
  t.is(missing, 0, `${missing} of ${samples} samples saw a missing entry`);
  t.log(`${samples} samples during the relist, none missing`);
  t.deepEqual(tree(r.mirror), [...expected, 'f:/after-reset.sif'].sort());

  // and it keeps following changes with the new cursor
  await put(emu, '/after-relist.sif');
  await until(t, 'next change visible', () => r.mirror.lookup('/after-relist.sif') !== undefined);
});

test('a 429 storm on continue and longpoll: the mirror answers at once throughout and catches up after', async (t) => {
  const emu = await startEmulator(t);
  await fastLongpoll(emu);
  await put(emu, '/keep/a.sif');
  // Few client-side retries, so the storm reaches the sync loop and its own backoff.
  const c = client(t, emu, { retry: { maxAttempts: 2, baseDelayMs: 50, maxDelayMs: 200 } });
  const r = rig(t, await dbFolder(t), c, emu.url, { retryBaseMs: 200, retryMaxMs: 2000 });
  await r.sync.start();

  await fault(emu, { kind: '429', routes: ['files/list_folder/continue', 'files/list_folder/longpoll'], count: 5 });
  await put(emu, '/storm/new.sif');
  const fired = async (): Promise<number> => ((await emu.admin<{ fired: number }[]>('GET', '/faults'))[0]?.fired ?? 0);

  let duringStorm = 0;
  let sawError = false;
  let slowestLookupMs = 0;
  while ((await fired()) < 5) {
    const t0 = performance.now();
    const a = r.mirror.lookup('/keep/a.sif');
    const kids = r.mirror.children('/keep');
    slowestLookupMs = Math.max(slowestLookupMs, performance.now() - t0);
    t.truthy(a);
    t.is(kids.length, 1);
    sawError ||= r.sync.status().lastError !== undefined;
    duringStorm++;
    await sleep(20);
  }
  t.log(`${duringStorm} lookups during the storm, slowest ${slowestLookupMs.toFixed(3)} ms`);
  t.true(duringStorm > 0);
  await until(t, 'the file uploaded during the storm visible', () => r.mirror.lookup('/storm/new.sif') !== undefined);
  t.true(sawError || r.logs.some((l) => l.includes('sync failed')), r.logs.join('\n'));
  t.true(r.logs.some((l) => l.includes('rate limited')), r.logs.join('\n'));
  t.is(await fired(), 5);
  await until(t, 'lastError cleared', () => r.sync.status().lastError === undefined);
});

test('stop() returns without waiting for the longpoll in flight; no requests after it', async (t) => {
  const emu = await startEmulator(t);
  await put(emu, '/keep/a.sif');
  const r = rig(t, await dbFolder(t), client(t, emu), emu.url, { longpollTimeoutSec: 30 });
  await r.sync.start();
  await sleep(500); // the 30 s longpoll is now waiting at the emulator
  const t0 = performance.now();
  await r.sync.stop();
  const stopMs = performance.now() - t0;
  t.log(`stop(): ${stopMs.toFixed(1)} ms`);
  t.true(stopMs < 30_000, 'did not wait for the longpoll to time out');
  const before = await stats(emu);
  await sleep(1500);
  const after = await stats(emu);
  t.is(after.requests['files/list_folder/continue'], before.requests['files/list_folder/continue']);
  t.truthy(r.mirror.lookup('/keep/a.sif'), 'the mirror still answers after stop');
  await r.sync.stop(); // twice is fine
});

// ---------- a scripted client: no emulator ----------

const fileMeta = (p: string, i: number): Meta => ({
  kind: 'file', name: p.slice(p.lastIndexOf('/') + 1), pathLower: p.toLowerCase(), pathDisplay: p,
  id: `id:${i}`, rev: `rev${i.toString(16).padStart(9, '0')}`, size: i, contentHash: '', serverModified: '2024-01-01T00:00:00Z', clientModified: '2024-01-01T00:00:00Z',
});

/** Pages of `entries` (cursor "p<n>"), a longpoll that waits `pollMs` and reports no change. */
function scripted(entries: Meta[], pageSize: number, pollMs = 50): SyncClient & { calls: Record<string, number>; offline: boolean } {
  const pages: ListPage[] = [];
  for (let i = 0; i < entries.length || i === 0; i += pageSize) {
    const n = pages.length + 1;
    pages.push({ entries: entries.slice(i, i + pageSize), cursor: `p${n}`, hasMore: i + pageSize < entries.length });
  }
  const calls: Record<string, number> = {};
  const self = {
    calls,
    offline: false,
    async count(route: string): Promise<void> {
      await Promise.resolve();
      calls[route] = (calls[route] ?? 0) + 1;
      if (self.offline) throw new RemoteError('network', route, `cannot reach Dropbox (ECONNREFUSED) during ${route}`);
    },
    async currentAccount() {
      await self.count('account');
      return { accountId: 'dbid:me', displayName: 'Me', email: 'me@example.com' };
    },
    async listFolder(): Promise<ListPage> {
      await self.count('list');
      return pages[0]!;
    },
    async listContinue(cursor: string): Promise<ListPage> {
      await self.count('continue');
      const n = Number(cursor.slice(1));
      return pages[n] ?? { entries: [], cursor, hasMore: false };
    },
    async longpoll(_cursor: string, _sec?: number, signal?: AbortSignal): Promise<{ changes: boolean; backoffSec?: number }> {
      await self.count('longpoll');
      await sleep(pollMs, undefined, { signal });
      return { changes: false };
    },
  };
  return self;
}

test('start() over 10,000 entries in pages of 2,000, children before parents (time logged)', async (t) => {
  const entries: Meta[] = [];
  for (let d = 0; d < 100; d++) for (let f = 0; f < 100; f++) entries.push(fileMeta(`/c${d}/img${f}.sif`, d * 100 + f));
  const c = scripted(entries, 2000);
  const r = rig(t, await dbFolder(t), c, 'scripted');
  const t0 = performance.now();
  await r.sync.start();
  t.log(`start() with 10,000 entries (5 pages, 100 parents made on the fly): ${(performance.now() - t0).toFixed(1)} ms`);
  t.is(r.sync.status().entries, 10_100);
  t.is(r.mirror.children('/c42').length, 100);
  t.is(c.calls.list, 1);
  t.is(c.calls.continue, 4);
});

test('offline: a first start rejects; with a saved catalog start() resolves, the loop backs off (capped) and recovers', async (t) => {
  const folder = await dbFolder(t);
  const c = scripted([fileMeta('/a/1.sif', 1)], 10, 20);
  c.offline = true;
  const first = rig(t, folder, c, 'scripted');
  const e = await t.throwsAsync(first.sync.start());
  t.true(e instanceof RemoteError && e.code === 'network');
  first.db.close();

  c.offline = false;
  const second = rig(t, folder, c, 'scripted');
  await second.sync.start();
  await second.sync.stop();
  second.db.close();

  c.offline = true;
  const third = rig(t, folder, c, 'scripted', { retryBaseMs: 50, retryMaxMs: 200 });
  for (const k of Object.keys(c.calls)) delete c.calls[k];
  await third.sync.start();
  t.like(third.mirror.lookup('/a/1.sif'), { size: 1 }, 'the saved catalog answers');
  t.truthy(third.sync.status().lastError);
  await sleep(1200);
  const attempts = c.calls.account ?? 0;
  t.log(`${attempts} attempts in 1.2 s while offline; waits: ${third.logs.map((l) => /in (\d+) ms/.exec(l)?.[1]).filter(Boolean).join(', ')}`);
  t.true(attempts >= 3, `${attempts}`);
  t.true(attempts < 30, `${attempts}: the loop must not spin`);
  t.true(third.logs.some((l) => l.includes('in 200 ms')), 'the wait reaches its cap');
  t.false(third.logs.some((l) => /in (\d+) ms/.test(l) && Number(/in (\d+) ms/.exec(l)?.[1]) > 200));

  c.offline = false;
  await until(t, 'back in step', () => third.sync.status().lastError === undefined && (c.calls.longpoll ?? 0) > 0);
});

test('a longpoll backoff is waited out before the next longpoll', async (t) => {
  const c = scripted([fileMeta('/a', 1)], 10, 0);
  const times: number[] = [];
  const inner = c.longpoll.bind(c);
  c.longpoll = async (cur, sec, sig) => {
    times.push(performance.now());
    await inner(cur, sec, sig);
    return { changes: false, backoffSec: 0.3 };
  };
  const r = rig(t, await dbFolder(t), c, 'scripted');
  await r.sync.start();
  await until(t, 'three longpolls', () => times.length >= 3);
  await r.sync.stop();
  for (let i = 1; i < times.length; i++) t.true(times[i]! - times[i - 1]! >= 295, `gap ${times[i]! - times[i - 1]!} ms`);
});

/** A catalog synced by a first CatalogSync (stopped), then changed in Dropbox while nothing runs. */
async function savedCatalogThenChanges(t: ExecutionContext, emu: Emulator, c: DropboxClient): Promise<{ folder: string; expected: string[] }> {
  await fastLongpoll(emu);
  const expected = await seed(emu);
  const folder = await dbFolder(t);
  const first = rig(t, folder, c, emu.url);
  await first.sync.start();
  await first.sync.stop();
  first.db.close();
  await put(emu, '/while-away.sif');
  await sdk(emu).filesDeleteV2({ path: '/keep' });
  return { folder, expected };
}

test('catchUpInBackground: start() resolves on the saved catalog while the catch-up is held up; its changes then appear, and caughtUp() says when', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu, { timeoutMs: 1000 });
  const { folder, expected } = await savedCatalogThenChanges(t, emu, c);
  // The catch-up's first list_folder/continue never answers (until the client's timeout, then a retry).
  await fault(emu, { kind: 'stall', routes: ['files/list_folder/continue'], count: 1 });
  const second = rig(t, folder, c, emu.url, { catchUpInBackground: true });
  const account = await c.currentAccount();
  let caughtUp = false;
  await second.sync.start(account);
  void second.sync.caughtUp().then(() => (caughtUp = true));
  // Answered from the saved catalog: nothing of the catch-up yet (its request is stalled).
  t.deepEqual(tree(second.mirror), expected);
  t.false(caughtUp);
  t.true(second.logs.some((l) => l.includes('catching up with Dropbox in the background')), second.logs.join('\n'));
  await second.sync.caughtUp();
  t.deepEqual(tree(second.mirror), [...expected.filter((e) => !e.includes('/keep')), 'f:/while-away.sif'].sort());
  t.true(second.changes.some((p) => p.includes('/while-away.sif')), 'applied as a longpoll change is (onChange)');
  // And the loop goes on to follow later changes.
  await put(emu, '/later.sif');
  await until(t, 'a later change visible', () => second.mirror.lookup('/later.sif') !== undefined);
});

test('catchUpInBackground: a catalog not known to be complete (no `complete` mark) is caught up before start() resolves', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu);
  const { folder, expected } = await savedCatalogThenChanges(t, emu, c);
  const db = MountStateDb.open(folder);
  t.is(db.fast.prepare<[], { value: string }>("SELECT value FROM sreg_remote_state WHERE key = 'complete'").get()?.value, '1');
  // As a listing cut short (or a catalog from before the mark) leaves it.
  db.fast.prepare("DELETE FROM sreg_remote_state WHERE key = 'complete'").run();
  db.close();
  const second = rig(t, folder, c, emu.url, { catchUpInBackground: true });
  await second.sync.start(await c.currentAccount());
  t.deepEqual(tree(second.mirror), [...expected.filter((e) => !e.includes('/keep')), 'f:/while-away.sif'].sort());
  await second.sync.caughtUp();
});
