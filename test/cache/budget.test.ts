/**
 * The byte budget: never exceeded (index and disk), least recently used blocks out first, and
 * a block that cannot be written is served from memory anyway.
 */
import test from 'ava';
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { revDirName } from '../../src/cache/blocks.js';
import { BLOCK, diskBytes, FakeRemote, freshStream, MiB, openCache, rng, tempDir } from './helpers.js';

test('the budget is never exceeded, in the index or on disk', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(10 * BLOCK + 999);
  const g = remote.add(3 * BLOCK);
  const data = remote.data(f);
  const dir = await tempDir(t);
  const budget = 3 * BLOCK + MiB;
  const { cache } = await openCache(t, { dir, fetch: remote.fetch, budgetBytes: budget, maxInFlight: 3 });
  const next = rng(3);
  for (let i = 0; i < 60; i++) {
    const offset = next(f.size);
    const got = await cache.read(f, offset, 300_000, i % 4 === 0 ? 77 : freshStream()); // some sequential runs
    t.true(got.equals(data.subarray(offset, offset + 300_000)));
    const s = cache.stats();
    t.true(s.usedBytes <= budget, `index ${s.usedBytes} ≤ ${budget}`);
    t.true((await diskBytes(dir)) <= budget, 'disk ≤ budget');
  }
  // Concurrent readers of many blocks at once.
  await Promise.all(Array.from({ length: 11 }, (_, b) => cache.read(f, b * BLOCK, 100, freshStream())));
  await Promise.all(Array.from({ length: 3 }, (_, b) => cache.read(g, b * BLOCK, BLOCK, freshStream())));
  t.true(cache.stats().usedBytes <= budget);
  await cache.close();
  t.true((await diskBytes(dir)) <= budget);
});

test('least recently used blocks are evicted first (file and all)', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(5 * BLOCK);
  const dir = await tempDir(t);
  const { cache } = await openCache(t, { dir, fetch: remote.fetch, budgetBytes: 3 * BLOCK });
  for (const b of [0, 1, 2]) {
    await cache.read(f, b * BLOCK, 10, freshStream());
    await cache.settle(); // fetched blocks are written (and indexed) behind their readers
  }
  await cache.read(f, 5, 10, freshStream()); // block 0 is now the most recently used
  await cache.read(f, 3 * BLOCK, 10, freshStream()); // evicts block 1
  await cache.settle();
  t.is(cache.stats().blocks, 3);
  t.is(remote.count(), 4);
  await cache.read(f, 0, 10, freshStream());
  await cache.read(f, 2 * BLOCK, 10, freshStream());
  await cache.read(f, 3 * BLOCK, 10, freshStream());
  t.is(remote.count(), 4, 'blocks 0, 2, 3 still cached');
  await cache.read(f, BLOCK, 10, freshStream());
  t.is(remote.count(f.rev, 1), 2, 'block 1 was evicted');
  await cache.close();
  t.is(await diskBytes(dir), 3 * BLOCK);
});

test('a budget smaller than a block caches nothing and still reads', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK);
  const dir = await tempDir(t);
  const { cache } = await openCache(t, { dir, fetch: remote.fetch, budgetBytes: MiB });
  for (let i = 0; i < 2; i++) {
    const got = await cache.read(f, BLOCK - 10, 20, i);
    t.true(got.equals(remote.data(f).subarray(BLOCK - 10, BLOCK + 10)));
  }
  t.is(remote.count(), 4);
  t.is(cache.stats().usedBytes, 0);
  t.is(await diskBytes(dir), 0);
});

test('a block that cannot be written is served from memory, logged, and not kept', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK);
  const dir = await tempDir(t);
  await mkdir(dir, { recursive: true });
  // The rev's folder is a file: every block write fails (as on a full or read-only disk).
  await writeFile(path.join(dir, revDirName(f.rev)), 'not a folder');
  const { cache, logs } = await openCache(t, { dir, fetch: remote.fetch });
  const got = await cache.read(f, BLOCK - 100, 200, 1);
  t.true(got.equals(remote.data(f).subarray(BLOCK - 100, BLOCK + 100)));
  await cache.settle(); // the writes behind the read fail
  t.is(cache.stats().blocks, 0);
  t.is(cache.stats().usedBytes, 0);
  t.true(logs.some((l) => /cannot keep block .* serving it from memory/.test(l)), logs.join('\n'));
  const again = await cache.read(f, 0, 10, 2);
  t.true(again.equals(remote.data(f).subarray(0, 10)));
  t.is(remote.count(), 3, 'not kept, so fetched again');
});
