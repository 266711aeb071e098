/**
 * The namespace of the mount, end to end (issue 7's repros): case-only rename, the
 * mkdir/touch/rm/rmdir loop, remove while open (written and read), mv onto a file whose upload
 * is queued or whose writer is open, two descriptors writing one file, renaming a folder with
 * a file open inside (also: its revision check kept, so another machine's change is not
 * overwritten), the share link
 * after rm and a new upload under the same name, a remote delete under a reader at its end,
 * and a busy mixed workload after which `sreg unmount` must succeed. Real tools (mv, rm, rmdir,
 * the shell's exec fds, getfattr); what Dropbox holds is read with the official SDK after
 * `sreg unmount` (each test unmounts; the next one mounts again).
 */
import test from 'ava';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { Dropbox } from 'dropbox';
import { sdk } from '../helpers/emulator.js';
import { startMount, type Mounted } from '../helpers/mount.js';
import { FdHolder } from './fd-holder.js';
import { dropboxHash, e2e, FUSE, ok, remoteBytes, remoteMeta, remoteNames, SharedContext, sh, track, upload, waitFor, waitForRemote } from './helpers.js';

const e2eTest = e2e('namespace.test');
const shared = new SharedContext();
let m: Mounted;
let dbx: Dropbox;
let mounted = false;

test.before(async () => {
  if (!FUSE.ok) return;
  m = track(await startMount(shared.t));
  mounted = true;
  await m.emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  dbx = sdk(m.emu);
});

test.after.always(async () => {
  await shared.close();
});

const onMount = (p: string): string => path.join(m.dir, p);

/** Mounted for this test (the previous one may have unmounted to look at Dropbox). */
async function ready(folder: string): Promise<string> {
  if (!mounted) {
    await m.remount();
    mounted = true;
  }
  await ok('mkdir', ['-p', onMount(folder)]);
  return onMount(folder);
}

/** `sreg unmount` (it drains the uploads and must succeed), then Dropbox can be looked at. */
async function unmount(): Promise<void> {
  mounted = false;
  await m.unmount();
}

/** A shell script run in `dir` on the mount; it must exit 0; returns stdout. */
async function script(dir: string, text: string, timeoutMs = 60_000): Promise<string> {
  const r = await sh('bash', ['-c', `set -e; cd "$1"; ${text}`, 'bash', dir], { timeoutMs });
  if (r.code !== 0) throw new Error(`script failed (${r.code}): ${r.stderr}\n${r.stdout}\n---\n${text}`);
  return r.stdout;
}

/** Names in a remote folder, or [] if it does not exist. */
async function remoteList(folder: string): Promise<string[]> {
  return (await remoteMeta(dbx, folder)) ? remoteNames(dbx, folder) : [];
}

async function uploadsDone(): Promise<void> {
  await waitFor('the upload queue to be empty', async () => {
    const s = await m.sreg(['status', '--json']);
    const st = JSON.parse(s.stdout) as { uploads?: { files: number } }[];
    return st[0]?.uploads?.files === 0 ? true : undefined;
  }, 30_000);
}

e2eTest('mv Foo.simg foo.simg (case only) renames the image in Dropbox and deletes nothing', async (t) => {
  const dir = await ready('/case');
  await script(dir, 'printf image-bytes > Foo.simg');
  const hash = dropboxHash(Buffer.from('image-bytes'));
  await waitForRemote(dbx, '/case/Foo.simg', hash);
  const r = await sh('mv', [path.join(dir, 'Foo.simg'), path.join(dir, 'foo.simg')]);
  t.is(r.code, 0, `mv: ${r.stderr}`);
  t.deepEqual((await ok('ls', [dir])).trim().split('\n'), ['foo.simg'], 'the mount lists the new name');
  t.is(await ok('cat', [path.join(dir, 'foo.simg')]), 'image-bytes');
  await unmount();
  t.deepEqual(await remoteNames(dbx, '/case'), ['foo.simg'], 'Dropbox has the image under its new name');
  t.is((await remoteMeta(dbx, '/case/foo.simg'))?.content_hash, hash);
});

e2eTest('mkdir d; touch d/f; rm d/f; rmdir d, 20 times: every rm holds and every rmdir succeeds', async (t) => {
  const dir = await ready('/loop');
  const out = await script(dir, 'for i in $(seq 20); do mkdir d$i; touch d$i/f; rm d$i/f; rmdir d$i; done; ls -A; echo done');
  t.is(out.trim(), 'done', 'nothing left on the mount');
  await unmount();
  t.deepEqual(await remoteList('/loop'), [], 'nothing removed came back in Dropbox');
});

e2eTest('exec 3>t; echo data >&3; rm t: t is gone at once, the descriptor still works, nothing reaches Dropbox', async (t) => {
  const dir = await ready('/rmw');
  const out = await script(dir, 'exec 3>t; echo data >&3; rm t; echo "ls:$(ls -A)"; echo more >&3; stat -L -c "fd:%s" /dev/fd/3; exec 3>&-; echo "after:$(ls -A)"');
  t.deepEqual(out.trim().split('\n'), ['ls:', 'fd:10', 'after:'], 'listing after rm, the open descriptor (10 bytes), listing after close');
  await unmount();
  t.deepEqual(await remoteList('/rmw'), [], 'no t, no .fuse_hidden* in Dropbox');
});

e2eTest('echo hello > a; exec 3<a; rm a; exec 3<&-: the reader keeps its bytes, Dropbox holds nothing', async (t) => {
  const dir = await ready('/rmr');
  const out = await script(dir, 'echo hello > a; exec 3<a; rm a; echo "ls:$(ls -A)"; cat <&3; exec 3<&-; echo "after:$(ls -A)"');
  t.deepEqual(out.trim().split('\n'), ['ls:', 'hello', 'after:']);
  await unmount();
  t.deepEqual(await remoteList('/rmr'), [], 'no a, no .fuse_hidden* in Dropbox');
});

e2eTest('two descriptors appending to one log (exec 3>>log 4>>log), and `: > f` while another descriptor has f open: one file, as POSIX has it; Dropbox gets every line in order, no zeros', async (t) => {
  const dir = await ready('/append');
  await script(dir, 'printf "orig\\n" > log; printf 0123456789 > f');
  await waitForRemote(dbx, '/append/log', dropboxHash(Buffer.from('orig\n')));
  const log = await script(dir, 'exec 3>>log 4>>log; echo A1 >&3; echo B1 >&4; echo A2 >&3; exec 3>&-; echo B2 >&4; cat log; exec 4>&-');
  t.is(log, 'orig\nA1\nB1\nA2\nB2\n', 'each append at the end of what both wrote');
  const f = await script(dir, 'exec 3<>f; : > f; echo "size:$(stat -c %s f)"; echo "read:$(cat <&3)"; echo new >&3; exec 3>&-; cat f');
  t.is(f, 'size:0\nread:\nnew\n', 'the truncation is seen through the descriptor that was open');
  await unmount();
  t.is((await remoteBytes(dbx, '/append/log')).toString(), 'orig\nA1\nB1\nA2\nB2\n');
  t.is((await remoteBytes(dbx, '/append/f')).toString(), 'new\n');
});

e2eTest('mv src dst where dst has an upload queued, or a writer open: the move wins', async (t) => {
  const dir = await ready('/mvq');
  await script(dir, 'printf moved-1 > src1; printf moved-2 > src2');
  await waitForRemote(dbx, '/mvq/src1', dropboxHash(Buffer.from('moved-1')));
  await waitForRemote(dbx, '/mvq/src2', dropboxHash(Buffer.from('moved-2')));
  // Uploads fail for now: dst1's bytes stay queued in the journal.
  await m.emu.admin('POST', '/faults', { kind: '5xx', routes: ['files/upload', 'files/upload_session/start', 'files/upload_session/append_v2', 'files/upload_session/finish'], count: 1_000_000 });
  try {
    // mv waits for an upload of dst in flight to end (the client gives up after its retries).
    await script(dir, 'printf stale-queued > dst1; mv src1 dst1', 150_000);
    // A writer open on dst2 (its first bytes already closed once by the shell's echo).
    await script(dir, 'exec 4>dst2; echo stale-open >&4; mv src2 dst2; echo later >&4; exec 4>&-; cat dst1 dst2', 150_000);
  } finally {
    await m.emu.admin('DELETE', '/faults');
  }
  t.is(await ok('cat', [path.join(dir, 'dst1')]), 'moved-1');
  t.is(await ok('cat', [path.join(dir, 'dst2')]), 'moved-2');
  await unmount();
  t.deepEqual(await remoteNames(dbx, '/mvq'), ['dst1', 'dst2']);
  t.is((await remoteBytes(dbx, '/mvq/dst1')).toString(), 'moved-1', 'the queued upload of dst1 did not overwrite the move');
  t.is((await remoteBytes(dbx, '/mvq/dst2')).toString(), 'moved-2', 'the open writer of dst2 did not overwrite the move');
});

e2eTest('rename a folder while a file inside is open for writing: it lands under the new folder', async (t) => {
  const dir = await ready('/mvd');
  await script(dir, 'mkdir old; exec 3>old/x; echo first >&3; mv old new; echo second >&3; exec 3>&-');
  t.is(await ok('cat', [path.join(dir, 'new/x')]), 'first\nsecond\n');
  await unmount();
  t.deepEqual(await remoteNames(dbx, '/mvd'), ['new'], 'the old folder is not recreated');
  t.deepEqual(await remoteNames(dbx, '/mvd/new'), ['x']);
  t.is((await remoteBytes(dbx, '/mvd/new/x')).toString(), 'first\nsecond\n');
});

e2eTest('rename a folder while files inside, opened from Dropbox, are open for writing: another machine\'s change after the move stays, ours is a conflicted copy; an unchanged file is simply ours', async (t) => {
  const dir = await ready('/mvc');
  await upload(dbx, '/mvc/old/x.txt', Buffer.from('one\n'));
  await upload(dbx, '/mvc/old/y.txt', Buffer.from('one\n'));
  await waitFor('old/x.txt and old/y.txt on the mount', async () => ((await sh('cat', [path.join(dir, 'old/x.txt'), path.join(dir, 'old/y.txt')])).stdout === 'one\none\n' ? true : undefined), 15_000);
  // The descriptors live in a process of their own: a fork of this one would close (flush) them.
  const holder = new FdHolder();
  t.teardown(() => holder.stop());
  const fds = await Promise.all(['x.txt', 'y.txt'].map((f) => holder.call<number>('openW', path.join(dir, 'old', f), false)));
  for (const fd of fds) await holder.call('write', fd, 4, Buffer.from('ours\n').toString('base64'));
  await ok('mv', [path.join(dir, 'old'), path.join(dir, 'new')]);
  // Another machine changes x.txt after the move, before our writers close.
  await upload(dbx, '/mvc/new/x.txt', Buffer.from('theirs\n'));
  for (const fd of fds) await holder.call('close', fd);
  await holder.stop();
  await unmount();
  t.deepEqual(await remoteNames(dbx, '/mvc'), ['new'], 'the old folder is not recreated');
  t.deepEqual(await remoteNames(dbx, '/mvc/new'), ['x (conflicted copy).txt', 'x.txt', 'y.txt']);
  t.is((await remoteBytes(dbx, '/mvc/new/x.txt')).toString(), 'theirs\n', 'their change is not overwritten');
  t.is((await remoteBytes(dbx, '/mvc/new/x (conflicted copy).txt')).toString(), 'one\nours\n');
  t.is((await remoteBytes(dbx, '/mvc/new/y.txt')).toString(), 'one\nours\n', 'no conflict with our own moved file');
});

e2eTest('getfattr user.sregistry.share_url after rm and a new upload under the same name gives the new file\'s link', async (t) => {
  const dir = await ready('/link');
  const file = path.join(dir, 'img.simg');
  const shareUrl = async (): Promise<string> => {
    const r = await waitFor('share_url', async () => {
      const g = await sh('getfattr', ['-n', 'user.sregistry.share_url', '--only-values', file]);
      return g.code === 0 ? g.stdout : undefined;
    }, 15_000);
    return r;
  };
  await script(dir, 'printf first > img.simg');
  await waitForRemote(dbx, '/link/img.simg', dropboxHash(Buffer.from('first')));
  const first = await shareUrl();
  await script(dir, 'rm img.simg; printf second > img.simg');
  await waitForRemote(dbx, '/link/img.simg', dropboxHash(Buffer.from('second')));
  const second = await shareUrl();
  t.not(second, first, 'not the dead link of the removed file');
  await unmount();
  t.deepEqual(await remoteNames(dbx, '/link'), ['img.simg']);
  t.is((await remoteMeta(dbx, '/link/img.simg'))?.content_hash, dropboxHash(Buffer.from('second')), 'Dropbox holds the new file');
  const links = (await dbx.sharingListSharedLinks({ path: '/link/img.simg', direct_only: true })).result.links.map((l) => l.url);
  t.deepEqual(links, [second], 'the link Dropbox has for the new file');
});

e2eTest('a file deleted in Dropbox while a reader is at its end: a clean end of file for the revision it opened', async (t) => {
  const dir = await ready('/eof');
  const data = Buffer.from('bytes of the revision the reader opened\n');
  await upload(dbx, '/eof/r.txt', data);
  const file = path.join(dir, 'r.txt');
  await waitFor('r.txt on the mount', async () => ((await sh('stat', [file])).code === 0 ? true : undefined), 15_000);
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(4096);
    const first = await fh.read(buf, 0, buf.length, 0);
    t.is(buf.subarray(0, first.bytesRead).toString(), data.toString());
    await dbx.filesDeleteV2({ path: '/eof/r.txt' });
    await waitFor('r.txt gone from the mount\'s listing', async () => ((await ok('ls', ['-A', dir])).trim() === '' ? true : undefined), 30_000);
    const atEnd = await fh.read(buf, 0, buf.length, data.length);
    t.is(atEnd.bytesRead, 0, 'end of file, no error');
    const again = await fh.read(buf, 0, buf.length, 0);
    t.is(buf.subarray(0, again.bytesRead).toString(), data.toString(), 'the revision it opened');
  } finally {
    await fh.close();
  }
  await unmount();
  t.deepEqual(await remoteList('/eof'), []);
});

e2eTest('no handle outlives its release: a busy mixed workload, then sreg unmount drains and succeeds', async (t) => {
  const dir = await ready('/busy');
  const worker = (w: number): string => `
    mkdir w${w}; cd w${w}
    for i in $(seq 15); do
      exec 3>a$i; echo "a$i" >&3
      echo "b$i" > b$i
      mv b$i c$i
      exec 4<c$i; rm c$i; cat <&4 >/dev/null; exec 4<&-
      echo more >&3; exec 3>&-
      mkdir d$i; echo x > d$i/f; mv d$i e$i; rm e$i/f; rmdir e$i
      truncate -s 3 a$i
      if [ $((i % 3)) -eq 0 ]; then rm a$i; fi
    done
    echo final-${w} > final`;
  const runs = await Promise.all([1, 2, 3, 4].map((w) => sh('bash', ['-c', `set -e; cd "$1"; ${worker(w)}`, 'bash', dir], { timeoutMs: 120_000 })));
  for (const r of runs) t.is(r.code, 0, r.stderr);
  await uploadsDone();
  await unmount();
  for (const w of [1, 2, 3, 4]) {
    const want = ['final', ...[...Array(15).keys()].map((k) => k + 1).filter((i) => i % 3 !== 0).map((i) => `a${i}`)].sort();
    const entries = (await dbx.filesListFolder({ path: `/busy/w${w}` })).result.entries;
    t.deepEqual(entries.filter((e) => e['.tag'] === 'file').map((e) => e.name).sort(), want, `w${w}'s files in Dropbox`);
    // Known gap (issue 7 report): an empty folder d<i> recreated by a stray upload of d<i>/f can remain.
    const folders = entries.filter((e) => e['.tag'] === 'folder').map((e) => e.name);
    if (folders.length > 0) t.log(`w${w}: empty folders left by stray uploads: ${folders.join(', ')}`);
    t.is((await remoteBytes(dbx, `/busy/w${w}/a1`)).toString(), 'a1\n', 'truncated to 3 bytes');
  }
});
