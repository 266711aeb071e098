/**
 * Across sessions: the index survives close + open (no refetch), rows and files that lost
 * their other half are removed, a changed rev refetches, a block changed on disk or bytes that
 * do not make the content_hash are caught; `db: null` and `removeDirOnClose`.
 */
import test from 'ava';
import { access, mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { revDirName } from '../../src/cache/blocks.js';
import { CacheError } from '../../src/cache/index.js';
import { BLOCK, FakeRemote, freshStream, MiB, openCache, openDb, tempDir } from './helpers.js';

const rowCount = (db: ReturnType<typeof openDb>): number => (db.prepare('SELECT count(*) AS n FROM sreg_cache_blocks').get() as { n: number }).n;

test('the index survives close + open: no refetch after reopening', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(3 * BLOCK + 17);
  const work = await tempDir(t);
  const db = openDb(t, work);
  const dir = path.join(work, 'blocks');
  let now = 1_000;
  const first = await openCache(t, { db, dir, fetch: remote.fetch, nowMs: () => now });
  t.true((await first.cache.read(f, 0, f.size, 1)).equals(remote.data(f)));
  await first.cache.settle(); // fetched blocks are written (and indexed) behind their readers
  now = 2_000;
  await first.cache.read(f, BLOCK, 10, freshStream()); // touch block 1 (written behind)
  await first.cache.close();
  t.is(rowCount(db), 4);
  const lastUsed = db.prepare('SELECT block, last_used_ms AS ms FROM sreg_cache_blocks ORDER BY block').all() as { block: number; ms: number }[];
  t.deepEqual(
    lastUsed.map((r) => r.ms),
    [1_000, 2_000, 1_000, 1_000],
  );

  const second = await openCache(t, { db, dir, fetch: remote.fetch });
  t.is(second.cache.stats().blocks, 4);
  t.is(second.cache.stats().usedBytes, f.size);
  t.true((await second.cache.read(f, 0, f.size, 1)).equals(remote.data(f)));
  t.true((await second.cache.read(f, BLOCK - 3, 6, 2)).equals(remote.data(f).subarray(BLOCK - 3, BLOCK + 3)));
  t.is(remote.count(), 4, 'nothing fetched again');
  t.like(second.cache.stats(), { hits: 2, misses: 0, fetchedBytes: 0 });
});

test('at open, rows without a file and files without a row are removed; other files are left alone', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(3 * BLOCK);
  const work = await tempDir(t);
  const db = openDb(t, work);
  const dir = path.join(work, 'blocks');
  const first = await openCache(t, { db, dir, fetch: remote.fetch });
  await first.cache.read(f, 0, f.size, 1);
  await first.cache.close();
  const revFolder = path.join(dir, revDirName(f.rev));
  await rm(path.join(revFolder, '1'));
  await writeFile(path.join(revFolder, '7'), 'stray block');
  await writeFile(path.join(revFolder, '2.tmp-1-1'), 'partial');
  await mkdir(path.join(dir, 'deadbeef'));
  await writeFile(path.join(dir, 'deadbeef', '0'), 'stray rev');
  await writeFile(path.join(dir, 'NOTES.txt'), 'not the cache’s');

  const second = await openCache(t, { db, dir, fetch: remote.fetch });
  t.is(second.cache.stats().blocks, 2);
  await second.cache.close();
  t.is(rowCount(db), 2);
  t.deepEqual((await readdir(revFolder)).sort(), ['0', '2']);
  t.deepEqual((await readdir(dir)).sort(), ['NOTES.txt', revDirName(f.rev)].sort());
});

test('a changed file (new rev) is fetched again, never served from the old rev', async (t) => {
  const remote = new FakeRemote();
  const v1 = remote.add(2 * BLOCK, 'aaaa000001', 'id:same');
  const v2 = remote.add(2 * BLOCK, 'aaaa000002', 'id:same');
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  t.true((await cache.read(v1, 100, 1000, 1)).equals(remote.data(v1).subarray(100, 1100)));
  t.true((await cache.read(v2, 100, 1000, 1)).equals(remote.data(v2).subarray(100, 1100)));
  t.is(remote.count(v2.rev), 1);
  t.false(remote.data(v1).subarray(100, 1100).equals(remote.data(v2).subarray(100, 1100)));
});

test('a block file changed on disk between sessions is caught at its first read and fetched again', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(3 * BLOCK);
  const work = await tempDir(t);
  const db = openDb(t, work);
  const dir = path.join(work, 'blocks');
  const first = await openCache(t, { db, dir, fetch: remote.fetch });
  await first.cache.read(f, 0, f.size, 1);
  await first.cache.close();
  const fh = await open(path.join(dir, revDirName(f.rev), '1'), 'r+');
  await fh.write(Buffer.from([0x5a ^ remote.data(f)[BLOCK + 1234]!]), 0, 1, 1234);
  await fh.close();

  const second = await openCache(t, { db, dir, fetch: remote.fetch });
  // Concurrent readers of the changed block, one far from the changed byte.
  const [a, b] = await Promise.all([second.cache.read(f, BLOCK + 1000, 500, 1), second.cache.read(f, BLOCK + 3 * MiB, 10, 2)]);
  t.true(a.equals(remote.data(f).subarray(BLOCK + 1000, BLOCK + 1500)));
  t.true(b.equals(remote.data(f).subarray(BLOCK + 3 * MiB, BLOCK + 3 * MiB + 10)));
  t.true((await second.cache.read(f, 0, f.size, 3)).equals(remote.data(f)));
  t.is(remote.count(f.rev, 1), 2, 'block 1 fetched again, once');
  t.is(remote.count(), 4, 'blocks 0 and 2 were good');
  t.true(second.logs.some((l) => /block 1 of rev .* changed on disk/.test(l)), second.logs.join('\n'));
  await second.cache.close();
  const third = await openCache(t, { db, dir, fetch: remote.fetch });
  t.true((await third.cache.read(f, 0, f.size, 1)).equals(remote.data(f)));
  t.is(remote.count(), 4, 'the refetched block replaced the changed one on disk');
});

test('bytes that do not make the content_hash are dropped once every block is read; the reads that follow fetch again', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(3 * BLOCK + 5);
  const data = remote.data(f);
  remote.corrupt(f.rev, 1, 1); // block 1 arrives damaged, once
  const { cache, logs } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  const first = await cache.read(f, BLOCK, 10, freshStream());
  t.false(first.equals(data.subarray(BLOCK, BLOCK + 10)), 'before the rev is complete, the damage cannot be seen');
  await cache.read(f, 0, 10, freshStream());
  await cache.read(f, 2 * BLOCK, 10, freshStream());
  // The read that completes the rev sees the mismatch: all blocks dropped, its own block fetched again.
  t.true((await cache.read(f, 3 * BLOCK, 5, freshStream())).equals(data.subarray(3 * BLOCK)));
  t.true(logs.some((l) => /do not make its content_hash \(1 time/.test(l)), logs.join('\n'));
  await cache.settle(); // fetched blocks are written behind their readers
  t.is(cache.stats().blocks, 1);
  t.true((await cache.read(f, 0, f.size, freshStream())).equals(data), 'every block fetched again, correct');
  t.is(remote.count(f.rev, 1), 2);
  t.is(remote.count(f.rev, 3), 2);
  t.is(remote.count(), 4 + 4);
  await cache.settle();
  t.is(cache.stats().blocks, 4);
  t.true((await cache.read(f, 0, f.size, freshStream())).equals(data));
  t.is(remote.count(), 8, 'verified: kept');
});

test('a second mismatch in a row fails the read with CacheError corrupt', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK + 5);
  remote.corrupt(f.rev, 0, 1000); // the remote keeps sending damaged bytes
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  await cache.read(f, 0, 10, freshStream());
  await cache.read(f, BLOCK, 10, freshStream());
  await cache.read(f, 2 * BLOCK, 5, freshStream()); // completes the rev: mismatch 1, this block refetched
  await cache.read(f, 0, 10, freshStream());
  const e = await t.throwsAsync(cache.read(f, BLOCK, 10, freshStream())); // completes it again: mismatch 2
  t.true(e instanceof CacheError);
  t.is((e as CacheError).code, 'corrupt');
  t.is(cache.stats().blocks, 0, 'nothing of that rev is kept');
});

test('db: null keeps the index in memory; removeDirOnClose removes the folder', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK);
  const work = await tempDir(t);
  const dir = path.join(work, 'tmp-cache');
  const { cache } = await openCache(t, { db: null, dir, fetch: remote.fetch, removeDirOnClose: true });
  t.true((await cache.read(f, 0, f.size, 1)).equals(remote.data(f)));
  await cache.settle(); // fetched blocks are written behind their readers
  t.deepEqual((await readdir(path.join(dir, revDirName(f.rev)))).sort(), ['0', '1']);
  await cache.close();
  await t.throwsAsync(access(dir), { code: 'ENOENT' });
  await cache.close(); // idempotent

  const db = openDb(t, work);
  const withDb = await openCache(t, { db, dir, fetch: remote.fetch, removeDirOnClose: true });
  await withDb.cache.read(f, 0, 10, 1);
  await withDb.cache.settle();
  t.is(withDb.cache.stats().blocks, 1);
  await withDb.cache.close();
  await t.throwsAsync(access(dir), { code: 'ENOENT' });
  t.is(rowCount(db), 0, 'no rows left for a folder that is gone');
});

test('db: null without removeDirOnClose starts empty next time (files without rows go)', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(BLOCK);
  const dir = await tempDir(t);
  const first = await openCache(t, { db: null, dir, fetch: remote.fetch });
  await first.cache.read(f, 0, 10, 1);
  await first.cache.close();
  const second = await openCache(t, { db: null, dir, fetch: remote.fetch });
  t.is(second.cache.stats().blocks, 0);
  t.deepEqual(await readdir(dir), []);
  await second.cache.read(f, 0, 10, 1);
  t.is(remote.count(), 2);
});

test('a smaller budget at the next open keeps the most recently used blocks', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(4 * BLOCK);
  const work = await tempDir(t);
  const db = openDb(t, work);
  const dir = path.join(work, 'blocks');
  let now = 0;
  const first = await openCache(t, { db, dir, fetch: remote.fetch, nowMs: () => now });
  for (const b of [3, 1, 0, 2]) {
    now += 10;
    await first.cache.read(f, b * BLOCK, 10, freshStream());
    await first.cache.settle(); // indexed (with its time of use) behind the reader
  }
  await first.cache.close();
  const second = await openCache(t, { db, dir, fetch: remote.fetch, budgetBytes: 2 * BLOCK });
  t.is(second.cache.stats().blocks, 2);
  await second.cache.read(f, 0, 10, 1);
  await second.cache.read(f, 2 * BLOCK, 10, 2);
  t.is(remote.count(), 4, 'blocks 0 and 2 (the newest) kept');
  await second.cache.close();
  t.is(rowCount(db), 2);
  t.deepEqual((await readdir(path.join(dir, revDirName(f.rev)))).sort(), ['0', '2']);
});
