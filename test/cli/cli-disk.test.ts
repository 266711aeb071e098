/**
 * Pulling into a storage folder that cannot take the image: a tiny tmpfs (full) and a
 * read-only one. Needs `mount` (root): when it is not permitted the tests are registered as
 * skipped and the reason is printed, rather than passing without running. Mounts are always
 * unmounted at teardown; the tests run serially.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { assertError, assertTree, suiteSifs, runCli, startCliEmulator, tempDir, tempHome } from '../helpers/cli.js';

const exec = promisify(execFile);

async function umount(target: string): Promise<void> {
  try {
    await exec('umount', [target]);
  } catch {
    await exec('umount', ['-l', target]).catch(() => undefined);
  }
}

/** Can this process mount a tmpfs? (root in a container may not.) */
async function probeMount(): Promise<string | undefined> {
  const probe = await mkdtemp(path.join(tmpdir(), 'sreg-mount-probe-'));
  try {
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]);
    await umount(probe);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await rm(probe, { recursive: true, force: true });
  }
}

const cannotMount = await probeMount();
if (cannotMount) console.warn(`\n*** SKIPPING the full/read-only storage tests: mount is not permitted here (${cannotMount.trim()}) ***\n`);
const mountTest = cannotMount ? test.skip : test.serial;

const img = suiteSifs(test, { blob: { uri: 'pusheen/blob:x', dataMib: 2 } });

/** A tmpfs mounted at a fresh folder, unmounted at teardown (registered before mounting). */
async function tmpfs(t: ExecutionContext, options: string): Promise<string> {
  const target = path.join(await tempDir(t, 'sreg-mnt-'), 'storage');
  await mkdir(target);
  let mounted = false;
  t.teardown(async () => {
    if (mounted) await umount(target);
  });
  await exec('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', target]);
  mounted = true;
  return target;
}

async function pushBlob(t: ExecutionContext) {
  const emu = await startCliEmulator(t);
  const laptop = await tempHome(t);
  const r = await runCli(['push', '--name', img.blob.uri, img.blob.file], { home: laptop, emu });
  if (r.code !== 0) throw new Error(`push failed (${r.code}): ${r.stderr}`);
  // Pulled on another machine (HOME), which has no record of the image yet.
  return { emu, home: await tempHome(t) };
}

mountTest('pull into a full storage folder (512 KiB tmpfs): exit 7, says there is no space, leaves nothing', async (t) => {
  t.true(img.blob.size > 2 * 1024 * 1024, 'the image is bigger than the folder');
  const { emu, home } = await pushBlob(t);
  const storage = await tmpfs(t, 'size=512k');
  const r = await runCli(['pull', img.blob.uri], { home, emu, env: { SREGISTRY_STORAGE: storage } });
  assertError(t, r, 7, /no space/);
  t.true(r.stderr.includes(storage), 'names the folder');
  await assertTree(t, storage, []);
  const get = await runCli(['get', img.blob.uri], { home, emu, env: { SREGISTRY_STORAGE: storage } });
  t.is(get.code, 3, `no record was made: ${get.stdout}`);
});

mountTest('pull into a read-only storage folder: exit 7, says it is read-only, leaves nothing', async (t) => {
  const { emu, home } = await pushBlob(t);
  const storage = await tmpfs(t, 'ro');
  const r = await runCli(['pull', img.blob.uri], { home, emu, env: { SREGISTRY_STORAGE: storage } });
  assertError(t, r, 7, /read-only/);
  await assertTree(t, storage, []);
});
