/**
 * DropboxClient.download (src/dropbox/download.ts) against a real emulator: edge sizes, worker
 * counts, resuming after cut connections, and leaving nothing behind on failure.
 */
import test from 'ava';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { contentHash } from '../../src/dropbox/content-hash.js';
import { sdk, startEmulator, type Emulator } from '../helpers/emulator.js';
import { BLOCK, client, fault, MiB, partials, progress, randomFile, remoteError, resetStats, sha256, sha256File, stats, tempDir } from './helpers.js';

/** Puts `size` random bytes at `p` through the SDK (independent of the client's upload). */
async function put(emu: Emulator, p: string, size: number): Promise<Buffer> {
  const data = randomBytes(size);
  await sdk(emu).filesUpload({ path: p, contents: data, mode: { '.tag': 'overwrite' } });
  return data;
}

test('edge sizes 0, 1, 4 MiB−1, 4 MiB, 4 MiB+1 come back byte for byte', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const c = client(t, emu, { workers: 3 });
  for (const size of [0, 1, BLOCK - 1, BLOCK, BLOCK + 1]) {
    const data = await put(emu, `/f-${size}.bin`, size);
    const dest = path.join(dir, `f-${size}.bin`);
    const p = progress();
    const md = await c.download(`/f-${size}.bin`, dest, { onBytes: p.onBytes });
    t.is(md.size, size);
    t.is(md.contentHash, contentHash(data));
    t.is((await stat(dest)).size, size);
    t.is(await sha256File(dest), sha256(data), `size ${size}`);
    t.is(p.total(), size, `progress for size ${size}`);
  }
  t.deepEqual(await partials(dir), []);
});

test('37 MiB random with 1, 3 and 9 workers', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const size = 37 * MiB + 12345;
  const data = await put(emu, '/big.bin', size);
  const want = sha256(data);
  for (const workers of [1, 3, 9]) {
    const c = client(t, emu, { workers });
    await resetStats(emu);
    const dest = path.join(dir, `big-${workers}.bin`);
    const p = progress();
    const md = await c.download('/big.bin', dest, { onBytes: p.onBytes });
    t.is(md.size, size);
    t.is(await sha256File(dest), want, `${workers} workers`);
    t.is(p.total(), size);
    const s = await stats(emu);
    t.true(s.bytesSent >= size && s.bytesSent < size + 64 * 1024, `bytesSent ${s.bytesSent} for ${size}`);
    t.true((s.requests['files/download'] ?? 0) >= Math.min(workers, Math.ceil(size / BLOCK)), 'parallel ranged requests');
  }
  t.deepEqual(await partials(dir), []);
});

test('cut connections (count 3, afterBytes 300000) → correct bytes, resumed not restarted', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const size = 13 * MiB + 777;
  const data = await put(emu, '/cut.bin', size);
  for (const workers of [1, 3]) {
    const c = client(t, emu, { workers, retry: { baseDelayMs: 10 } });
    // Requests without faults, for comparison
    await resetStats(emu);
    await c.download('/cut.bin', path.join(dir, `clean-${workers}.bin`));
    const clean = (await stats(emu)).requests['files/download'] ?? 0;
    await resetStats(emu);
    await fault(emu, { kind: 'cut', routes: ['files/download'], count: 3, afterBytes: 300_000 });
    const dest = path.join(dir, `cut-${workers}.bin`);
    const p = progress();
    await c.download('/cut.bin', dest, { onBytes: p.onBytes });
    t.is(await sha256File(dest), sha256(data), `${workers} workers`);
    t.is(p.total(), size);
    const s = await stats(emu);
    t.is(s.requests['files/download'], clean + 3, 'one extra request per cut');
    t.true(s.bytesSent < size + 4 * MiB, `bytesSent ${s.bytesSent}`);
    // A restart would resend the 300000 bytes before each cut; resuming resends (almost) nothing.
    t.true(s.bytesSent - size < 3 * 300_000, `overhead ${s.bytesSent - size} bytes`);
    t.log(`${workers} workers: ${s.bytesSent - size} bytes over the file size`);
  }
  t.deepEqual(await partials(dir), []);
});

test('not_found → RemoteError not_found; no partial file; an existing dest is untouched', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const c = client(t, emu);
  const dest = path.join(dir, 'keep.bin');
  await writeFile(dest, 'old content');
  const e = await remoteError(t, c.download('/missing.bin', dest), 'not_found');
  t.true(e.message.includes('/missing.bin'), e.message);
  t.is(await readFile(dest, 'utf8'), 'old content');
  t.deepEqual(await readdir(dir), ['keep.bin']);
  // A folder is not a file
  await c.createFolder('/folder');
  await remoteError(t, c.download('/folder', dest), 'not_found');
  t.is(await readFile(dest, 'utf8'), 'old content');
  t.deepEqual(await readdir(dir), ['keep.bin']);
});

test('5xx rate 1 on files/download → server error; partial file removed; existing dest untouched', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  await put(emu, '/f.bin', 9 * MiB);
  const c = client(t, emu, { workers: 3, retry: { maxAttempts: 2, baseDelayMs: 10 } });
  const dest = path.join(dir, 'f.bin');
  await writeFile(dest, 'old content');
  await fault(emu, { kind: '5xx', routes: ['files/download'], rate: 1 });
  const e = await remoteError(t, c.download('/f.bin', dest), 'server');
  t.is(e.route, 'files/download');
  t.is(await readFile(dest, 'utf8'), 'old content');
  t.deepEqual(await readdir(dir), ['f.bin']);
});

test('failure after some bytes were written (cut on every request) → partial removed, dest untouched', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  await put(emu, '/f.bin', 9 * MiB);
  const c = client(t, emu, { workers: 2, retry: { maxAttempts: 3, baseDelayMs: 10 } });
  const dest = path.join(dir, 'f.bin');
  await writeFile(dest, 'old content');
  await fault(emu, { kind: 'cut', routes: ['files/download'], afterBytes: 100_000 });
  await remoteError(t, c.download('/f.bin', dest), 'network');
  t.is(await readFile(dest, 'utf8'), 'old content');
  t.deepEqual(await readdir(dir), ['f.bin']);
});

test('a download into a folder that does not exist creates it', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const data = await put(emu, '/deep.bin', 1000);
  const c = client(t, emu);
  const dest = path.join(dir, 'a', 'b', 'c', 'deep.bin');
  await c.download('/deep.bin', dest);
  t.is(await sha256File(dest), sha256(data));
  t.deepEqual(await readdir(path.join(dir, 'a', 'b', 'c')), ['deep.bin']);
});

test('a download replaces an existing dest file atomically (old content gone, no leftovers)', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const data = await put(emu, '/x.bin', 5 * MiB);
  const dest = path.join(dir, 'x.bin');
  await mkdir(dir, { recursive: true });
  await writeFile(dest, 'previous');
  await client(t, emu).download('/x.bin', dest);
  t.is(await sha256File(dest), sha256(data));
  t.deepEqual(await readdir(dir), ['x.bin']);
});

test('readRange: bytes [start, end) of a revision, resumed after cuts', async (t) => {
  const emu = await startEmulator(t);
  const size = 9 * MiB + 11;
  const data = await put(emu, '/r.bin', size);
  const c = client(t, emu, { retry: { baseDelayMs: 10 } });
  const md = await c.getMetadata('/r.bin');
  const rev = md?.kind === 'file' ? md.rev : '';
  for (const [start, end] of [
    [0, 1],
    [0, BLOCK],
    [BLOCK, 2 * BLOCK],
    [2 * BLOCK, size],
    [123, 4567],
    [0, size],
    [size - 1, size],
    [5, 5],
  ] as const) {
    const got = await c.readRange(`rev:${rev}`, start, end);
    t.is(got.length, end - start);
    t.true(got.equals(data.subarray(start, end)), `[${start}, ${end})`);
  }
  await resetStats(emu);
  await fault(emu, { kind: 'cut', routes: ['files/download'], count: 2, afterBytes: 100_000 });
  const got = await c.readRange(`rev:${rev}`, BLOCK, 2 * BLOCK);
  t.true(got.equals(data.subarray(BLOCK, 2 * BLOCK)));
  const s = await stats(emu);
  t.is(s.requests['files/download'], 3);
  t.true(s.bytesSent < BLOCK + 2 * 100_000, `bytesSent ${s.bytesSent}: resumed, not restarted`);
  await remoteError(t, c.readRange('/missing.bin', 0, 10), 'not_found');
});

test('a file uploaded by the client comes back through download (random sizes)', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const c = client(t, emu, { workers: 3 });
  for (const size of [2, 3 * MiB + 5, 9 * MiB + 1]) {
    const src = path.join(dir, `src-${size}`);
    const want = await randomFile(src, size);
    await c.upload(src, size, { path: `/u/${size}`, mode: 'add' });
    const dest = path.join(dir, `dst-${size}`);
    await c.download(`/u/${size}`, dest);
    t.is(await sha256File(dest), want);
  }
});
