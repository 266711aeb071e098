/**
 * Runs: readahead fetches contiguous missing blocks in one request each (fetchRun), its bytes
 * going into each block's pooled buffer in turn; each block is served, checked and written on
 * its own as soon as its bytes are in. Checked with examples and with generated read sequences
 * (several streams, requests cut midway, corrupted blocks) against the files' bytes.
 */
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { CacheError } from '../../src/cache/index.js';
import { BlockBufferPool } from '../../src/cache/pool.js';
import { RemoteError } from '../../src/dropbox/errors.js';
import { BLOCK, FakeRemote, MiB, openCache, rng, tempDir } from './helpers.js';

/** Counts the pooled buffers handed out and not yet given back, and the most at once. */
function countBuffers(t: ExecutionContext): { out: () => number; peak: () => number; reset: () => void } {
  const proto = BlockBufferPool.prototype as unknown as { acquire: (this: BlockBufferPool) => Buffer; releaseLater: (this: BlockBufferPool, buf: Buffer | undefined, slot?: { release(): void }) => void };
  const { acquire, releaseLater } = proto;
  let out = 0;
  let peak = 0;
  proto.acquire = function () {
    peak = Math.max(peak, ++out);
    return acquire.call(this);
  };
  proto.releaseLater = function (buf, slot) {
    if (buf) out--;
    releaseLater.call(this, buf, slot);
  };
  t.teardown(() => {
    proto.acquire = acquire;
    proto.releaseLater = releaseLater;
  });
  return { out: () => out, peak: () => peak, reset: () => void (peak = out = 0) };
}

/** No block is covered by two requests on the wire at once (single flight across runs). */
function overlapping(remote: FakeRemote): () => number {
  let worst = 0;
  const live = new Map<string, number>();
  const real = remote.fetchRun;
  const wrapped: typeof real = async (f, start, end, sink) => {
    const blocks: string[] = [];
    for (let b = Math.floor(start / BLOCK); b * BLOCK < end; b++) blocks.push(`${f.rev}/${b}`);
    for (const k of blocks) {
      const n = (live.get(k) ?? 0) + 1;
      live.set(k, n);
      worst = Math.max(worst, n);
    }
    try {
      await real(f, start, end, sink);
    } finally {
      for (const k of blocks) live.set(k, live.get(k)! - 1);
    }
  };
  (remote as { fetchRun: typeof real }).fetchRun = wrapped;
  return () => worst;
}

test.serial('a sequential reader: readahead in runs of window / maxInFlight blocks, one request each; exact bytes, every block fetched once, buffers bounded', async (t) => {
  const buffers = countBuffers(t);
  const remote = new FakeRemote();
  const f = remote.add(40 * BLOCK + 123);
  const data = remote.data(f);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch, fetchRun: remote.fetchRun, maxInFlight: 4, budgetBytes: 400 * MiB });
  for (let offset = 0; offset < f.size; offset += MiB) {
    const got = await cache.read(f, offset, MiB, 7);
    t.true(got.equals(data.subarray(offset, offset + MiB)), `bytes at ${offset}`);
  }
  await cache.settle();
  const lengths = remote.runs.map((r) => Math.ceil((r.end - r.start) / BLOCK));
  t.is(Math.max(...lengths), 4, `runs of up to 4 blocks (window 16 / 4 connections): ${lengths.join(',')}`);
  t.true(lengths.filter((n) => n === 4).length >= 5, `most of the file came in runs of 4: ${lengths.join(',')}`);
  t.is(remote.count(), 41, 'every block fetched exactly once');
  t.true(remote.maxInFlightSeen <= 4, `requests at once: ${remote.maxInFlightSeen}`);
  t.true(buffers.peak() <= 4 + 2, `at most maxInFlight + writeBehind buffers at once (saw ${buffers.peak()})`);
  t.is(buffers.out(), 0, 'every buffer given back');
});

test.serial('a request cut midway: the blocks that came are served and kept, the others fail with its error and are fetched again by the next read', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(20 * BLOCK);
  const data = remote.data(f);
  const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch, fetchRun: remote.fetchRun, maxInFlight: 1, budgetBytes: 400 * MiB });
  const CUT = 11;
  remote.failWhen((c) => (c.block === CUT ? new RemoteError('network', 'files/download', 'connection reset') : undefined));
  const failed: number[] = [];
  for (let offset = 0; offset < f.size; offset += MiB) {
    try {
      t.true((await cache.read(f, offset, MiB, 3)).equals(data.subarray(offset, offset + MiB)));
    } catch (e) {
      t.true(e instanceof RemoteError && /connection reset/.test(e.message), String(e));
      failed.push(offset / BLOCK);
    }
  }
  await cache.settle();
  const run = remote.runs.find((r) => r.start <= CUT * BLOCK && CUT * BLOCK < r.end)!;
  const [first, last] = [run.start / BLOCK, run.end / BLOCK - 1];
  t.true(first < CUT && last > CUT, `the cut is midway through a run (blocks ${first}-${last})`);
  // Only a read already waiting on a block the cut lost fails (readahead far ahead has none).
  t.true(failed.every((b) => Math.floor(b) >= CUT && Math.floor(b) <= last), `reads failed at blocks ${failed.join(',')}`);
  for (let b = first; b < CUT; b++) t.is(remote.count(f.rev, b), 1, `block ${b} came before the cut: kept`);
  t.is(remote.count(f.rev, CUT), 2, 'the cut block is fetched again');
  remote.heal();
  t.true((await cache.read(f, 0, f.size, 4)).equals(data), 'the whole file reads exact');
  t.is(remote.count(f.rev, CUT), 2);
});

type Op = { kind: 'read'; file: number; stream: number; offset: number; length: number; times: number } | { kind: 'cut'; file: number; block: number } | { kind: 'corrupt'; file: number; block: number };

test.serial('generated reads from several streams, with requests cut midway and blocks corrupted: every read gets the exact bytes or the error of the request it needed; single flight holds; nothing left behind', async (t) => {
  const sizes = [13 * BLOCK + 5, 6 * BLOCK, BLOCK - 7];
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 8,
      // `times` reads one after the other on the stream (a sweep: readahead, and runs, come of it).
      arbitrary: fc.record({ kind: fc.constant('read' as const), file: fc.nat({ max: 2 }), stream: fc.nat({ max: 3 }), offset: fc.nat({ max: 14 * BLOCK }), length: fc.integer({ min: 1, max: 3 * MiB }), times: fc.integer({ min: 1, max: 24 }) }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('cut' as const), file: fc.nat({ max: 2 }), block: fc.nat({ max: 13 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('corrupt' as const), file: fc.nat({ max: 2 }), block: fc.nat({ max: 13 }) }) },
  );
  // Sequential runs make readahead: a read is often the one after the stream's last.
  const ops = fc.array(fc.tuple(op, fc.boolean()), { minLength: 1, maxLength: 30 });
  const buffers = countBuffers(t);
  let failed = 0;
  let cuts = 0;
  let multi = 0;
  await fc.assert(
    fc.asyncProperty(ops, fc.integer({ min: 1, max: 4 }), fc.nat(), async (list, maxInFlight, seed) => {
      buffers.reset();
      const remote = new FakeRemote();
      remote.pieces = rng(seed + 1);
      const flights = overlapping(remote);
      const files = sizes.map((s) => remote.add(s));
      const { cache } = await openCache(t, { dir: await tempDir(t), fetch: remote.fetch, fetchRun: remote.fetchRun, maxInFlight, budgetBytes: 400 * MiB });
      /**
       * The bytes a read got are the file's, except that a corrupted block may be served until
       * its rev is complete and found not to match its content_hash (it cannot be told before):
       * then only at the first byte of a block corrupted in this run.
       */
      const corrupted = files.map(() => new Set<number>());
      const check = (fi: number, offset: number, got: Buffer): void => {
        const want = remote.data(files[fi]!).subarray(offset, offset + got.length);
        if (got.length !== want.length) throw new Error(`${got.length} bytes at ${offset} of file ${fi}, not ${want.length}`);
        if (got.equals(want)) return;
        for (let i = 0; i < got.length; i++) {
          const at = offset + i;
          if (got[i] !== want[i] && !(at % BLOCK === 0 && corrupted[fi]!.has(at / BLOCK))) throw new Error(`wrong byte at ${at} of file ${fi}`);
        }
      };
      try {
        const at = new Map<number, number>();
        const reads: Promise<void>[] = [];
        for (const [o, sequential] of list) {
          const f = files[o.file]!;
          // Called only while the fault is armed: an error returned is a request cut there.
          // The next request of the file that reaches that block or one after it is cut there.
          if (o.kind === 'cut') {
            const from = o.block % Math.ceil(f.size / BLOCK);
            remote.failWhen((c) => (c.rev === f.rev && c.block >= from ? (cuts++, new RemoteError('network', 'files/download', 'connection reset')) : undefined));
          }
          if (o.kind === 'corrupt') {
            remote.corrupt(f.rev, o.block);
            corrupted[o.file]!.add(o.block);
          }
          if (o.kind !== 'read') continue;
          let offset = sequential ? (at.get(o.stream) ?? 0) % f.size : o.offset % f.size;
          for (let i = 0; i < o.times && offset < f.size; i++, offset += o.length) {
            const from = offset;
            reads.push(
              cache.read(f, from, o.length, o.stream).then(
                (got) => check(o.file, from, got),
                (e: unknown) => {
                  // A cut request fails its blocks with its error; a rev corrupted twice in a row is corrupt.
                  if (!(e instanceof RemoteError) && !(e instanceof CacheError && e.code === 'corrupt')) throw e;
                  failed++;
                },
              ),
            );
            if (reads.length >= 3) await Promise.all(reads.splice(0));
          }
          at.set(o.stream, offset);
        }
        await Promise.all(reads);
        await cache.settle();
        if (flights() > 1) throw new Error('a block was on the wire in two requests at once');
        multi += remote.runs.filter((r) => r.end - r.start > BLOCK).length;
        // With the faults gone, every file reads whole (the read that completes a corrupted rev
        // finds it out), and then exact: the blocks that failed or did not match are fetched again.
        remote.heal();
        for (const [fi, f] of files.entries()) {
          try {
            check(fi, 0, await cache.read(f, 0, f.size, 99));
          } catch (e) {
            // Its second mismatch in a row (a block corrupted again after the first was found out).
            if (!(e instanceof CacheError && e.code === 'corrupt')) throw e;
          }
          if (!(await cache.read(f, 0, f.size, 98)).equals(remote.data(f))) throw new Error(`file ${fi} read wrong after its rev was checked`);
        }
      } finally {
        await cache.close();
      }
      await new Promise((r) => setImmediate(r));
      if (buffers.out() !== 0) throw new Error(`${buffers.out()} pooled buffers not given back`);
      if (buffers.peak() > maxInFlight + Math.ceil(maxInFlight / 2)) throw new Error(`${buffers.peak()} buffers at once`);
    }),
    { numRuns: 30 },
  );
  // Whether a read was waiting on a block a cut lost is up to timing (readahead often has no
  // waiter); that requests were cut is not.
  t.true(cuts > 0, 'some requests were cut (the generator reaches the failure paths)');
  t.true(multi > 0, 'some requests were runs of several blocks');
  t.log(`${multi} requests of several blocks, ${cuts} requests cut, ${failed} reads failed by a cut or a corrupt rev`);
});
