/**
 * FUSE passthrough in the native addon (native/src/passthrough.c), on a real kernel mount driven
 * by a minimal dispatch of our own (test/helpers/one-file-fs.ts): one file, `f`, whose read-only
 * opens are answered with a backing file.
 * With passthrough taken up at INIT, the kernel reads the backing file itself: the bytes are
 * right and no read reaches us; every handle's backing id is closed at its release; the kernel's
 * rule (an inode with a passthrough handle open refuses an ordinary open, EIO) holds. Without
 * it (mount(…, passthrough = false), or a kernel older than 6.9) the same open is answered the
 * ordinary way and the reads come to us.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { loadNative, type NativeAddon } from '../../src/fuse3/native.js';
import { mountOneFile, type OneFileFs } from '../helpers/one-file-fs.js';
import { e2e, isMounted, sh } from './helpers.js';

const e2eTest = e2e('passthrough.test');

interface Rig extends OneFileFs {
  addon: NativeAddon;
  dir: string;
  file: string;
  bytes: Buffer;
}

async function rig(t: ExecutionContext, passthrough: boolean): Promise<Rig> {
  const { addon, why } = loadNative();
  if (!addon) throw new Error(`the native addon is needed here: ${why}`);
  const work = await mkdtemp(path.join(tmpdir(), 'sreg-pt-'));
  const dir = path.join(work, 'mnt');
  const file = path.join(work, 'backing');
  const bytes = randomBytes(6 * 1024 * 1024 + 4321);
  await writeFile(file, bytes);
  await sh('mkdir', [dir]);
  const fs = await mountOneFile(addon, dir, file, passthrough);
  t.teardown(async () => {
    // Whatever happened: no mount left behind.
    await fs.close().catch(() => undefined);
    if (await isMounted(dir)) await sh('fusermount3', ['-uz', dir]);
    await rm(work, { recursive: true, force: true });
  });
  return { ...fs, addon, dir, file, bytes };
}

e2eTest('passthrough: the kernel reads the backing file itself (no read reaches us), ids are closed at release, and an ordinary open of that inode is refused meanwhile', async (t) => {
  const r = await rig(t, true);
  const f = path.join(r.dir, 'f');
  t.true((await readFile(f)).equals(r.bytes), 'the bytes, whichever way they came');
  const c = r.addon.counters();
  if (c.passthrough !== 1) {
    // A kernel without FUSE passthrough (before 6.9, or built without it): the fallback must hold.
    t.log(`*** this kernel did not take up FUSE passthrough: only the fallback was tested (opens answered ${r.opens.join(',')}, errno ${c.passthroughLastErrno}) ***`);
    t.deepEqual(r.opens, [1]);
    t.true(r.reads() > 0);
    return;
  }
  t.deepEqual(r.opens, [2], 'answered with a passthrough handle');
  t.is(r.addon.counters().passthroughOpen, 0, 'its backing id was closed at its release');
  t.is(r.reads(), 0, 'no read reached the dispatch');

  // Two readers at once, sharing the inode's backing id (the kernel takes no second one); an
  // ordinary (writer) open meanwhile fails with EIO, and so does one with another backing file.
  const h1: FileHandle = await open(f, 'r');
  const h2: FileHandle = await open(f, 'r');
  const tryOpen = (flags: string): Promise<string | undefined> => open(f, flags).then((h) => h.close().then(() => undefined), (e: NodeJS.ErrnoException) => e.code);
  try {
    t.is(r.addon.counters().passthroughOpen, 2);
    t.is(await tryOpen('r+'), 'EIO', "the kernel's rule: a passthrough inode takes passthrough opens only");
    r.backWith(`${r.file}.other`);
    t.is(await tryOpen('r'), 'EIO', 'nor one on another file');
    t.is(r.addon.counters().passthroughLastErrno, 16, 'refused by us (EBUSY), answered the ordinary way, failed by the kernel');
    r.backWith(r.file);
    const mid = Buffer.alloc(1 << 20);
    const { bytesRead } = await h2.read(mid, 0, mid.length, 3 * 1024 * 1024 + 17);
    t.true(mid.subarray(0, bytesRead).equals(r.bytes.subarray(3 * 1024 * 1024 + 17, 3 * 1024 * 1024 + 17 + bytesRead)));
  } finally {
    await h1.close();
    await h2.close();
  }
  // Releases are asynchronous to close(2): wait for the ids to be given back.
  for (let i = 0; i < 100 && r.addon.counters().passthroughOpen !== 0; i++) await new Promise((res) => setTimeout(res, 20));
  t.is(r.addon.counters().passthroughOpen, 0, 'every backing id was closed at its release');
  t.is(r.reads(), 0);
  // No passthrough handle left: an ordinary open of the inode is fine again.
  await (await open(f, 'r+')).close();
  t.is(r.addon.counters().passthroughOpens, 3);
  t.deepEqual(r.opens, [2, 2, 2, 1, 1, 1]);
});

e2eTest('passthrough not taken up: an open with a backing file is answered the ordinary way and the reads come to us', async (t) => {
  const r = await rig(t, false);
  const refused = r.addon.counters().passthroughRefused; // the process's counters: the other test's count too
  t.true((await readFile(path.join(r.dir, 'f'))).equals(r.bytes));
  t.is(r.addon.counters().passthrough, 0);
  t.deepEqual(r.opens, [1]);
  t.true(r.reads() > 0);
  t.is(r.addon.counters().passthroughRefused, refused + 1);
});
