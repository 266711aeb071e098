/**
 * Kept blocks trusted without reading them (src/cache/kept.ts): after a clean close the next
 * session serves them with no digest (counted on the real hash pool); a block file changed
 * after the close (its bytes, its size, its mtime, or its bytes with the mtime set back) is
 * digested at first use and fetched again if its bytes differ; blocks written by a session
 * that never closed are digested; and rows from before state migration 3 are not trusted.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, open, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { revDirName } from '../../src/cache/blocks.js';
import type { Hasher } from '../../src/cache/entry.js';
import { migrate } from '../../src/catalog/migrate.js';
import { STATE_MIGRATIONS } from '../../src/catalog/mount-state.js';
import { Sha256Pool } from '../../src/util/sha256-pool.js';
import { BLOCK, FakeRemote, freshStream, openCache, openDb, tempDir } from './helpers.js';

/** The real pool, counting the blocks it digests. */
function countingHasher(): Hasher & { count: number } {
  const pool = new Sha256Pool({ size: 1 });
  const h = {
    count: 0,
    digest: (d: Uint8Array) => {
      h.count++;
      return pool.digest(d);
    },
    close: () => pool.close(),
  };
  return h;
}

async function setUp(t: ExecutionContext, blocks = 3) {
  const remote = new FakeRemote();
  const f = remote.add(blocks * BLOCK - 1000);
  const work = await tempDir(t);
  const db = openDb(t, work);
  const dir = path.join(work, 'blocks');
  const reopen = async () => {
    const hasher = countingHasher();
    const opened = await openCache(t, { db, dir, fetch: remote.fetch, hasher });
    return { ...opened, hasher };
  };
  const blockFile = (b: number): string => path.join(dir, revDirName(f.rev), String(b));
  return { remote, f, db, dir, reopen, blockFile };
}

test('after a clean close, kept blocks are ready at prepare and served without a digest or a fetch', async (t) => {
  const { remote, f, db, reopen } = await setUp(t);
  const first = await reopen();
  await first.cache.read(f, 0, f.size, freshStream());
  await first.cache.close();
  t.is(first.hasher.count, 3, 'digested once, when fetched');
  t.is((db.prepare('SELECT count(*) AS n FROM sreg_cache_blocks WHERE file_id IS NOT NULL').get() as { n: number }).n, 3);

  const second = await reopen();
  t.deepEqual(second.cache.readyBlocks(f.rev), [], 'nothing checked before use');
  t.true(second.logs.some((l) => /3 blocks .* 3 sealed at a clean close/.test(l)), second.logs.join('\n'));
  const ready: number[] = [];
  second.cache.on('ready', (_rev: string, b: number) => ready.push(b));
  await second.cache.prepare(f);
  t.deepEqual(second.cache.readyBlocks(f.rev).sort(), [0, 1, 2]);
  t.deepEqual(ready.sort(), [0, 1, 2]);
  t.true((await second.cache.read(f, 0, f.size, freshStream())).equals(remote.data(f)));
  t.is(second.hasher.count, 0, 'no block was digested');
  t.is(remote.count(), 3, 'nothing fetched again');
  await second.cache.close();

  // Still sealed after a session that only read them: a third one trusts them at their first read.
  const third = await reopen();
  t.true((await third.cache.read(f, BLOCK - 10, 20, freshStream())).equals(remote.data(f).subarray(BLOCK - 10, BLOCK + 10)));
  t.is(third.hasher.count, 0);
});

test('a block file changed after the clean close is digested at its first use and fetched again if its bytes differ', async (t) => {
  const { remote, f, reopen, blockFile } = await setUp(t, 5);
  const first = await reopen();
  await first.cache.read(f, 0, f.size, freshStream());
  await first.cache.close();
  // 1: one byte changed; 2: one byte shorter; 3: only its mtime changed (bytes as they were);
  // 4: one byte changed and the mtime set back to the very nanosecond (its ctime tells).
  const fh = await open(blockFile(1), 'r+');
  await fh.write(Buffer.from([remote.data(f)[BLOCK + 7]! ^ 0xff]), 0, 1, 7);
  await fh.close();
  await truncate(blockFile(2), BLOCK - 1);
  await utimes(blockFile(3), new Date(), new Date(Date.now() - 3_600_000));
  const before = await stat(blockFile(4), { bigint: true });
  const fh4 = await open(blockFile(4), 'r+');
  await fh4.write(Buffer.from([remote.data(f)[4 * BLOCK + 9]! ^ 0xff]), 0, 1, 9);
  await fh4.close();
  const ns = before.mtimeNs;
  await promisify(execFile)('touch', ['-m', '-d', `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`, blockFile(4)]);
  t.is((await stat(blockFile(4), { bigint: true })).mtimeNs, ns, 'the mtime is back to what it was');

  const second = await reopen();
  await second.cache.prepare(f);
  t.deepEqual(second.cache.readyBlocks(f.rev).sort(), [0], 'only the untouched block is trusted');
  t.true((await second.cache.read(f, 0, f.size, freshStream())).equals(remote.data(f)));
  t.is(remote.count(f.rev, 0), 1);
  t.is(remote.count(f.rev, 1), 2, 'changed bytes: fetched again');
  t.is(remote.count(f.rev, 2), 2, 'shorter: fetched again');
  t.is(remote.count(f.rev, 3), 1, 'same bytes, new mtime: digested, kept');
  t.is(remote.count(f.rev, 4), 2, 'changed bytes behind a restored mtime: fetched again');
  // Digested: blocks 1, 3 and 4 from disk (2 could not be read whole); the refetched 1, 2 and 4.
  t.is(second.hasher.count, 6);
  await second.cache.close();

  const third = await reopen();
  t.true((await third.cache.read(f, 0, f.size, freshStream())).equals(remote.data(f)));
  t.is(third.hasher.count, 0, 'every block was sealed again at the clean close');
  t.is(remote.count(), 8);
});

test('blocks written by a session that never closed are digested; those sealed before it are still trusted', async (t) => {
  const { remote, f, db, reopen } = await setUp(t);
  const first = await reopen();
  await first.cache.read(f, 0, 10, freshStream()); // block 0
  await first.cache.close();
  const crashed = await reopen();
  await crashed.cache.read(f, BLOCK, 10, freshStream()); // block 1, written by a session that is never closed
  await crashed.cache.settle();
  // Its rows reach the database a second after they are written (as in a crash after that);
  // the indexFlushIntervalMs timer is the only thing that may flush them here.
  const rows = (): number => (db.prepare('SELECT count(*) AS n FROM sreg_cache_blocks').get() as { n: number }).n;
  for (let i = 0; i < 100 && rows() < 2; i++) await new Promise((r) => setTimeout(r, 50));
  t.is(rows(), 2);

  const next = await reopen();
  await next.cache.prepare(f);
  t.deepEqual(next.cache.readyBlocks(f.rev), [0], 'the block sealed at the clean close');
  t.true((await next.cache.read(f, 0, 2 * BLOCK, freshStream())).equals(remote.data(f).subarray(0, 2 * BLOCK)));
  t.is(next.hasher.count, 1, 'block 1 digested from disk');
  t.is(remote.count(), 2, 'and found good');
});

test('rows from before state migration 3 are not trusted: digested at first use, sealed at the next clean close', async (t) => {
  const remote = new FakeRemote();
  const f = remote.add(BLOCK);
  const work = await tempDir(t);
  const dir = path.join(work, 'blocks');
  const file = path.join(work, 'state.db');
  // What an older sreg left: schema version 2, a row and its block file.
  const old = new Database(file);
  migrate(old, STATE_MIGRATIONS.slice(0, 2), { python: false });
  old.prepare('INSERT INTO sreg_cache_blocks (rev, block, bytes, sha256, last_used_ms) VALUES (?, 0, ?, ?, 1)')
    .run(f.rev, f.size, createHash('sha256').update(remote.data(f)).digest());
  old.close();
  await mkdir(path.join(dir, revDirName(f.rev)), { recursive: true });
  await writeFile(path.join(dir, revDirName(f.rev), '0'), remote.data(f));

  const db = openDb(t, work); // migrates to the current version
  t.deepEqual(db.prepare('SELECT file_id FROM sreg_cache_blocks').all(), [{ file_id: null }]);
  const hasher = countingHasher();
  const first = await openCache(t, { db, dir, fetch: remote.fetch, hasher });
  await first.cache.prepare(f);
  t.deepEqual(first.cache.readyBlocks(f.rev), []);
  t.true((await first.cache.read(f, 0, f.size, freshStream())).equals(remote.data(f)));
  t.is(hasher.count, 1);
  t.is(remote.count(), 0);
  await first.cache.close();

  const again = countingHasher();
  const second = await openCache(t, { db, dir, fetch: remote.fetch, hasher: again });
  await second.cache.prepare(f);
  t.deepEqual(second.cache.readyBlocks(f.rev), [0], 'its file was sealed at the clean close');
  t.is(again.count, 0);
});
