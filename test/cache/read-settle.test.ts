/**
 * A read into the caller's buffer (the kernel's, through fuse/) writes nothing into it after its
 * promise settles: fuse/ answers the kernel then, and libfuse frees that buffer. Checked where
 * it used to go wrong: one block of a read fails while a sibling block is still being fetched,
 * or still being read from its block file; and the caller gives up (its signal aborts) while
 * the read waits on a fetch. Fetches and file reads are held at gates, so the order of events
 * is fixed, not timed.
 */
import test from 'ava';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { CacheError } from '../../src/cache/index.js';
import { RemoteError } from '../../src/dropbox/errors.js';
import type { FileRef } from '../../src/vfs/ports.js';
import { BLOCK, FakeRemote, freshStream, openCache, tempDir } from './helpers.js';

const boom = (): RemoteError => new RemoteError('network', 'files/download', 'cannot reach Dropbox (connection reset)');

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

/** Resolves after the microtasks and I/O callbacks queued so far (a few turns of the loop). */
const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

test('a failed block rejects the read; its sibling, fetched later, copies nothing into the caller\'s buffer', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK);
  const block0 = gate();
  const fetch = async (file: FileRef, s: number, e: number, into?: Buffer): Promise<Buffer> => {
    if (s === 0) await block0.wait;
    return remote.fetch(file, s, e, into);
  };
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch });
  const err = boom();
  remote.failWhen((c) => (c.block === 1 ? err : undefined));
  const into = Buffer.alloc(200, 0xee);
  const reading = cache.read(f, BLOCK - 100, 200, freshStream(), into); // blocks 0 and 1
  t.is(await t.throwsAsync(reading), err);
  const atAnswer = Buffer.from(into);
  block0.open();
  // Another reader of block 0 joins the same fetch: when it has its bytes, so did the first read's sibling.
  t.true((await cache.read(f, BLOCK - 100, 100, freshStream())).equals(remote.data(f).subarray(BLOCK - 100, BLOCK)));
  await turns();
  t.true(into.equals(atAnswer), 'nothing written into the buffer after the read settled');
  t.true(into.equals(Buffer.alloc(200, 0xee)), 'not one byte');
});

test('a failed block rejects the read only after its sibling\'s read from a block file, already under way, is done', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK);
  const data = remote.data(f);
  const dir = await tempDir(t);
  const { cache } = await openCache(t, { dir, fetch: remote.fetch });
  t.true((await cache.read(f, 0, 10, freshStream())).equals(data.subarray(0, 10)));
  await cache.settle(); // block 0 is now a block file (written behind the read)

  // Hold every positional read of a file in this process at a gate while `held` is set.
  const probe = await open(path.join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { read: (...a: unknown[]) => Promise<unknown> };
  await probe.close();
  const realRead = proto.read;
  const fileRead = gate();
  let held = false;
  let started = 0;
  proto.read = async function (this: unknown, ...a: unknown[]) {
    if (held) {
      started++;
      await fileRead.wait;
    }
    return realRead.apply(this, a);
  };
  t.teardown(() => void (proto.read = realRead));

  const err = boom();
  let failed!: () => void;
  const fetchFailed = new Promise<void>((r) => (failed = r));
  // Says when block 1's fetch fails (this fault returns nothing; the next one throws).
  remote.failWhen((c) => {
    if (c.block === 1) setImmediate(failed);
    return undefined;
  });
  remote.failWhen((c) => (c.block === 1 ? err : undefined));
  held = true;
  const into = Buffer.alloc(200, 0xee);
  let settled = false;
  const reading = cache.read(f, BLOCK - 100, 200, freshStream(), into);
  reading.then(() => (settled = true), () => (settled = true));
  await fetchFailed;
  // The block file's read goes through libuv's thread pool (open, then read): on a busy machine
  // that takes longer than a few turns of the loop, so wait for it (bounded), not for N turns.
  for (let waitedMs = 0; started === 0 && waitedMs < 10_000; waitedMs += 5) await new Promise((r) => setTimeout(r, 5));
  await turns();
  t.is(started, 1, 'the read of block 0\'s file is under way');
  t.false(settled, 'the read has not settled while a write into the buffer is under way');
  held = false;
  fileRead.open();
  t.is(await t.throwsAsync(reading), err);
  const atAnswer = Buffer.from(into);
  await turns();
  t.true(into.equals(atAnswer), 'nothing written after it settled');
  t.true(into.subarray(0, 100).equals(data.subarray(BLOCK - 100, BLOCK)), 'the write that was under way finished before');
});

test('when the caller gives up (its signal aborts), a read waiting on a fetch rejects at once and writes nothing, ever', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(2 * BLOCK);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  remote.hold();
  const into = Buffer.alloc(1000, 0xee);
  const gone = new AbortController();
  const reading = cache.read(f, BLOCK - 500, 1000, freshStream(), into, gone.signal);
  await turns();
  gone.abort();
  // Still held: the read does not wait for the fetch.
  await t.throwsAsync(reading, { instanceOf: CacheError, message: /answered meanwhile/ });
  remote.release();
  t.true((await cache.read(f, BLOCK - 500, 1000, freshStream())).equals(remote.data(f).subarray(BLOCK - 500, BLOCK + 500)));
  await turns();
  t.true(into.equals(Buffer.alloc(1000, 0xee)), 'not one byte written');
});

test('a caller\'s signal already aborted: nothing is read into its buffer', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(100);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch });
  const into = Buffer.alloc(100, 0xee);
  await t.throwsAsync(cache.read(f, 0, 100, freshStream(), into, AbortSignal.abort()), { instanceOf: CacheError });
  await turns();
  t.true(into.equals(Buffer.alloc(100, 0xee)));
});
