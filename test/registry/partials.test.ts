/**
 * Stale partial downloads (src/registry/partials.ts): removed only when no process here holds
 * them open and nothing wrote them for STALE_AFTER_MS (a pull on another machine sharing the
 * storage folder keeps writing its partial, and is not in this machine's /proc).
 */
import test from 'ava';
import { open, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { removeStalePartials, STALE_AFTER_MS } from '../../src/registry/partials.js';

test('an old partial nobody holds goes; a fresh one (another machine may be writing it), an open one and the image stay', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-partials-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const old = new Date(Date.now() - STALE_AFTER_MS - 60_000);
  const names = { stale: '.a-b:c.simg.sreg-partial-01', fresh: '.a-b:c.simg.sreg-partial-02', held: '.a-b:c.simg.sreg-partial-03', image: 'a-b:c.simg' };
  for (const n of Object.values(names)) await writeFile(path.join(dir, n), 'x');
  for (const n of [names.stale, names.held, names.image]) await utimes(path.join(dir, n), old, old);
  const fh = await open(path.join(dir, names.held), 'r');
  t.teardown(() => fh.close());
  t.deepEqual(await removeStalePartials(dir), [names.stale]);
  t.deepEqual((await readdir(dir)).sort(), [names.fresh, names.held, names.image].sort());
});
