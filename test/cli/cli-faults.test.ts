/**
 * The CLI over a bad network, with faults injected by the emulator (docs/emulator.md, "Admin
 * API"): cut connections resume, 429 storms and 5xx bursts are waited out, and what cannot
 * succeed fails with one ERROR line and exit 5. Every successful transfer is checked against
 * the image file itself (sha256, content_hash). Times are logged and only bounded from below.
 */
import test from 'ava';
import path from 'node:path';
import { sdk, type Emulator } from '../helpers/emulator.js';
import {
  assertError,
  assertOk,
  assertTree,
  suiteSifs,
  lines,
  runCli,
  sha256File,
  startCliEmulator,
  stats,
  storageOf,
  tempHome,
  type Sif,
} from '../helpers/cli.js';

const img = suiteSifs(test, {
    red: { uri: 'pusheen/asaurus:red' },
    // ~10 MB: three 4 MiB blocks, several download chunks, and an upload session (over the 8 MiB single-request limit).
    large: { uri: 'pusheen/large:x', dataMib: 8 },
  });

const UPLOAD_ROUTES = ['files/upload', 'files/upload_session/start', 'files/upload_session/append_v2', 'files/upload_session/finish'];

async function push(emu: Emulator, home: string, sif: Sif): Promise<void> {
  const r = await runCli(['push', '--name', sif.uri, sif.file], { home, emu });
  if (r.code !== 0) throw new Error(`push ${sif.uri} failed (${r.code}): ${r.stderr}`);
}

async function remoteHash(emu: Emulator, uri: string): Promise<string | undefined> {
  const [collection, nameTag] = uri.split('/') as [string, string];
  return ((await sdk(emu).filesGetMetadata({ path: `/${collection}/${nameTag}.simg` })).result as { content_hash?: string }).content_hash;
}

const fired = async (emu: Emulator): Promise<number[]> => (await emu.admin<{ fired: number }[]>('GET', '/faults')).map((f) => f.fired);

const storageFile = (home: string, sif: Sif): string => {
  const [collection, nameTag] = sif.uri.split('/') as [string, string];
  return path.join(storageOf(home), `${collection}-${nameTag}.simg`);
};

test('a connection cut twice mid-download: pull resumes and succeeds with the right bytes', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await push(emu, home, img.large);
  await emu.admin('POST', '/stats/reset');
  await emu.admin('POST', '/faults', { kind: 'cut', routes: ['files/download'], count: 2, afterBytes: 100_000 });
  const r = await runCli(['pull', '--force', img.large.uri], { home, emu });
  assertOk(t, r);
  t.deepEqual(await fired(emu), [2], 'both cuts happened');
  t.is(await sha256File(storageFile(home, img.large)), img.large.sha256);
  await assertTree(t, storageOf(home), [path.basename(storageFile(home, img.large))]);
  // Resumed, not restarted: the 2 × 100 000 bytes received before the cuts were kept, so the
  // server sent the file about once (the rest is a few small JSON answers).
  const s = await stats(emu);
  t.log(`bytes sent ${s.bytesSent} for a ${img.large.size}-byte image`);
  t.true(s.bytesSent - img.large.size < 100_000, `sent ${s.bytesSent - img.large.size} bytes more than the file`);
});

test('a small push whose answer is cut twice: push succeeds and Dropbox holds the file', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await emu.admin('POST', '/faults', { kind: 'cut', routes: UPLOAD_ROUTES, count: 2, afterBytes: 10 });
  const r = await runCli(['push', '--name', img.red.uri, img.red.file], { home, emu });
  assertOk(t, r);
  t.deepEqual(await fired(emu), [2]);
  t.is(await remoteHash(emu, img.red.uri), img.red.contentHash);
});

for (const threads of ['9', '1']) {
  test(`an upload session cut mid-way (SREGISTRY_PYTHON_THREADS=${threads}): push succeeds and the content_hash matches`, async (t) => {
    const emu = await startCliEmulator(t);
    const home = await tempHome(t);
    await emu.admin('POST', '/faults', { kind: 'cut', routes: ['files/upload_session/append_v2'], count: 2 });
    await emu.admin('POST', '/faults', { kind: 'cut', routes: ['files/upload_session/finish'], count: 1, afterBytes: 10 });
    const r = await runCli(['--debug', 'push', '--name', img.large.uri, img.large.file], { home, emu, env: { SREGISTRY_PYTHON_THREADS: threads } });
    t.is(r.code, 0, r.stderr);
    const f = await fired(emu);
    t.true((f[0] ?? 0) >= 1 && f[1] === 1, `faults fired: ${JSON.stringify(f)}`);
    t.regex(r.stderr, /^DEBUG retry 1 of files\/upload_session\/append_v2 /m);
    t.regex(r.stderr, /^DEBUG retry 1 of files\/upload_session\/finish /m);
    t.is(await remoteHash(emu, img.large.uri), img.large.contentHash);
    const listed = await sdk(emu).filesListFolder({ path: '/pusheen' });
    t.deepEqual(listed.result.entries.map((e) => e.name), ['large:x.simg'], 'one file, no conflicted copies');
  });
}

test('a 429 storm (5 × Retry-After 1 s): pull waits it out, and --debug shows the retries', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await push(emu, home, img.red);
  await emu.admin('POST', '/faults', { kind: '429', count: 5, retryAfterSec: 1 });
  const r = await runCli(['--debug', 'pull', img.red.uri], { home, emu });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(await fired(emu), [5]);
  const retries = lines(r.stderr).filter((l) => /^DEBUG retry \d+ of \S+ in \d+ ms: .*rate limited/.test(l));
  t.is(retries.length, 5, r.stderr);
  t.true(r.ms >= 5000, `waited what Retry-After said (${Math.round(r.ms)} ms)`);
  t.is(await sha256File(storageFile(home, img.red)), img.red.sha256);
});

test('a 429 storm longer than the retry budget: exit 5 with one rate-limited ERROR line', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await push(emu, home, img.red);
  await emu.admin('POST', '/faults', { kind: '429', rate: 1, retryAfterSec: 1 });
  const r = await runCli(['pull', img.red.uri], { home, emu });
  assertError(t, r, 5, /rate limited.*try again/);
  const [attempts = 0] = await fired(emu);
  t.log(`gave up after ${attempts} attempts in ${Math.round(r.ms)} ms`);
  t.true(attempts >= 2, 'it did retry');
  t.true(r.ms >= (attempts - 1) * 1000, 'each retry waited Retry-After');
  await assertTree(t, storageOf(home), []);
});

test('a burst of 5xx answers (3): pull succeeds', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await push(emu, home, img.red);
  await emu.admin('POST', '/faults', { kind: '5xx', count: 3 });
  const r = await runCli(['pull', img.red.uri], { home, emu });
  assertOk(t, r);
  t.deepEqual(await fired(emu), [3]);
  t.is(await sha256File(storageFile(home, img.red)), img.red.sha256);
});

test('a 5xx burst during a push: push succeeds and Dropbox holds the file', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await emu.admin('POST', '/faults', { kind: '5xx', status: 502, count: 3, routes: UPLOAD_ROUTES });
  assertOk(t, await runCli(['push', '--name', img.large.uri, img.large.file], { home, emu }));
  t.deepEqual(await fired(emu), [3]);
  t.is(await remoteHash(emu, img.large.uri), img.large.contentHash);
});

test('the endpoint is down: exit 5, says it cannot reach it and what to check', async (t) => {
  const home = await tempHome(t);
  const r = await runCli(['pull', img.red.uri], { home, env: { SREGISTRY_DROPBOX_ENDPOINT: 'http://127.0.0.1:1' }, token: 'some-token' });
  assertError(t, r, 5, /cannot reach http:\/\/127\.0\.0\.1:1 .*SREGISTRY_DROPBOX_ENDPOINT/);
  t.log(`gave up after ${Math.round(r.ms)} ms`);
  await assertTree(t, storageOf(home), []);
});
