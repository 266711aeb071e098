/**
 * Readahead: a sequential reader gets blocks fetched ahead of its reads (a growing window), a
 * random reader only what it touches; demand fetches go before readahead.
 */
import test from 'ava';
import { FetchSlots } from '../../src/cache/slots.js';
import { ReadaheadPlanner } from '../../src/cache/readahead.js';
import { BLOCK, FakeRemote, freshStream, MiB, openCache, rng, tempDir } from './helpers.js';

const CHUNK = 128 * 1024;

test('a sequential reader gets a growing readahead window, fetched ahead of its reads', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(40 * BLOCK);
  const data = remote.data(f);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch, maxInFlight: 4, budgetBytes: 200 * MiB });
  const aheadSeen = new Set<number>();
  for (let offset = 0; offset < f.size; offset += CHUNK) {
    const got = await cache.read(f, offset, CHUNK, 7);
    // The fake remote answers at once: the block writes behind the reads are the bottleneck
    // here, and each holds its slot; the reader waits for them as it did for readahead to land.
    await cache.settle();
    t.true(got.equals(data.subarray(offset, offset + CHUNK)));
    const current = Math.floor(offset / BLOCK);
    const furthest = Math.max(...remote.calls.map((c) => c.block));
    aheadSeen.add(furthest - current);
  }
  t.true(aheadSeen.has(1) && aheadSeen.has(2) && aheadSeen.has(4) && aheadSeen.has(8), `blocks requested ahead of the reader: ${[...aheadSeen].join(',')}`);
  t.is(Math.max(...aheadSeen), 16, 'the window stops at 4 × maxInFlight');
  t.true(remote.maxInFlightSeen <= 4, `never more than maxInFlight fetches at once (saw ${remote.maxInFlightSeen})`);
  t.is(remote.count(), 40, 'every block fetched exactly once');
  const s = cache.stats();
  t.true(s.hits > s.misses, `mostly served from disk (${s.hits} hits, ${s.misses} misses)`);
});

test('a random reader fetches only the blocks it touches', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(40 * BLOCK);
  const data = remote.data(f);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch, maxInFlight: 4, budgetBytes: 200 * MiB });
  const next = rng(7);
  const touched = new Set<number>();
  for (let i = 0; i < 30; i++) {
    const offset = next(f.size - CHUNK);
    const got = await cache.read(f, offset, CHUNK, 8); // one stream, random offsets
    t.true(got.equals(data.subarray(offset, offset + CHUNK)));
    touched.add(Math.floor(offset / BLOCK));
    touched.add(Math.floor((offset + CHUNK - 1) / BLOCK));
  }
  await cache.close(); // waits for anything in flight
  t.deepEqual(new Set(remote.calls.map((c) => c.block)), touched);
  t.is(remote.count(), touched.size);
});

test('forget drops a stream: its next read starts a new run', (t) => {
  const p = new ReadaheadPlanner(8);
  const size = 100 * BLOCK;
  t.deepEqual(p.onRead(1, 'r', size, 0, CHUNK), []);
  t.deepEqual(p.onRead(1, 'r', size, CHUNK, 2 * CHUNK), [1]);
  t.deepEqual(p.onRead(1, 'r', size, 2 * CHUNK, BLOCK + 10), [2, 3], 'entering block 1 doubles the window');
  t.deepEqual(p.onRead(1, 'r', size, BLOCK + 10, 2 * BLOCK + 10), [3, 4, 5, 6]);
  t.deepEqual(p.onRead(1, 'other-rev', size, 2 * BLOCK + 10, 2 * BLOCK + 20), [], 'another rev is another run');
  p.forget(1);
  t.deepEqual(p.onRead(1, 'r', size, 0, CHUNK), []);
  t.deepEqual(p.onRead(1, 'r', size, 99 * BLOCK, 100 * BLOCK), [], 'a jump closes the window');
  t.deepEqual(p.onRead(2, 'r', 3 * BLOCK, 0, BLOCK), []);
  t.deepEqual(p.onRead(2, 'r', 3 * BLOCK, BLOCK, 2 * BLOCK), [2]);
  t.deepEqual(p.onRead(2, 'r', 3 * BLOCK, 2 * BLOCK, 3 * BLOCK), [], 'nothing past the last block');
});

test('slots: demand goes before readahead, readahead keeps one slot free, promotion', async (t) => {
  const slots = new FetchSlots(3);
  const order: string[] = [];
  const take = (name: string, prio: 'demand' | 'readahead') => {
    const tk = slots.acquire(prio);
    void tk.ready.then(() => order.push(name));
    return tk;
  };
  const ra = [take('ra1', 'readahead'), take('ra2', 'readahead'), take('ra3', 'readahead'), take('ra4', 'readahead')];
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['ra1', 'ra2'], 'readahead leaves one slot free');
  const d1 = take('d1', 'demand');
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['ra1', 'ra2', 'd1'], 'a demand fetch starts at once');
  const d2 = take('d2', 'demand');
  ra[0]?.release();
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['ra1', 'ra2', 'd1', 'd2'], 'demand before the waiting readahead');
  ra[3]?.promote(); // a reader now waits on ra4
  d1.release();
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['ra1', 'ra2', 'd1', 'd2', 'ra4'], 'the promoted ticket goes first');
  for (const tk of [...ra, d1, d2]) tk.release();
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['ra1', 'ra2', 'd1', 'd2', 'ra4', 'ra3']);
  t.is(slots.inFlight, 0, 'released ticket leave no slot taken');
  slots.close();
  await t.throwsAsync(slots.acquire('demand').ready, { message: /closed/ });
});

test('readahead does not starve a demand read', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(20 * BLOCK);
  const g = remote.add(BLOCK);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch, maxInFlight: 2, budgetBytes: 200 * MiB });
  await cache.read(f, 0, CHUNK, 9);
  await cache.read(f, CHUNK, CHUNK, 9); // sequential: readahead of block 1 starts
  await cache.read(f, BLOCK, 10, freshStream()); // (waits for that readahead to land)
  await cache.settle(); // and to be written
  remote.hold();
  await cache.read(f, 2 * CHUNK, BLOCK, 9); // enters block 1 (on disk): the window grows to blocks 2 and 3
  await new Promise((r) => setTimeout(r, 20));
  t.is(remote.inFlight, 1, 'readahead of block 2 runs, block 3 waits: one slot stays free');
  const other = cache.read(g, 0, 10, freshStream());
  await new Promise((r) => setTimeout(r, 20));
  t.true(remote.calls.some((c) => c.rev === g.rev), 'the demand fetch started while readahead waits');
  t.is(remote.inFlight, 2);
  remote.release();
  t.true((await other).equals(remote.data(g).subarray(0, 10)));
  // Block 3's readahead was waiting for a slot: it runs once one is free (give it up to 5 s).
  for (const deadline = Date.now() + 5000; remote.count(f.rev) < 4 && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await cache.close();
  t.is(remote.count(f.rev), 4, 'blocks 0-3 of f');
});

test('readahead survives the kernel reordering reads that are in flight together', (t) => {
  const planner = new ReadaheadPlanner(8);
  const KiB128 = 128 * 1024;
  // A sequential reader whose 128 KiB reads arrive 1, 0, 3, 2, 5, 4, …: still sequential.
  const order = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8];
  const size = 64 * BLOCK;
  let fetched: number[] = [];
  for (const i of order) fetched = fetched.concat(planner.onRead(7, 'rev1', size, i * KiB128, (i + 1) * KiB128));
  t.true(planner.windowOf(7) >= 1, 'the window stays open');
  t.true(fetched.includes(1), 'the next block is fetched ahead');
  // A read far away (a random reader) closes it.
  planner.onRead(7, 'rev1', size, 40 * BLOCK, 40 * BLOCK + KiB128);
  t.is(planner.windowOf(7), 0);
});

test('the window grows with each sequential read but only as far as the run has earned: a block ahead per MiB read', (t) => {
  const planner = new ReadaheadPlanner(16);
  const KiB128 = 128 * 1024;
  const size = 100 * BLOCK;
  const windowAfter = new Map<number, number>(); // MiB read → window
  for (let i = 0; i < 8 * 40; i++) {
    planner.onRead(3, 'rev', size, i * KiB128, (i + 1) * KiB128);
    if ((i + 1) % 8 === 0) windowAfter.set((i + 1) / 8, planner.windowOf(3));
  }
  t.is(windowAfter.get(1), 1, 'a loop device reading 1 MiB of tables gets one block ahead, not 16');
  t.is(windowAfter.get(3), 3);
  t.is(windowAfter.get(8), 8);
  t.is(windowAfter.get(16), 16, 'then the cap');
  t.is(windowAfter.get(40), 16);
  // A read the kernel sent again (no progress) does not grow it.
  const again = new ReadaheadPlanner(16);
  for (let i = 0; i < 40; i++) again.onRead(4, 'rev', size, i * KiB128, (i + 1) * KiB128); // 5 MiB
  t.is(again.windowOf(4), 5);
  again.onRead(4, 'rev', size, 39 * KiB128, 40 * KiB128);
  t.is(again.windowOf(4), 5);
});
