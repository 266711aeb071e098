/**
 * Direct (O_DIRECT) writes of block files (src/cache/direct.ts), on the real filesystem of the
 * test machine's temp folder: a block written from an aligned pooled buffer lands whole and
 * leaves no page in the page cache (fincore), a short last block is truncated to its length,
 * other data is written through the page cache, and the block cache writes the blocks of a
 * cold read directly once its buffers are ready. Where the temp folder's filesystem refuses
 * O_DIRECT the tests say so and check the fallback instead.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { BLOCK_BYTES } from '../../src/cache/blocks.js';
import { DirectWrites } from '../../src/cache/direct.js';
import { BlockFiles } from '../../src/cache/disk.js';
import { BlockBufferPool } from '../../src/cache/pool.js';
import { FakeRemote, openCache, tempDir } from './helpers.js';

const run = promisify(execFile);

/** Bytes of `file` in the page cache. */
async function resident(file: string): Promise<number> {
  const { stdout } = await run('fincore', ['--bytes', '--noheadings', '--output', 'RES', file]);
  return Number(stdout.trim());
}

async function prepared(t: ExecutionContext, count: number): Promise<{ dir: string; direct: DirectWrites; bufs: Buffer[]; logs: string[] }> {
  const dir = await tempDir(t, 'sreg-direct-');
  const logs: string[] = [];
  const direct = new DirectWrites(dir, (l) => logs.push(l));
  const bufs = await direct.prepare(count);
  if (bufs.length === 0) t.log(`WARNING: this filesystem takes no direct writes here (${logs.join('; ')}): only the fallback is checked`);
  return { dir, direct, bufs, logs };
}

test('a block written from an aligned buffer lands whole, directly (none of it in the page cache); a short one is truncated to its length', async (t) => {
  const { dir, direct, bufs } = await prepared(t, 3);
  const files = new BlockFiles(dir, () => undefined, 4, direct);
  if (bufs.length === 0) return t.pass();
  t.is(bufs.length, 3);
  for (const b of bufs) {
    t.is(b.length, BLOCK_BYTES);
    t.true(direct.aligned(b));
    t.true(b.buffer instanceof SharedArrayBuffer, 'the hashing workers still read them in place');
  }
  const full = bufs[0]!;
  randomFillSync(full);
  const short = bufs[1]!.subarray(0, 10_001);
  bufs[1]!.fill(0xee); // old bytes after the data must not reach the disk
  short.fill(0x5a);
  t.true(direct.aligned(short), 'a block that starts an aligned buffer');
  await files.write('rev1', 0, full);
  await files.write('rev1', 1, short);
  t.is(await resident(files.path('rev1', 0)), 0, 'written around the page cache');
  t.is(await resident(files.path('rev1', 1)), 0);
  t.true((await readFile(files.path('rev1', 0))).equals(full));
  t.true((await readFile(files.path('rev1', 1))).equals(Buffer.alloc(10_001, 0x5a)), 'exactly its bytes: truncated to its length');
});

test('data that is not an aligned pooled buffer (or direct writes off) goes through the page cache, and lands whole', async (t) => {
  const { dir, direct, bufs } = await prepared(t, 1);
  const files = new BlockFiles(dir, () => undefined, 4, direct);
  const plain = Buffer.alloc(64 * 1024, 0x11);
  t.false(direct.aligned(plain));
  if (bufs.length > 0) t.false(direct.aligned(bufs[0]!.subarray(512, 4096)), 'a slice that does not start the buffer');
  await files.write('rev2', 0, plain);
  t.true((await readFile(files.path('rev2', 0))).equals(plain));
  t.true((await resident(files.path('rev2', 0))) > 0, 'buffered: its pages were cached');

  const offDir = await tempDir(t, 'sreg-direct-off-');
  const off = new DirectWrites(offDir, () => undefined, false);
  t.deepEqual(await off.prepare(2), [], 'off: no aligned buffers');
  const offFiles = new BlockFiles(offDir, () => undefined, 4, off);
  const b = Buffer.alloc(8192, 0x22);
  await offFiles.write('rev3', 0, b);
  t.true((await readFile(offFiles.path('rev3', 0))).equals(b));
});

test('where page-aligned shared memory is refused (a ulimit -v), blocks are written through the page cache, whole, and the log says why', async (t) => {
  const dir = await tempDir(t, 'sreg-direct-nomem-');
  const logs: string[] = [];
  const refuse = (): SharedArrayBuffer => {
    throw new RangeError('WebAssembly.Memory(): could not allocate memory');
  };
  const direct = new DirectWrites(dir, (l) => logs.push(l), true, refuse);
  t.deepEqual(await direct.prepare(2), []);
  t.true(logs.some((l) => l.includes('direct writes off (no page-aligned shared memory: WebAssembly.Memory(): could not allocate memory')), logs.join('; '));
  const files = new BlockFiles(dir, () => undefined, 4, direct);
  const b = Buffer.alloc(BLOCK_BYTES, 0x33);
  t.false(direct.aligned(b));
  await files.write('rev4', 0, b);
  t.true((await readFile(files.path('rev4', 0))).equals(b));
  t.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.')), [], 'no probe file');
});

test('the pool hands out its aligned buffers first and always takes them back, beyond `keep`', async (t) => {
  const { bufs } = await prepared(t, 2);
  if (bufs.length === 0) return t.pass();
  const pool = new BlockBufferPool(0);
  pool.addAligned(bufs);
  // Identity, not deepEqual: ava would compare 4 MiB buffers byte by byte.
  const sameBuffers = (got: Buffer[]): boolean => got.length === bufs.length && bufs.every((b) => got.includes(b));
  const got = [pool.acquire(), pool.acquire()];
  t.true(sameBuffers(got));
  const plain = pool.acquire();
  t.false(bufs.includes(plain));
  for (const b of [...got, plain]) pool.releaseLater(b);
  await new Promise((r) => setImmediate(r));
  t.true(sameBuffers([pool.acquire(), pool.acquire()]), 'kept although keep is 0');
  t.false(bufs.includes(pool.acquire()));
});

test('a cold read through the block cache writes its block files directly; they hold the right bytes; a crash\'s probe file goes at the next open', async (t) => {
  const dir = await tempDir(t, 'sreg-direct-cache-');
  const remote = new FakeRemote();
  const file = remote.add(2 * BLOCK_BYTES + 12_345);
  const bytes = remote.files.get(file.rev)!;
  const { cache, logs } = await openCache(t, { dir, fetch: remote.fetch, maxInFlight: 2 });
  // The probe ran in open; its log line says how blocks are written.
  const deadline = Date.now() + 10_000;
  const direct = logs.some((l) => l.includes('cache: direct writes (O_DIRECT)'));
  if (!direct) t.log(`WARNING: no direct writes on this filesystem: ${logs.join('; ')}`);
  const ready = new Map<number, string>();
  cache.on('ready', (_rev: string, b: number, f: string) => ready.set(b, f));
  t.true((await cache.read(file, 0, file.size, 1)).equals(bytes));
  while (ready.size < 3 && Date.now() < deadline) await once(cache, 'ready');
  t.is(ready.size, 3);
  for (const [b, f] of ready) {
    if (direct) t.is(await resident(f), 0, `block ${b}: written around the page cache`);
    t.true((await readFile(f)).equals(bytes.subarray(b * BLOCK_BYTES, Math.min(file.size, (b + 1) * BLOCK_BYTES))), `block ${b} holds its bytes`);
  }
  await cache.close();
  // kill -9 during the probe leaves its file: the next open removes it.
  await writeFile(path.join(dir, '.direct-probe-999999'), 'x');
  const again = await openCache(t, { dir, fetch: remote.fetch, maxInFlight: 2 });
  t.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.')), []);
  t.true((await again.cache.read(file, 0, file.size, 2)).equals(bytes));
});
