/**
 * Naming of images in Dropbox (README "Configuration", issue 9): a new image from `sreg push`
 * is `/<collection>/<name>:<tag>.simg` (the seed's), or `.sif` with
 * SREGISTRY_DROPBOX_EXTENSION=sif (environment or secrets file) so that sregistry 0.2.39,
 * which looks only for `.sif`, finds it; an existing image is replaced under the extension it
 * already has; when a tag exists under both, the configured extension's file is the one read
 * and replaced. Checked in the emulator's files through the official SDK.
 */
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sdk, type Emulator } from '../helpers/emulator.js';
import { assertError, assertOk, buildSifs, runCli, sha256File, startCliEmulator, tempHome, type Sif } from '../helpers/cli.js';

let dir = '';
let img: Record<'one' | 'two', Sif>;

test.before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sreg-naming-sifs-'));
  img = await buildSifs(dir, { one: { uri: 'pusheen/asaurus:red' }, two: { uri: 'pusheen/asaurus:blue' } });
  if (img.one.contentHash === img.two.contentHash) throw new Error('the two test images must differ');
});

test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** content_hash of each file in /pusheen, by name. */
async function remoteFiles(emu: Emulator): Promise<Record<string, string>> {
  const r = await sdk(emu).filesListFolder({ path: '/pusheen' });
  return Object.fromEntries(r.result.entries.map((e) => [e.name, (e as { content_hash?: string }).content_hash ?? '']));
}

async function upload(emu: Emulator, remotePath: string, sif: Sif): Promise<void> {
  await sdk(emu).filesUpload({ path: remotePath, contents: await readFile(sif.file), mode: { '.tag': 'overwrite' } });
}

const push = (emu: Emulator, home: string, sif: Sif, env: Record<string, string> = {}, force = false) =>
  runCli(['push', ...(force ? ['--force'] : []), '--name', 'pusheen/asaurus:red', sif.file], { home, emu, env });

test('a new image is .simg by default, .sif with SREGISTRY_DROPBOX_EXTENSION=sif; pull, search and share find the .sif', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  assertOk(t, await push(emu, home, img.one));
  t.deepEqual(await remoteFiles(emu), { 'asaurus:red.simg': img.one.contentHash });

  const emu2 = await startCliEmulator(t);
  const env = { SREGISTRY_DROPBOX_EXTENSION: 'sif' };
  assertOk(t, await runCli(['push', '--name', 'pusheen/asaurus:red', img.one.file], { home, emu: emu2, env }));
  t.deepEqual(await remoteFiles(emu2), { 'asaurus:red.sif': img.one.contentHash });
  const search = await runCli(['search', 'pusheen'], { home, emu: emu2, env });
  assertOk(t, search);
  t.regex(search.stdout, /pusheen\/asaurus:red/);
  const pulled = await runCli(['pull', 'pusheen/asaurus:red'], { home, emu: emu2, env });
  assertOk(t, pulled);
  const dest = /Success! (.+)$/m.exec(pulled.stdout)?.[1];
  t.is(dest && (await sha256File(dest)), img.one.sha256);
  assertOk(t, await runCli(['share', 'pusheen/asaurus:red'], { home, emu: emu2, env }));
});

test('SREGISTRY_DROPBOX_EXTENSION in the secrets file; a bad value is a usage error (exit 2) that says what is allowed', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await writeFile(path.join(home, '.sregistry'), JSON.stringify({ SREGISTRY_CLIENT: 'dropbox', dropbox: { SREGISTRY_DROPBOX_EXTENSION: 'sif' } }));
  assertOk(t, await push(emu, home, img.one));
  t.deepEqual(await remoteFiles(emu), { 'asaurus:red.sif': img.one.contentHash });
  assertError(t, await push(emu, home, img.two, { SREGISTRY_DROPBOX_EXTENSION: 'img' }, true), 2, /SREGISTRY_DROPBOX_EXTENSION must be simg or sif, got 'img'/);
  t.deepEqual(await remoteFiles(emu), { 'asaurus:red.sif': img.one.contentHash }, 'nothing written');
});

test('push --force replaces an existing image under the extension it already has', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  // As sregistry 0.2.39 pushes it.
  await upload(emu, '/pusheen/asaurus:red.sif', img.one);
  assertError(t, await push(emu, home, img.two), 6, /already exists in Dropbox \(\/pusheen\/asaurus:red\.sif\)/);
  assertOk(t, await push(emu, home, img.two, {}, true));
  t.deepEqual(await remoteFiles(emu), { 'asaurus:red.sif': img.two.contentHash }, 'the .sif replaced, no .simg made');

  const emu2 = await startCliEmulator(t);
  await upload(emu2, '/pusheen/asaurus:red.simg', img.one);
  assertOk(t, await push(emu2, home, img.two, { SREGISTRY_DROPBOX_EXTENSION: 'sif' }, true));
  t.deepEqual(await remoteFiles(emu2), { 'asaurus:red.simg': img.two.contentHash }, 'the .simg replaced, no .sif made');
});

test('one tag under both extensions: the configured extension\'s file is pulled and replaced, the other left alone', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await upload(emu, '/pusheen/asaurus:red.simg', img.one);
  await upload(emu, '/pusheen/asaurus:red.sif', img.two);
  for (const [ext, expected] of [['simg', img.one], ['sif', img.two]] as const) {
    const r = await runCli(['pull', '--force', 'pusheen/asaurus:red'], { home, emu, env: { SREGISTRY_DROPBOX_EXTENSION: ext } });
    assertOk(t, r);
    const dest = /Success! (.+)$/m.exec(r.stdout)?.[1];
    t.is(dest && (await sha256File(dest)), expected.sha256, `pull with ${ext}`);
  }
  assertOk(t, await push(emu, home, img.one, { SREGISTRY_DROPBOX_EXTENSION: 'sif' }, true));
  t.deepEqual(await remoteFiles(emu), { 'asaurus:red.simg': img.one.contentHash, 'asaurus:red.sif': img.one.contentHash });
  assertOk(t, await push(emu, home, img.two, {}, true));
  t.deepEqual(await remoteFiles(emu), { 'asaurus:red.simg': img.two.contentHash, 'asaurus:red.sif': img.one.contentHash });
});
