/**
 * Issue 8: an upload whose access token takes a network round trip to get (a refresh) still
 * sends its body. The token source here is slow on every call, as a refresh token with a short
 * life makes it; every upload route (one request, sequential and concurrent sessions) must
 * deliver the bytes, and progress must add up to the file's size exactly once.
 */
import test from 'ava';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { uploadFile } from '../../src/dropbox/upload.js';
import { Transport } from '../../src/dropbox/http.js';
import { DEFAULT_RETRY } from '../../src/dropbox/retry.js';
import { startEmulator } from '../helpers/emulator.js';
import { client, MiB, progress, randomFile, sha256File, stats, tempDir } from './helpers.js';

for (const [title, size, workers] of [
  ['one request', MiB, 1],
  ['a sequential session', 9 * MiB, 1],
  ['a concurrent session', 13 * MiB, 3],
] as const) {
  test(`a token that takes a while to come (a refresh) before each request: ${title} sends its body`, async (t) => {
    const emu = await startEmulator(t);
    const dir = await tempDir(t);
    const src = path.join(dir, 'src');
    const sha = await randomFile(src, size);
    // Much longer than reading the file's chunk takes: a stream made before it has long flowed.
    const slowToken = async (): Promise<string> => {
      await sleep(300);
      return emu.token;
    };
    const transport = new Transport(emu.url, workers + 2, 10_000);
    t.teardown(() => transport.close());
    const p = progress();
    const md = await uploadFile({
      transport,
      token: slowToken,
      retry: { ...DEFAULT_RETRY, maxAttempts: 1 },
      file: src,
      size,
      commit: { path: '/f.bin', mode: 'add' },
      workers,
      lookup: () => Promise.resolve(undefined),
      onBytes: p.onBytes,
    });
    t.is(md.size, size);
    t.is(p.total(), size, 'progress adds up to the size');
    const dest = path.join(dir, 'back');
    await client(t, emu).download('/f.bin', dest);
    t.is(await sha256File(dest), sha);
    t.falsy((await stats(emu)).statuses['400'], 'no request was refused');
  });
}
