/**
 * The block cache's API for the native FUSE adapter (src/fuse3/blocks.ts): 'ready' once a
 * block is on disk and verified (fetched, or a kept block checked at its first use), with the
 * file that holds exactly its bytes; 'gone' when it leaves the index; readyBlocks lists the
 * ready ones; advise plans readahead for reads the adapter served itself.
 */
import test from 'ava';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { BLOCK, FakeRemote, freshStream, MiB, openCache, openDb, tempDir } from './helpers.js';

test("'ready' after a fetch names a file with exactly the block's bytes; eviction says 'gone'", async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK + 100);
  const g = remote.add(BLOCK);
  const dir = await tempDir(t);
  const { cache } = await openCache(t, { dir, fetch: remote.fetch, budgetBytes: 3 * BLOCK });
  const ready: [string, number, string][] = [];
  const gone: [string, number][] = [];
  cache.on('ready', (rev: string, b: number, file: string) => ready.push([rev, b, file]));
  cache.on('gone', (rev: string, b: number) => gone.push([rev, b]));
  await cache.read(f, 0, f.size, freshStream());
  await cache.settle(); // readers are answered from memory; 'ready' comes once the block is on disk
  t.deepEqual(ready.map(([rev, b]) => [rev, b]).sort(), [[f.rev, 0], [f.rev, 1], [f.rev, 2]]);
  for (const [, b, file] of ready) {
    t.is(file, cache.blockFile(f.rev, b));
    t.true((await readFile(file)).equals(remote.data(f).subarray(b * BLOCK, Math.min(f.size, (b + 1) * BLOCK))), `block ${b}'s file`);
  }
  t.deepEqual(cache.readyBlocks(f.rev).sort(), [0, 1, 2]);
  t.deepEqual(gone, []);
  await cache.read(g, 0, MiB, freshStream()); // over the budget: the least recently used block goes
  await cache.settle();
  t.is(gone.length, 1);
  t.is(gone[0]![0], f.rev);
  t.false(cache.readyBlocks(f.rev).includes(gone[0]![1]));
});

test('a block kept from an earlier session is ready only once checked; advise fetches ahead of a reader served elsewhere', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(6 * BLOCK);
  const work = await tempDir(t);
  const db = openDb(t, work);
  const dir = path.join(work, 'blocks');
  const first = await openCache(t, { db, dir, fetch: remote.fetch });
  await first.cache.read(f, 0, BLOCK, freshStream());
  await first.cache.close();
  const { cache } = await openCache(t, { db, dir, fetch: remote.fetch });
  t.deepEqual(cache.readyBlocks(f.rev), [], 'not checked in this session yet');
  const ready: number[] = [];
  cache.on('ready', (_rev: string, b: number) => ready.push(b));
  await cache.read(f, 0, 10, freshStream());
  t.deepEqual(ready, [0], 'checked at its first use');
  const s = freshStream();
  cache.advise(f, BLOCK, MiB, s);
  cache.advise(f, BLOCK + MiB, MiB, s);
  // No read of block 2 is made: only advise can have asked for it.
  const asked = (): boolean => remote.calls.some((c) => c.rev === f.rev && c.block === 2);
  for (let i = 0; i < 100 && !asked(); i++) await new Promise((r) => setTimeout(r, 50));
  t.true(asked(), `block 2 fetched ahead: ${JSON.stringify(remote.calls.map((c) => c.block))}`);
});
