/**
 * src/fuse/stale.ts without a kernel: ENOENT of an OPEN becomes ESTALE (sync and async), other
 * errors pass; KindMemo answers ESTALE once for a path that changed kind within its window,
 * never after it, and stays bounded.
 */
import test from 'ava';
import { KindMemo, staleIfMissing } from '../../src/fuse/stale.js';
import { errnoOf, VfsError } from '../../src/vfs/index.js';

const DIR = 0o040755;
const FILE = 0o100644;

test('staleIfMissing: ENOENT (thrown or rejected) becomes ESTALE; a result or another errno passes', async (t) => {
  t.is(staleIfMissing('/f', () => 7), 7);
  t.is(await staleIfMissing('/f', () => Promise.resolve(8)), 8);
  t.is(errnoOf(t.throws(() => staleIfMissing('/f', () => { throw new VfsError('ENOENT', 'x'); }))), 'ESTALE');
  t.is(errnoOf(await t.throwsAsync(Promise.resolve(staleIfMissing('/f', () => Promise.reject(new VfsError('ENOENT', 'x')))))), 'ESTALE');
  t.is(errnoOf(await t.throwsAsync(Promise.resolve(staleIfMissing('/f', () => Promise.reject(new VfsError('EISDIR', 'x')))))), 'EISDIR');
});

test('KindMemo: a change of kind within the window is ESTALE once; after the window, or the same kind, it is not', (t) => {
  let now = 0;
  const k = new KindMemo(5_000, 10_000, () => now);
  k.check('/a', FILE);
  t.notThrows(() => k.check('/a', FILE));
  t.is(errnoOf(t.throws(() => k.check('/a', DIR))), 'ESTALE');
  t.notThrows(() => k.check('/a', DIR), 'once: the retry sees it');
  now = 10_000;
  t.notThrows(() => k.check('/a', FILE), 'past the window the kernel asks anew (a LOOKUP): no ESTALE');
});

test('KindMemo stays bounded: old entries go first, then all', (t) => {
  let now = 0;
  const k = new KindMemo(1_000, 100, () => now);
  for (let i = 0; i < 100; i++) k.check(`/f${i}`, FILE);
  now = 5_000;
  k.check('/new', FILE);
  t.is(k.size, 1, 'the old ones were dropped');
  for (let i = 0; i < 150; i++) k.check(`/g${i}`, FILE);
  t.true(k.size <= 100);
});
