/**
 * The block cache over a real emulator: a 20 MiB random file uploaded with the client, read
 * back through the cache with ranged `rev:` downloads.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DropboxClient } from '../../src/dropbox/client.js';
import type { FileRef } from '../../src/vfs/ports.js';
import { startEmulator } from '../helpers/emulator.js';
import { BLOCK, freshStream, MiB, openCache, rng, tempDir } from './helpers.js';

/** A random file of `size` bytes uploaded to a fresh emulator with the client, and its ref. */
async function uploaded(t: ExecutionContext, size: number, name: string, workers: number): Promise<{ client: DropboxClient; data: Buffer; file: FileRef; work: string }> {
  const emu = await startEmulator(t);
  const work = await tempDir(t);
  const client = new DropboxClient({ endpoint: emu.url, accessToken: emu.token, workers });
  t.teardown(() => client.close());
  const data = randomBytes(size);
  const local = path.join(work, 'up.bin');
  await writeFile(local, data);
  const meta = await client.upload(local, size, { path: `/cache/${name}`, mode: 'overwrite' });
  return { client, data, work, file: { id: meta.id, rev: meta.rev, size: meta.size, contentHash: meta.contentHash } };
}

test('a 20 MiB file from the emulator reads back byte for byte through the cache', async (t) => {
  const size = 20 * MiB + 333;
  const { client, data, file, work } = await uploaded(t, size, 'big.bin', 4);
  let fetches = 0;
  const { cache, logs } = await openCache(t, {
    dir: path.join(work, 'blocks'),
    maxInFlight: 4,
    fetch: (f, s, e) => {
      fetches++;
      return client.readRange('rev:' + f.rev, s, e);
    },
  });
  const next = rng(20);
  for (let i = 0; i < 25; i++) {
    const offset = next(size + 10);
    const length = next(2 * BLOCK);
    t.true((await cache.read(file, offset, length, freshStream())).equals(data.subarray(offset, offset + length)), `${length} at ${offset}`);
  }
  const parts: Buffer[] = [];
  for (let offset = 0; offset < size; offset += 128 * 1024) parts.push(await cache.read(file, offset, 128 * 1024, 1));
  t.true(Buffer.concat(parts).equals(data));
  t.is(fetches, 6, 'each of the 6 blocks fetched once');
  t.is(cache.stats().fetchedBytes, size);
  t.false(logs.some((l) => /content_hash/.test(l)), 'the blocks made the content_hash');
});

test('a sequential read from the emulator goes out in runs of blocks, a request each, and reads back byte for byte', async (t) => {
  const size = 48 * MiB + 4097;
  const { client, data, file, work } = await uploaded(t, size, 'runs.bin', 2);
  const requests: number[] = [];
  const { cache, logs } = await openCache(t, {
    dir: path.join(work, 'blocks'),
    maxInFlight: 2,
    budgetBytes: 100 * MiB,
    fetch: () => Promise.reject(new Error('runs go through fetchRun')),
    fetchRun: (f, s, e, sink, signal) => {
      requests.push(e - s);
      return client.readRangeInto('rev:' + f.rev, s, e, sink, { signal });
    },
  });
  const parts: Buffer[] = [];
  for (let offset = 0; offset < size; offset += MiB) parts.push(await cache.read(file, offset, MiB, 1));
  t.true(Buffer.concat(parts).equals(data));
  await cache.settle();
  t.is(requests.reduce((a, b) => a + b, 0), size, 'every byte fetched once');
  t.true(requests.some((n) => n === 4 * BLOCK), `runs of 4 blocks (window 8 / 2 connections): ${requests.map((n) => Math.ceil(n / BLOCK)).join(',')}`);
  t.false(logs.some((l) => /content_hash|cache: block/.test(l)), logs.join('\n'));
});
