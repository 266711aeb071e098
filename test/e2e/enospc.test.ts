/**
 * The spool's disk fills up during a `cp` into the mount (README "Semantics": write, close):
 * the mount's spool folder (SINGULARITY_CACHEDIR/sreg/spool, src/app/serve.ts) is an 8 MiB
 * tmpfs, so a 20 MiB cp fails with "No space left on device" for real. Afterwards Dropbox
 * holds no truncated file: a new name is absent, an existing one keeps its old bytes; the
 * next cp of a small file works. The tmpfs is unmounted after the FUSE mount, even on failure.
 */
import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile as readFileBytes, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sdk } from '../helpers/emulator.js';
import { dropboxHash, e2e, isMounted, mountFor, pseudoRandom, remoteBytes, remoteMeta, sh, upload, waitFor } from './helpers.js';

const e2eTest = e2e('enospc.test');
const run = promisify(execFile);
const MiB = 1024 * 1024;

/** A cache folder whose spool is a small tmpfs; unmounted (registered first, so run last) whatever happens. */
async function cacheWithSmallSpool(t: ExecutionContext): Promise<{ cacheDir: string; spool: string }> {
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'sreg-e2e-enospc-cache-'));
  const spool = path.join(cacheDir, 'sreg', 'spool');
  await mkdir(spool, { recursive: true, mode: 0o700 });
  t.teardown(async () => {
    if (await isMounted(spool)) await run('umount', [spool]).catch(() => run('umount', ['-l', spool]));
    await rm(cacheDir, { recursive: true, force: true });
  });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', spool]);
  return { cacheDir, spool };
}

/**
 * A mount whose spool is the small tmpfs, a work folder, and `remotePath` uploaded with the
 * bytes of an old image (seen on the mount before this returns).
 */
async function mountWithOldImage(t: ExecutionContext, remotePath: string): Promise<{ spool: string; work: string; m: Awaited<ReturnType<typeof mountFor>>; dbx: ReturnType<typeof sdk>; old: Buffer }> {
  const { cacheDir, spool } = await cacheWithSmallSpool(t);
  const work = await mkdtemp(path.join(tmpdir(), 'sreg-e2e-enospc-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const m = await mountFor(t, { env: { SINGULARITY_CACHEDIR: cacheDir } });
  const dbx = sdk(m.emu);
  const old = Buffer.from('the old image');
  await upload(dbx, remotePath, old);
  await waitFor(`${remotePath} on the mount`, async () => ((await sh('stat', [path.join(m.dir, remotePath)])).code === 0 ? true : undefined), 15_000);
  return { spool, work, m, dbx, old };
}

e2eTest('cp of 20 MiB onto an 8 MiB spool disk fails with "No space left on device"; Dropbox gets no truncated file, an old version stays, the next cp works', async (t) => {
  const { spool, work, m, dbx, old } = await mountWithOldImage(t, '/lab/old.simg');
  const big = path.join(work, 'big.simg');
  await writeFile(big, pseudoRandom(20 * MiB, 'enospc'));

  const fresh = await sh('cp', [big, path.join(m.dir, 'lab/new.simg')]);
  t.not(fresh.code, 0);
  t.regex(fresh.stderr, /No space left on device/);
  const over = await sh('cp', [big, path.join(m.dir, 'lab/old.simg')]);
  t.not(over.code, 0);
  t.regex(over.stderr, /No space left on device/);

  const small = pseudoRandom(64 * 1024, 'after');
  await writeFile(path.join(work, 'small.simg'), small);
  t.is((await sh('cp', [path.join(work, 'small.simg'), path.join(m.dir, 'lab/new.simg')])).stderr, '', 'a new cp of the path works');

  await m.unmount();
  t.is((await remoteMeta(dbx, '/lab/new.simg'))?.content_hash, dropboxHash(small), 'only the complete small file was uploaded');
  t.deepEqual(await remoteBytes(dbx, '/lab/old.simg'), old, 'the old version is untouched');
  t.deepEqual(await readdir(spool), [], 'no spool file left behind');
});

e2eTest('a program that keeps its descriptor after "No space left on device": the disk space comes back at once, the file shows its old bytes, other files can be written, and nothing of the failed write lands', async (t) => {
  const { spool, work, m, dbx, old } = await mountWithOldImage(t, '/lab/held.simg');
  const big = path.join(work, 'big.simg');
  await writeFile(big, pseudoRandom(20 * MiB, 'enospc-held'));
  const small = path.join(work, 'small.simg');
  await writeFile(small, pseudoRandom(1 * MiB, 'enospc-small'));

  // fd 3 stays open across everything after the failed write, as a long-running program's would.
  const script = [
    'exec 3<>"$1/lab/held.simg"',
    'cat "$2" >&3 && echo "write: ok" || echo "write: failed"',
    'cp "$3" "$1/lab/other.simg" && echo "cp other: ok"',
    'cmp -s "$1/lab/held.simg" "$4" && echo "held shows: old"',
    'cp "$3" "$1/lab/held.simg" && echo "cp held: ok"',
    'exec 3>&-',
  ].join('\n');
  await writeFile(path.join(work, 'old.bin'), old);
  const r = await sh('bash', ['-c', script, 'enospc', m.dir, big, small, path.join(work, 'old.bin')]);
  t.log(r.stderr.trim());
  t.deepEqual(r.stdout.trim().split('\n'), ['write: failed', 'cp other: ok', 'held shows: old', 'cp held: ok']);
  t.regex(r.stderr, /No space left on device/);

  await m.unmount();
  t.is((await remoteMeta(dbx, '/lab/other.simg'))?.content_hash, dropboxHash(await readFileBytes(small)), 'the other file landed whole');
  t.is((await remoteMeta(dbx, '/lab/held.simg'))?.content_hash, dropboxHash(await readFileBytes(small)), 'the held file has the later cp, nothing of the failed write');
  t.deepEqual(await readdir(spool), [], 'no spool file left behind');
});
