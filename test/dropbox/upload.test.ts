/**
 * DropboxClient.upload (src/dropbox/upload.ts) against a real emulator: one request up to
 * 8 MiB, sequential (1 worker) and concurrent sessions above, write modes, lost answers
 * (cut after commit) on every upload route, and progress that adds up.
 */
import test, { type ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { contentHash } from '../../src/dropbox/content-hash.js';
import type { DropboxClient } from '../../src/dropbox/client.js';
import { startEmulator, type Emulator } from '../helpers/emulator.js';
import { client, fault, MiB, progress, randomFile, remoteError, resetStats, sha256File, stats, tempDir } from './helpers.js';
import { readFile } from 'node:fs/promises';

/** Downloads `remote` and checks it against the sha256 of the source. */
async function verify(t: ExecutionContext, c: DropboxClient, dir: string, remote: string, want: string): Promise<void> {
  const dest = path.join(dir, `check-${Math.random().toString(36).slice(2)}`);
  await c.download(remote, dest);
  t.is(await sha256File(dest), want, `${remote} has the uploaded bytes`);
}

async function fileOf(dir: string, name: string, size: number): Promise<{ file: string; sha: string; hash: string }> {
  const file = path.join(dir, name);
  const sha = await randomFile(file, size);
  return { file, sha, hash: contentHash(await readFile(file)) };
}

const SESSION_ROUTES = ['files/upload_session/start', 'files/upload_session/append_v2', 'files/upload_session/finish'];

async function uploadCase(t: ExecutionContext, emu: Emulator, size: number, workers: number, expectSession: boolean): Promise<void> {
  const dir = await tempDir(t);
  const c = client(t, emu, { workers });
  const f = await fileOf(dir, 'src', size);
  await resetStats(emu);
  const p = progress();
  const md = await c.upload(f.file, size, { path: `/up/${size}-${workers}.bin`, mode: 'add' }, { onBytes: p.onBytes });
  t.is(md.kind, 'file');
  t.is(md.size, size);
  t.is(md.contentHash, f.hash);
  t.is(md.pathDisplay, `/up/${size}-${workers}.bin`);
  t.is(p.total(), size, 'progress adds up to the size');
  const s = await stats(emu);
  if (expectSession) {
    t.is(s.requests['files/upload'] ?? 0, 0);
    t.is(s.requests['files/upload_session/start'], 1);
    t.is(s.requests['files/upload_session/finish'], 1);
    t.true((s.requests['files/upload_session/append_v2'] ?? 0) >= 1);
  } else {
    t.is(s.requests['files/upload'], 1, 'one request');
    for (const r of SESSION_ROUTES) t.is(s.requests[r] ?? 0, 0, r);
  }
  t.true(s.bytesReceived >= size && s.bytesReceived < size + 1024, `bytesReceived ${s.bytesReceived}: every byte sent once`);
  await verify(t, c, dir, md.pathLower, f.sha);
}

for (const [size, session] of [
  [0, false],
  [1, false],
  [8 * MiB, false],
  [8 * MiB + 1, true],
  [41 * MiB, true],
] as const) {
  for (const workers of [1, 4]) {
    if (!session && workers === 4 && size !== 1) continue;
    test(`size ${size}, ${workers} worker(s): ${session ? 'upload session' : 'single request'}, content_hash and bytes match`, async (t) => {
      const emu = await startEmulator(t);
      await uploadCase(t, emu, size, workers, session);
    });
  }
}

test('41 MiB with 4 workers uses a concurrent session (several appends), 1 worker a sequential one', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const f = await fileOf(dir, 'src', 41 * MiB);
  await resetStats(emu);
  await client(t, emu, { workers: 4 }).upload(f.file, 41 * MiB, { path: '/c.bin', mode: 'add' });
  const conc = await stats(emu);
  t.true((conc.requests['files/upload_session/append_v2'] ?? 0) >= 4, JSON.stringify(conc.requests));
  await resetStats(emu);
  await client(t, emu, { workers: 1 }).upload(f.file, 41 * MiB, { path: '/s.bin', mode: 'add' });
  const seq = await stats(emu);
  t.is(seq.requests['files/upload_session/append_v2'], 2, '32 MiB + 9 MiB');
});

test("mode 'add' over different content → conflict; same content → same metadata", async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const c = client(t, emu);
  const a = await fileOf(dir, 'a', 1000);
  const b = await fileOf(dir, 'b', 1000);
  const first = await c.upload(a.file, 1000, { path: '/x.bin', mode: 'add' });
  const same = await c.upload(a.file, 1000, { path: '/x.bin', mode: 'add' });
  t.is(same.rev, first.rev);
  const e = await remoteError(t, c.upload(b.file, 1000, { path: '/x.bin', mode: 'add' }), 'conflict');
  t.is(e.route, 'files/upload');
  await verify(t, c, dir, '/x.bin', a.sha);
  // Also through a session
  const big = await fileOf(dir, 'big', 9 * MiB);
  await remoteError(t, c.upload(big.file, 9 * MiB, { path: '/x.bin', mode: 'add' }), 'conflict');
  await verify(t, c, dir, '/x.bin', a.sha);
});

test("mode 'overwrite' replaces; {update: rev} replaces only at that rev", async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const c = client(t, emu, { workers: 2 });
  const a = await fileOf(dir, 'a', 100);
  const b = await fileOf(dir, 'b', 200);
  const d = await fileOf(dir, 'd', 9 * MiB);
  const first = await c.upload(a.file, 100, { path: '/y.bin', mode: 'add' });
  const second = await c.upload(b.file, 200, { path: '/y.bin', mode: 'overwrite' });
  t.not(second.rev, first.rev);
  t.is(second.size, 200);
  await verify(t, c, dir, '/y.bin', b.sha);

  const third = await c.upload(a.file, 100, { path: '/y.bin', mode: { update: second.rev } });
  t.is(third.contentHash, a.hash);
  await verify(t, c, dir, '/y.bin', a.sha);
  // A stale rev: conflict (small and session uploads)
  await remoteError(t, c.upload(b.file, 200, { path: '/y.bin', mode: { update: second.rev } }), 'conflict');
  await remoteError(t, c.upload(d.file, 9 * MiB, { path: '/y.bin', mode: { update: first.rev } }), 'conflict');
  const fourth = await c.upload(d.file, 9 * MiB, { path: '/y.bin', mode: { update: third.rev } });
  t.is(fourth.contentHash, d.hash);
  await verify(t, c, dir, '/y.bin', d.sha);
});

test('cut on append_v2 (count 2), 1 worker: resumes at correct_offset, bytes right, progress adds up', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const size = 36 * MiB + 5;
  const f = await fileOf(dir, 'src', size);
  const c = client(t, emu, { workers: 1, retry: { baseDelayMs: 10 } });
  await fault(emu, { kind: 'cut', routes: ['files/upload_session/append_v2'], count: 2 });
  const p = progress();
  const md = await c.upload(f.file, size, { path: '/seq.bin', mode: 'add' }, { onBytes: p.onBytes });
  t.is(md.contentHash, f.hash);
  t.is(md.size, size);
  t.true(p.negatives() > 0, 'a failed attempt rolled progress back');
  t.is(p.total(), size, 'sum of onBytes deltas');
  await verify(t, c, dir, '/seq.bin', f.sha);
});

test('cut on append_v2 (count 2), 4 workers (concurrent session): succeeds, bytes right, progress adds up', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const size = 21 * MiB + 3;
  const f = await fileOf(dir, 'src', size);
  const c = client(t, emu, { workers: 4, retry: { baseDelayMs: 10 } });
  await fault(emu, { kind: 'cut', routes: ['files/upload_session/append_v2'], count: 2 });
  const p = progress();
  const md = await c.upload(f.file, size, { path: '/conc.bin', mode: 'add' }, { onBytes: p.onBytes });
  t.is(md.contentHash, f.hash);
  t.is(p.total(), size);
  await verify(t, c, dir, '/conc.bin', f.sha);
});

for (const workers of [1, 4]) {
  test(`cut on upload_session/finish (count 1), ${workers} worker(s): the lookup finds our file`, async (t) => {
    const emu = await startEmulator(t);
    const dir = await tempDir(t);
    const size = 9 * MiB + 17;
    const f = await fileOf(dir, 'src', size);
    const c = client(t, emu, { workers, retry: { baseDelayMs: 10 } });
    await fault(emu, { kind: 'cut', routes: ['files/upload_session/finish'], count: 1 });
    const p = progress();
    const md = await c.upload(f.file, size, { path: '/fin.bin', mode: 'add' }, { onBytes: p.onBytes });
    t.is(md.contentHash, f.hash);
    t.is(md.size, size);
    t.is(md.pathLower, '/fin.bin');
    t.is(p.total(), size);
    const s = await stats(emu);
    t.is(s.requests['files/upload_session/finish'], 2);
    t.true((s.requests['files/get_metadata'] ?? 0) >= 1, 'looked the path up');
    await verify(t, c, dir, '/fin.bin', f.sha);
  });
}

test('cut on files/upload (count 1), small file: identical content → same metadata', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const f = await fileOf(dir, 'src', 3000);
  const c = client(t, emu, { retry: { baseDelayMs: 10 } });
  await fault(emu, { kind: 'cut', routes: ['files/upload'], count: 1 });
  const p = progress();
  const md = await c.upload(f.file, 3000, { path: '/small.bin', mode: 'add' }, { onBytes: p.onBytes });
  t.is(md.contentHash, f.hash);
  t.is((await stats(emu)).requests['files/upload'], 2);
  const now = await c.getMetadata('/small.bin');
  t.is(now?.kind, 'file');
  t.is(now?.kind === 'file' ? now.rev : '', md.rev);
  t.is(p.total(), 3000);
  await verify(t, c, dir, '/small.bin', f.sha);
});

test('a missing local file → LocalError, nothing sent', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const c = client(t, emu);
  await resetStats(emu);
  const e = await t.throwsAsync(c.upload(path.join(dir, 'nope'), 10, { path: '/n', mode: 'add' }));
  t.is(e?.name, 'LocalError');
  t.true(e?.message.includes(path.join(dir, 'nope')));
  t.deepEqual((await stats(emu)).requests, {});
  await writeFile(path.join(dir, 'short'), 'abc');
  const e2 = await t.throwsAsync(c.upload(path.join(dir, 'short'), 10, { path: '/n', mode: 'add' }));
  t.is(e2?.name, 'LocalError');
});

for (const [size, workers, route] of [
  [8 * MiB, 1, 'files/upload'],
  [16 * MiB + 3, 4, 'files/upload_session/append_v2'],
  [9 * MiB + 3, 1, 'files/upload_session/append_v2'],
] as const) {
  test(`progress adds up after a 503 on ${route} (${workers} worker(s), ${size} bytes)`, async (t) => {
    const emu = await startEmulator(t);
    const dir = await tempDir(t);
    const f = await fileOf(dir, 'src', size);
    const c = client(t, emu, { workers, retry: { baseDelayMs: 10 } });
    await fault(emu, { kind: '5xx', routes: [route], count: 1 });
    const p = progress();
    const md = await c.upload(f.file, size, { path: '/p.bin', mode: 'add' }, { onBytes: p.onBytes });
    t.is(md.contentHash, f.hash);
    t.is(p.total(), size, 'sum of onBytes deltas');
  });
}
