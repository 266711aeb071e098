/**
 * Issue 8: reads through the block cache ride out an outage up to the read deadline
 * (SREGISTRY_READ_DEADLINE), then fail with the network error (EIO at the mount); and
 * cache.close() never waits on a fetch that is stalled or riding out an outage: it aborts it.
 * Against a real emulator that is stopped and started again on the same port and folder.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CacheError } from '../../src/cache/index.js';
import { DropboxClient } from '../../src/dropbox/client.js';
import { RemoteError } from '../../src/dropbox/errors.js';
import type { FileRef } from '../../src/vfs/ports.js';
import { startEmulator, type Emulator } from '../helpers/emulator.js';
import { freshStream, MiB, openCache, tempDir } from './helpers.js';

const HOUR_MS = 3_600_000;

interface SetUp {
  client: DropboxClient;
  file: FileRef;
  data: Buffer;
  work: string;
  /** The client's retry lines (`retry N of files/download …`). */
  retries: string[];
}

async function setUp(t: ExecutionContext, emu: Emulator, clientOpts: { timeoutMs?: number } = {}): Promise<SetUp> {
  const work = await tempDir(t);
  const retries: string[] = [];
  const client = new DropboxClient({ endpoint: emu.url, accessToken: emu.token, workers: 2, retry: { baseDelayMs: 50 }, log: (l) => retries.push(l), ...clientOpts });
  t.teardown(() => client.close());
  const data = randomBytes(5 * MiB + 17);
  const local = path.join(work, 'up.bin');
  await writeFile(local, data);
  const meta = await client.upload(local, data.length, { path: '/outage.bin', mode: 'overwrite' });
  return { client, file: { id: meta.id, rev: meta.rev, size: meta.size, contentHash: meta.contentHash }, data, work, retries };
}

test('the emulator stopped while a read is waiting, then started again: the read completes with the right bytes', async (t) => {
  const emu = await startEmulator(t);
  const { client, file, data, work, retries } = await setUp(t, emu);
  const { cache, logs } = await openCache(t, {
    dir: path.join(work, 'blocks'),
    fetch: (f, s, e, into, signal) => client.readRange(`rev:${f.rev}`, s, e, { into, signal, deadlineMs: HOUR_MS }),
  });
  await emu.stop();
  let settled = false;
  const read = cache.read(file, MiB, 4 * MiB, freshStream()).finally(() => (settled = true));
  // Down: it must still be waiting after more tries than the 3 quick ones a dead endpoint
  // gets outside the read deadline.
  while (retries.filter((l) => /files\/download.*connection refused/.test(l)).length < 4) await sleep(20);
  t.false(settled, 'still waiting, not failed');
  await emu.restart();
  const got = await read;
  t.true(settled);
  t.true(got.equals(data.subarray(MiB, 5 * MiB)));
  t.false(logs.some((l) => /cache: block/.test(l)), `no failed fetch was logged: ${logs.join('\n')}`);
});

test('an outage longer than the read deadline: the read fails with the network error, and the next read after recovery works', async (t) => {
  const emu = await startEmulator(t);
  const { client, file, data, work } = await setUp(t, emu);
  const { cache } = await openCache(t, {
    dir: path.join(work, 'blocks'),
    fetch: (f, s, e, into, signal) => client.readRange(`rev:${f.rev}`, s, e, { into, signal, deadlineMs: 300 }),
  });
  await emu.stop();
  const e = await t.throwsAsync(cache.read(file, 0, 1000, freshStream()));
  t.true(e instanceof RemoteError, String(e));
  t.is((e as RemoteError).code, 'network');
  t.regex(e.message, /connection refused/);
  await emu.restart();
  t.true((await cache.read(file, 0, 1000, freshStream())).equals(data.subarray(0, 1000)));
});

test('cache.close() with a fetch stalled (never answered, timeout and deadline an hour): close aborts it and returns', async (t) => {
  const emu = await startEmulator(t);
  const { client, file, work } = await setUp(t, emu, { timeoutMs: HOUR_MS });
  const { cache } = await openCache(t, {
    dir: path.join(work, 'blocks'),
    fetch: (f, s, e, into, signal) => client.readRange(`rev:${f.rev}`, s, e, { into, signal, deadlineMs: HOUR_MS }),
  });
  await emu.admin('POST', '/faults', { kind: 'stall', routes: ['files/download'] });
  const read = cache.read(file, 0, 1000, freshStream());
  const failed = t.throwsAsync(read);
  while ((await emu.admin<{ fired: number }[]>('GET', '/faults'))[0]!.fired < 1) await sleep(20);
  await cache.close(); // without the abort this waits an hour (and the test times out)
  const e = await failed;
  t.true(e instanceof CacheError && e.code === 'closed', String(e));
});

test('cache.close() during an outage ridden out under the read deadline: close aborts the wait and returns', async (t) => {
  const emu = await startEmulator(t);
  const { client, file, work } = await setUp(t, emu);
  let attempts = 0;
  const { cache } = await openCache(t, {
    dir: path.join(work, 'blocks'),
    fetch: (f, s, e, into, signal) => {
      attempts++;
      return client.readRange(`rev:${f.rev}`, s, e, { into, signal, deadlineMs: HOUR_MS });
    },
  });
  await emu.stop();
  const failed = t.throwsAsync(cache.read(file, 0, 1000, freshStream()));
  while (attempts < 1) await sleep(5); // the fetch is riding the outage out
  await cache.close();
  const e = await failed;
  t.true(e instanceof CacheError && e.code === 'closed', String(e));
  t.is(attempts, 1);
});
