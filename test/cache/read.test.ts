/**
 * BlockCache reads against a fake remote: exact bytes at odd offsets and lengths, block
 * boundaries, EOF; single flight; failing fetches; stats.
 */
import test from 'ava';
import { CacheError } from '../../src/cache/index.js';
import { RemoteError } from '../../src/dropbox/errors.js';
import { BLOCK, FakeRemote, freshStream, MiB, openCache, rng, tempDir } from './helpers.js';

test('random reads at odd offsets and lengths return exactly the source bytes', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(3 * BLOCK + 12345);
  const data = remote.data(f);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  const next = rng(42);
  for (let i = 0; i < 200; i++) {
    const offset = next(f.size + 100);
    const length = next(3) === 0 ? next(2 * BLOCK) : next(200 * 1024);
    const got = await cache.read(f, offset, length, freshStream());
    t.true(got.equals(data.subarray(offset, Math.min(f.size, offset + length))), `read ${length} at ${offset}`);
  }
  t.true(remote.count() <= 4, 'each block fetched at most once');
});

test('block boundaries, stitched reads, EOF and past EOF', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK + 7);
  const data = remote.data(f);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  const cases: [number, number][] = [
    [BLOCK - 1, 2], // last byte of block 0 + first of block 1
    [BLOCK - 5, 10],
    [0, 2 * BLOCK + 7], // the whole file: three blocks stitched
    [BLOCK, BLOCK], // exactly block 1
    [2 * BLOCK, 100], // the short last block, clamped
    [f.size - 3, 3],
    [f.size - 3, 1000],
    [BLOCK - 1, BLOCK + 2],
  ];
  for (const [offset, length] of cases) {
    const got = await cache.read(f, offset, length, freshStream());
    t.true(got.equals(data.subarray(offset, Math.min(f.size, offset + length))), `read ${length} at ${offset}`);
  }
  t.is((await cache.read(f, f.size, 10, freshStream())).length, 0, 'at EOF');
  t.is((await cache.read(f, f.size + 5 * BLOCK, 10, freshStream())).length, 0, 'past EOF');
  t.is((await cache.read(f, 10, 0, freshStream())).length, 0, 'zero length');
  t.is(remote.count(), 3);
  const empty = remote.add(0);
  t.is((await cache.read(empty, 0, 100, 1)).length, 0, 'empty file');
  t.is(remote.count(empty.rev), 0);
  await t.throwsAsync(cache.read(f, -1, 10, 1), { instanceOf: CacheError, message: /cannot read/ });
  const e = await t.throwsAsync(cache.read(f, 1.5, 10, 1));
  t.is((e as CacheError).code, 'invalid_range');
});

test('20 concurrent readers of one block cause one fetch', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(5 * BLOCK);
  const data = remote.data(f);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  remote.hold();
  const reads = Array.from({ length: 20 }, (_, i) => {
    const offset = 3 * BLOCK + i * 10_000 + i;
    return cache.read(f, offset, 5000 + i, freshStream()).then((b) => b.equals(data.subarray(offset, offset + 5000 + i)));
  });
  await new Promise((r) => setTimeout(r, 20));
  remote.release();
  t.deepEqual(await Promise.all(reads), Array(20).fill(true));
  t.is(remote.count(f.rev, 3), 1);
  t.is(remote.count(), 1);
});

test('a failing fetch rejects only the reads that need that block, with its own error; the next read retries', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(4 * BLOCK);
  const data = remote.data(f);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  const boom = new RemoteError('network', 'files/download', 'cannot reach Dropbox (connection reset)');
  remote.failWhen((c) => (c.block === 2 ? boom : undefined));
  remote.hold();
  const spanning = cache.read(f, 2 * BLOCK - 100, 200, freshStream()); // blocks 1 and 2
  const alsoTwo = cache.read(f, 2 * BLOCK + 5, 10, freshStream());
  const zero = cache.read(f, 100, 100, freshStream());
  remote.release();
  t.is(await t.throwsAsync(spanning), boom);
  t.is(await t.throwsAsync(alsoTwo), boom);
  t.true((await zero).equals(data.subarray(100, 200)));
  t.is(remote.count(f.rev, 2), 1, 'one fetch for both readers');
  const again = await cache.read(f, 2 * BLOCK - 100, 200, freshStream());
  t.true(again.equals(data.subarray(2 * BLOCK - 100, 2 * BLOCK + 100)));
  t.is(remote.count(f.rev, 2), 2, 'retried');
  t.is(remote.count(f.rev, 1), 1, 'block 1 was kept from the failed read');
});

test('a fetch that returns the wrong number of bytes is a bad_fetch', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(BLOCK + 10);
  const { cache } = await openCache(t, {
    dir: await tempDir(t),
    fetch: async (file, s, e) => (await remote.fetch(file, s, e)).subarray(1),
  });
  const e = await t.throwsAsync(cache.read(f, 0, 10, 1));
  t.true(e instanceof CacheError);
  t.is((e as CacheError).code, 'bad_fetch');
  t.is(cache.stats().blocks, 0);
});

test('stats: hits, misses, fetched bytes, used bytes, blocks', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK + MiB);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch, budgetBytes: 100 * MiB });
  t.deepEqual(cache.stats(), { budgetBytes: 100 * MiB, usedBytes: 0, blocks: 0, hits: 0, misses: 0, fetchedBytes: 0 });
  await cache.read(f, 10, 10, freshStream()); // miss: block 0
  await cache.settle(); // written behind the read
  await cache.read(f, 20, 10, freshStream()); // hit
  await cache.read(f, BLOCK - 5, 10, freshStream()); // miss: block 1 (block 0 on disk)
  await cache.read(f, 2 * BLOCK, 10, freshStream()); // miss: block 2
  await cache.settle();
  await cache.read(f, 0, f.size, freshStream()); // hit: all on disk
  await cache.read(f, f.size, 10, freshStream()); // nothing to read: not counted
  t.deepEqual(cache.stats(), { budgetBytes: 100 * MiB, usedBytes: f.size, blocks: 3, hits: 2, misses: 3, fetchedBytes: f.size });
});

test('at most maxInFlight fetches run at once', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(12 * BLOCK);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch, maxInFlight: 3, budgetBytes: 200 * MiB });
  remote.hold();
  const reads = Array.from({ length: 12 }, (_, b) => cache.read(f, b * BLOCK, 10, freshStream()));
  await new Promise((r) => setTimeout(r, 20));
  t.is(remote.inFlight, 3);
  remote.release();
  await Promise.all(reads);
  t.is(remote.maxInFlightSeen, 3);
  t.is(remote.count(), 12);
});

test('reads after close are refused', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(100);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  await cache.close();
  const e = await t.throwsAsync(cache.read(f, 0, 10, 1));
  t.is((e as CacheError).code, 'closed');
});

test('a read into the caller\'s buffer fills it and returns a view of it, on a miss and on a hit; too small a buffer is refused', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK + 777);
  const data = remote.data(f);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  for (const [offset, length] of [[BLOCK - 1000, 128 * 1024], [BLOCK - 1000, 128 * 1024], [2 * BLOCK, 5000]] as const) {
    const into = Buffer.alloc(128 * 1024, 0xee);
    const got = await cache.read(f, offset, length, freshStream(), into);
    const want = data.subarray(offset, Math.min(f.size, offset + length));
    t.true(got.equals(want), `bytes at ${offset}`);
    t.is(got.buffer, into.buffer, 'the result is the caller\'s memory');
    t.is(got.byteOffset, into.byteOffset);
    t.true(into.subarray(0, want.length).equals(want));
  }
  await t.throwsAsync(cache.read(f, 0, 100, freshStream(), Buffer.alloc(10)), { instanceOf: CacheError, message: /cannot take 100 bytes/ });
});

test('6 sequential readers of 3 files at once, on pooled block buffers with readahead, all get exact bytes; each block fetched once, never more than maxInFlight at a time', async (t) => {
  const remote = new FakeRemote();
  const files = [remote.add(12 * BLOCK + 5), remote.add(9 * BLOCK), remote.add(7 * BLOCK + 4096)];
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch, maxInFlight: 3, budgetBytes: 200 * MiB });
  const chunk = 128 * 1024;
  await Promise.all(
    [...files, ...files].map(async (f) => {
      const stream = freshStream();
      const data = remote.data(f);
      const into = Buffer.alloc(chunk);
      for (let off = 0; off < f.size; off += chunk) {
        const got = await cache.read(f, off, chunk, stream, into);
        if (!got.equals(data.subarray(off, Math.min(f.size, off + chunk)))) return t.fail(`bytes of ${f.rev} at ${off}`);
      }
      t.pass();
    }),
  );
  t.is(remote.count(), files.reduce((n, f) => n + Math.ceil(f.size / BLOCK), 0), 'every block fetched once');
  t.true(remote.maxInFlightSeen <= 3, `at most maxInFlight fetches at once (saw ${remote.maxInFlightSeen})`);
});

test('once the caller says its buffer is gone (the kernel was answered), a read waiting on a fetch writes nothing into it and rejects', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  remote.hold();
  const into = Buffer.alloc(1000, 0xee);
  const gone = new AbortController();
  const reading = cache.read(f, 10, 1000, freshStream(), into, gone.signal);
  await new Promise((r) => setTimeout(r, 20));
  gone.abort();
  remote.release();
  await t.throwsAsync(reading, { instanceOf: CacheError, message: /answered meanwhile/ });
  t.true(into.equals(Buffer.alloc(1000, 0xee)), 'not one byte written');
  // The block itself was fetched and kept: the next reader gets it from disk.
  t.true((await cache.read(f, 10, 1000, freshStream())).equals(remote.data(f).subarray(10, 1010)));
  t.is(remote.count(), 1);
});
