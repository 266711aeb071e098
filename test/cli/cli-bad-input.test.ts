/**
 * What a user sees when something is wrong: for each bad input, a non-zero exit code of the
 * right class (2 usage, 3 not found, 4 auth, 6 exists), exactly one `ERROR …` line on stderr
 * that says what to do, nothing half-written under the storage folder, and Dropbox left as it
 * was. Names and settings that cannot work are refused before any request (the emulator's
 * stats count none).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { sdk, type Emulator } from '../helpers/emulator.js';
import {
  assertError,
  assertOk,
  assertTree,
  suiteSifs,
  mapLimit,
  requestCount,
  runCli,
  startCliEmulator,
  stats,
  storageOf,
  tempDir,
  tempHome,
} from '../helpers/cli.js';

const exec = promisify(execFile);

const img = suiteSifs(test, { red: { uri: 'pusheen/asaurus:red' }, blue: { uri: 'pusheen/asaurus:blue' } });

async function pushRed(emu: Emulator, home: string): Promise<void> {
  const r = await runCli(['push', '--name', img.red.uri, img.red.file], { home, emu });
  if (r.code !== 0) throw new Error(`push failed (${r.code}): ${r.stderr}`);
}

/** Every file in the app folder, by path. */
async function remoteFiles(emu: Emulator): Promise<Record<string, string>> {
  const r = await sdk(emu).filesListFolder({ path: '', recursive: true });
  const files: Record<string, string> = {};
  for (const e of r.result.entries) if (e['.tag'] === 'file') files[e.path_display ?? ''] = e.content_hash ?? '';
  return files;
}

test('no token at all: exit 4, the message names SREGISTRY_DROPBOX_TOKEN', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  for (const args of [['search'], ['pull', 'pusheen/asaurus:red'], ['push', '--name', 'a/b:c', img.red.file]]) {
    const r = await runCli(args, { home, emu, token: null });
    assertError(t, r, 4, /SREGISTRY_DROPBOX_TOKEN/);
  }
  await assertTree(t, storageOf(home), []);
  t.deepEqual(await remoteFiles(emu), {});
});

test('a wrong token: exit 4, says to set a valid SREGISTRY_DROPBOX_TOKEN', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await pushRed(emu, home);
  const r = await runCli(['pull', 'pusheen/asaurus:red'], { home, emu, token: 'not-the-token' });
  assertError(t, r, 4, /SREGISTRY_DROPBOX_TOKEN/);
  t.notRegex(r.stderr, /not-the-token/, 'the token is not echoed');
  await assertTree(t, storageOf(home), []);
});

test('an expired token (--token-ttl 1): exit 4, says it expired and what to set', async (t) => {
  const emu = await startCliEmulator(t, ['--token-ttl', '1']);
  const home = await tempHome(t);
  await sleep(1500);
  const r = await runCli(['search'], { home, emu });
  assertError(t, r, 4, /expired/);
  t.regex(r.stderr, /SREGISTRY_DROPBOX_TOKEN|backend login/);
});

test('a token expired by the server mid-life (admin expire-tokens): pull fails with exit 4 and leaves nothing', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await pushRed(emu, home);
  await emu.admin('POST', '/expire-tokens');
  const r = await runCli(['pull', 'pusheen/asaurus:red'], { home, emu });
  assertError(t, r, 4, /expired/);
  await assertTree(t, storageOf(home), []);
});

test('an unknown image: pull and share exit 3 and say where to look', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await pushRed(emu, home);
  for (const cmd of ['pull', 'share']) {
    const r = await runCli([cmd, 'dropbox://pusheen/asaurus:purple'], { home, emu });
    assertError(t, r, 3, /pusheen\/asaurus:purple.*not found.*sreg search/);
  }
  await assertTree(t, storageOf(home), []);
  t.deepEqual(Object.keys(await remoteFiles(emu)), ['/pusheen/asaurus:red.simg']);
});

test('malformed names: exit 2 before any request, for every command that takes one', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const bad = ['a/b/c/d', 'pusheen/:x', '', '..', 'pusheen/../x'];
  const runs = bad.flatMap((uri) => [
    ['pull', uri],
    ['share', uri],
    ['push', '--name', uri, img.red.file],
    ['inspect', uri],
    ['get', uri],
    ['rm', uri],
    ['add', img.red.file, '--name', uri],
  ]);
  const results = await mapLimit(runs, 4, (args) => runCli(args, { home, emu }));
  results.forEach((r, i) => {
    const args = runs[i] ?? [];
    t.is(r.code, 2, `sreg ${JSON.stringify(args)}: ${r.stderr}`);
    t.regex(r.stderr, /^ERROR '[^'\n]*' is not an image name: [^\n]+\n$/, `sreg ${JSON.stringify(args)}`);
  });
  t.regex(results[0]?.stderr ?? '', /collection\/name:tag/, 'says what a name looks like');
  const s = await stats(emu);
  t.is(requestCount(s), 0, JSON.stringify(s.requests));
  t.is(s.bytesReceived, 0);
  await assertTree(t, storageOf(home), []);
});

test('push of something that is not an image file: exit 2, says why, nothing sent', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const work = await tempDir(t);
  const fifo = path.join(work, 'fifo.sif');
  await exec('mkfifo', [fifo]);
  const folder = path.join(work, 'folder.sif');
  await mkdir(folder);
  const empty = path.join(work, 'empty.sif');
  await writeFile(empty, '');
  const cases: [string, RegExp][] = [
    [path.join(work, 'missing.sif'), /no such file/],
    [fifo, /not a regular file/],
    [folder, /is a folder/],
    [empty, /empty \(0 bytes\)/],
  ];
  for (const [file, message] of cases) {
    const r = await runCli(['push', '--name', 'pusheen/asaurus:red', file], { home, emu, timeoutMs: 30_000 });
    assertError(t, r, 2, message);
    t.true(r.stderr.includes(file), 'names the file');
  }
  t.is(requestCount(await stats(emu)), 0);
  t.deepEqual(await remoteFiles(emu), {});
});

test('push of an unreadable file (as an unprivileged user: root reads any mode): exit 2, says it is not readable', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const work = await tempDir(t);
  await chmod(work, 0o755);
  const file = path.join(work, 'secret.sif');
  await copyFile(img.red.file, file);
  await chmod(file, 0o000);
  const nobody = 65534;
  await chown(home, nobody, nobody);
  const r = await runCli(['push', '--name', 'pusheen/asaurus:red', file], { home, emu, uid: nobody, gid: nobody });
  assertError(t, r, 2, /not readable|permission denied/);
  t.is(requestCount(await stats(emu)), 0);
  t.deepEqual(await remoteFiles(emu), {});
});

test('push over an existing image: exit 6 without --force (Dropbox unchanged), replaced with --force', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await pushRed(emu, home);
  const before = (await sdk(emu).filesGetMetadata({ path: '/pusheen/asaurus:red.simg' })).result as { rev: string; content_hash: string };
  t.is(before.content_hash, img.red.contentHash);

  const r = await runCli(['push', '--name', 'pusheen/asaurus:red', img.blue.file], { home, emu });
  assertError(t, r, 6, /already exists.*--force/);
  const still = (await sdk(emu).filesGetMetadata({ path: '/pusheen/asaurus:red.simg' })).result as { rev: string; content_hash: string };
  t.is(still.rev, before.rev, 'not rewritten');
  t.is(still.content_hash, img.red.contentHash);

  assertOk(t, await runCli(['push', '--force', '--name', 'pusheen/asaurus:red', img.blue.file], { home, emu }));
  t.deepEqual(await remoteFiles(emu), { '/pusheen/asaurus:red.simg': img.blue.contentHash });
});

test('settings that cannot work: exit 2 before any request, naming what to fix', async (t) => {
  const emu = await startCliEmulator(t);
  const cases: { env?: Record<string, string>; secrets?: string; message: (home: string) => RegExp }[] = [
    { env: { SREGISTRY_CLIENT: 's3' }, message: () => /SREGISTRY_CLIENT.*unset/ },
    { env: { SREGISTRY_PYTHON_THREADS: '0' }, message: () => /SREGISTRY_PYTHON_THREADS.*'0'/ },
    { env: { SREGISTRY_PYTHON_THREADS: 'abc' }, message: () => /SREGISTRY_PYTHON_THREADS.*'abc'/ },
    { secrets: '{"dropbox": {"SREGISTRY_DROPBOX_TOKEN": ', message: (home) => new RegExp(`${path.join(home, '.sregistry')}.*not valid JSON.*fix or remove`) },
  ];
  for (const c of cases) {
    const home = await tempHome(t);
    if (c.secrets !== undefined) await writeFile(path.join(home, '.sregistry'), c.secrets);
    for (const args of [['search'], ['pull', 'pusheen/asaurus:red']]) {
      const r = await runCli(args, { home, emu, env: c.env });
      assertError(t, r, 2, c.message(home));
    }
    await assertTree(t, storageOf(home), []);
  }
  t.is(requestCount(await stats(emu)), 0);
});
