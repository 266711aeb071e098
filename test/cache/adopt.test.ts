/**
 * adopt: a local file that is a revision's bytes becomes its cached blocks (no download), up
 * to the budget; a file that is not those bytes is refused.
 */
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CacheError } from '../../src/cache/index.js';
import { BLOCK, diskBytes, FakeRemote, freshStream, MiB, openCache, openDb, tempDir } from './helpers.js';

test('adopt makes reads hit without fetching, and survives a reopen', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(3 * BLOCK + 4321);
  const work = await tempDir(t);
  const spool = path.join(work, 'spool.bin');
  await writeFile(spool, remote.data(f));
  const db = openDb(t, work);
  const dir = path.join(work, 'blocks');
  const { cache } = await openCache(t, { db, dir, fetch: remote.fetch });
  await cache.adopt(f, spool);
  t.like(cache.stats(), { blocks: 4, usedBytes: f.size, fetchedBytes: 0 });
  t.true((await cache.read(f, 0, f.size, 1)).equals(remote.data(f)));
  t.true((await cache.read(f, BLOCK - 7, 14, freshStream())).equals(remote.data(f).subarray(BLOCK - 7, BLOCK + 7)));
  t.is(remote.count(), 0);
  t.like(cache.stats(), { hits: 2, misses: 0 });
  await cache.close();
  const again = await openCache(t, { db, dir, fetch: remote.fetch });
  t.true((await again.cache.read(f, 0, f.size, 1)).equals(remote.data(f)));
  t.is(remote.count(), 0);
});

test('adopt keeps what fits the budget, never more', async (t) => {
  const remote = new FakeRemote();
  const old = remote.add(BLOCK);
  const f = remote.add(5 * BLOCK);
  const work = await tempDir(t);
  const spool = path.join(work, 'spool.bin');
  await writeFile(spool, remote.data(f));
  const dir = path.join(work, 'blocks');
  const budget = 2 * BLOCK + MiB;
  const { cache } = await openCache(t, { dir, fetch: remote.fetch, budgetBytes: budget });
  await cache.read(old, 0, 10, 1);
  await cache.settle(); // old's block is written behind the read: until then it cannot be evicted
  await cache.adopt(f, spool);
  await cache.settle(); // the block files are written behind the adopt
  t.is(cache.stats().blocks, 2);
  t.true(cache.stats().usedBytes <= budget);
  t.true((await diskBytes(dir)) <= budget);
  // The first two blocks were adopted: on disk, verified, with the spool's bytes, and no fetch.
  // (Reading them here would let readahead fetch block 2 and, within this budget, evict one.)
  t.deepEqual([...cache.readyBlocks(f.rev)].sort(), [0, 1]);
  for (const b of [0, 1]) t.true((await readFile(cache.blockFile(f.rev, b))).equals(remote.data(f).subarray(b * BLOCK, (b + 1) * BLOCK)));
  t.is(remote.count(f.rev), 0, 'the first two blocks were adopted');
  t.true((await cache.read(f, 4 * BLOCK, 10, freshStream())).equals(remote.data(f).subarray(4 * BLOCK, 4 * BLOCK + 10)));
  t.true(remote.calls.some((c) => c.rev === f.rev && c.block === 4), 'the rest is fetched');

  const g = remote.add(2 * BLOCK + 1); // 3 blocks, the last one byte: all fit in 2 blocks + 1 MiB
  const gSpool = path.join(work, 'g.bin');
  await writeFile(gSpool, remote.data(g));
  await cache.adopt(g, gSpool);
  t.is(cache.stats().usedBytes, g.size, 'g evicted everything else');
  t.true((await cache.read(g, 0, g.size, freshStream())).equals(remote.data(g)));
  t.is(remote.count(g.rev), 0);

  const tiny = await openCache(t, { dir: path.join(work, 'tiny'), fetch: remote.fetch, budgetBytes: MiB });
  await tiny.cache.adopt(f, spool);
  t.is(tiny.cache.stats().blocks, 0, 'nothing fits');
});

test('adopt refuses a file that is not the revision’s bytes', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK);
  const work = await tempDir(t);
  const { cache } = await openCache(t, { dir: path.join(work, 'blocks'), fetch: remote.fetch });
  const wrong = Buffer.from(remote.data(f));
  wrong[BLOCK + 5] = (wrong[BLOCK + 5] ?? 0) ^ 1;
  const spool = path.join(work, 'wrong.bin');
  await writeFile(spool, wrong);
  const e = await t.throwsAsync(cache.adopt(f, spool));
  t.is((e as CacheError).code, 'corrupt');
  t.is(cache.stats().blocks, 0);

  await writeFile(spool, remote.data(f).subarray(1));
  const short = await t.throwsAsync(cache.adopt(f, spool));
  t.is((short as CacheError).code, 'local_io');
  const missing = await t.throwsAsync(cache.adopt(f, path.join(work, 'nope.bin')));
  t.is((missing as CacheError).code, 'local_io');
  t.true((await cache.read(f, 0, f.size, 1)).equals(remote.data(f)));
  t.is(remote.count(), 2);
});

test('a reader that arrives during adopt waits for the local block instead of fetching', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(6 * BLOCK);
  const work = await tempDir(t);
  const spool = path.join(work, 'spool.bin');
  await writeFile(spool, remote.data(f));
  const { cache } = await openCache(t, { dir: path.join(work, 'blocks'), fetch: remote.fetch });
  const adopting = cache.adopt(f, spool);
  while (cache.stats().blocks < 1) await new Promise((r) => setImmediate(r));
  const reads = await Promise.all([0, 1, 2, 3, 4, 5].map((b) => cache.read(f, b * BLOCK + 3, 10, freshStream())));
  await adopting;
  await cache.settle(); // blocks fetched meanwhile are written behind their readers
  reads.forEach((r, b) => t.true(r.equals(remote.data(f).subarray(b * BLOCK + 3, b * BLOCK + 13))));
  t.is(cache.stats().blocks, 6);
  t.is(remote.count(f.rev, 0), 0, 'block 0 was adopted');
  t.true(remote.count() < 6, `${remote.count()} blocks fetched`);
  t.is(cache.stats().usedBytes, f.size);
});
