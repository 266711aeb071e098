/**
 * BlockBufferPool: a released buffer comes back only after the microtasks of the turn that
 * released it (where a fetch's readers copy from it), its slot after it; at most `keep` kept.
 */
import test from 'ava';
import { BlockBufferPool } from '../../src/cache/pool.js';
import { BLOCK } from './helpers.js';

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a released buffer is not handed out again until the readers\' microtasks have run; then it is, and its slot goes after it', async (t) => {
  const pool = new BlockBufferPool(2);
  const a = pool.acquire();
  t.is(a.length, BLOCK);
  let slotFreed = false;
  pool.releaseLater(a, { release: () => (slotFreed = true) });
  for (let i = 0; i < 5; i++) await Promise.resolve(); // readers copy in microtasks like these
  const b = pool.acquire();
  t.not(b, a, 'still in use by the readers of this turn');
  t.false(slotFreed, 'the slot waits for its buffer');
  await nextTurn();
  t.true(slotFreed);
  t.is(pool.acquire(), a, 'the next fetch reuses it');
});

test('at most `keep` free buffers are kept', async (t) => {
  const pool = new BlockBufferPool(1);
  const [a, b] = [pool.acquire(), pool.acquire()];
  pool.releaseLater(a);
  pool.releaseLater(b);
  await nextTurn();
  t.is(pool.acquire(), a);
  const c = pool.acquire();
  t.not(c, a);
  t.not(c, b, 'b was dropped, not kept');
});

test('buffers live in SharedArrayBuffers: the hashing workers read them without a copy', (t) => {
  const pool = new BlockBufferPool(1);
  t.true(pool.acquire().buffer instanceof SharedArrayBuffer);
});
