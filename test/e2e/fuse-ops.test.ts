/**
 * The FUSE adapter's own answers, end to end with real tools (README "Semantics"): fsync (`sync
 * FILE`, `dd conv=fsync`, and an fsync that survives a kill -9 of the mount before close),
 * ENAMETOOLONG for a name over 255 bytes on every path call, EFBIG past the largest file Dropbox
 * stores, and the operations the mount does not support (ln, ln -s, mkfifo, mknod, fallocate,
 * readlink, rename flags), each with its errno. What Dropbox holds is read with the official
 * SDK after `sreg unmount` (which drains the uploads and must succeed). One mount is shared by
 * the serial tests, each in its own folder (a test that unmounted to look at Dropbox leaves
 * the next one to mount again); the kill -9 test has its own.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Dropbox } from 'dropbox';
import { sdk } from '../helpers/emulator.js';
import { startMount, type Mounted } from '../helpers/mount.js';
import {
  dropboxHash, e2e, errnoOf, FUSE, isMounted, mountFor, ok, pseudoRandom, remoteMeta, remoteNames, SharedContext, sh, sha256, sha256sum, track, upload, waitFor,
  waitForRemote,
} from './helpers.js';

const e2eTest = e2e('fuse-ops.test');
const MiB = 1024 * 1024;
/** Dropbox's largest file (src/fuse/limits.ts MAX_FILE_BYTES), written out here on purpose. */
const MAX_FILE_BYTES = 2_199_019_061_248;

const shared = new SharedContext();
let m: Mounted;
let dbx: Dropbox;
let workDir = '';
let mounted = false;

test.before(async () => {
  if (!FUSE.ok) return;
  workDir = await mkdtemp(path.join(tmpdir(), 'sreg-e2e-fuseops-'));
  m = track(await startMount(shared.t));
  mounted = true;
  await m.emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  dbx = sdk(m.emu);
});

test.after.always(async () => {
  await shared.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const onMount = (p: string): string => path.join(m.dir, p);

/** Mounted for this test (the previous one may have unmounted to look at Dropbox). */
async function ready(): Promise<void> {
  if (mounted) return;
  await m.remount();
  mounted = true;
}

/** `sreg unmount` (it drains the uploads and must succeed), then Dropbox can be looked at. */
async function unmount(): Promise<void> {
  mounted = false;
  await m.unmount();
}

/** Another machine uploads `p`; returns once the mount shows it with its size. */
async function seeded(p: string, data: Buffer): Promise<void> {
  await upload(dbx, p, data);
  await waitFor(`${p} on the mount`, async () => {
    const r = await sh('stat', ['-c', '%s', onMount(p)]);
    return r.code === 0 && r.stdout.trim() === String(data.length) ? true : undefined;
  }, 15_000);
}

/** Runs a command that must fail; returns its stderr. */
async function fails(cmd: string, args: string[]): Promise<string> {
  const r = await sh(cmd, args);
  if (r.code === 0) throw new Error(`${cmd} ${args.join(' ')} succeeded; it should have failed`);
  return r.stderr;
}

e2eTest('fsync: sync FILE and dd conv=fsync succeed, and Dropbox then has the bytes', async (t) => {
  await ready();
  await ok('mkdir', [onMount('/fs')]);
  const echo = await sh('sh', ['-c', 'echo hi > "$1" && sync "$1"', 'sh', onMount('/fs/f')]);
  t.is(echo.code, 0, `echo hi > f; sync f: ${echo.stderr}`);
  const syncData = await sh('sync', ['-d', onMount('/fs/f')]);
  t.is(syncData.code, 0, `sync -d (fdatasync): ${syncData.stderr}`);

  const data = pseudoRandom(3 * MiB + 17, 'fsync-dd');
  const src = path.join(workDir, 'dd.bin');
  await writeFile(src, data);
  const dd = await sh('dd', [`if=${src}`, `of=${onMount('/fs/dd.simg')}`, 'bs=64k', 'conv=fsync', 'status=none']);
  t.is(dd.code, 0, `dd conv=fsync: ${dd.stderr}`);
  // fsync through a descriptor still open for writing, then more writes, then close.
  const node = await sh(process.execPath, ['-e', `
    const fs = require('node:fs');
    const fd = fs.openSync(process.argv[1], 'w');
    fs.writeSync(fd, Buffer.from('one\\n')); fs.fsyncSync(fd);
    fs.writeSync(fd, Buffer.from('two\\n')); fs.fdatasyncSync(fd);
    fs.closeSync(fd);`, onMount('/fs/twice.txt')]);
  t.is(node.code, 0, `fsync twice while open: ${node.stderr}`);

  t.is(await sha256sum(onMount('/fs/dd.simg')), sha256(data));
  await unmount();
  t.deepEqual(await remoteNames(dbx, '/fs'), ['dd.simg', 'f', 'twice.txt']);
  t.is((await remoteMeta(dbx, '/fs/f'))?.content_hash, dropboxHash(Buffer.from('hi\n')));
  t.is((await remoteMeta(dbx, '/fs/dd.simg'))?.content_hash, dropboxHash(data));
  t.is((await remoteMeta(dbx, '/fs/twice.txt'))?.content_hash, dropboxHash(Buffer.from('one\ntwo\n')));
});

e2eTest('a close or an fsync of a written file fsyncs its spool file and the spool folder itself (strace of the mount process)', async (t) => {
  await ready();
  await ok('mkdir', [onMount('/durable')]);
  const pid = m.child()?.pid;
  t.truthy(pid);
  const trace = path.join(workDir, 'strace.out');
  // -y shows the path behind each descriptor; -f follows libuv's threads, where the fsyncs run.
  const strace = spawn('strace', ['-f', '-y', '-qq', '-e', 'trace=fsync,fdatasync', '-o', trace, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => {
    if (strace.exitCode === null && strace.signalCode === null) strace.kill('SIGKILL');
  });
  let attached = '';
  strace.stderr.on('data', (d: Buffer) => (attached += d.toString()));
  // strace says nothing once attached (-qq): a traced fsync of a marker file shows it is.
  await waitFor('strace to attach', async () => {
    await ok('sh', ['-c', 'echo marker > "$1"', 'sh', onMount('/durable/marker')]);
    const out = await readFile(trace, 'utf8').catch(() => '');
    return /fdatasync\(\d+<[^>]*\.spool>\)/.test(out) ? true : undefined;
  }, 30_000, 200);
  const before = (await readFile(trace)).length; // strace appends: what follows is this test's
  const r = await sh('sh', ['-c', 'echo closed > "$1" && dd if=/dev/zero of="$2" bs=4k count=1 conv=fsync status=none', 'sh', onMount('/durable/c'), onMount('/durable/f')]);
  t.is(r.code, 0, r.stderr);
  await new Promise<void>((resolve) => {
    strace.once('exit', () => resolve());
    strace.kill('SIGINT');
  });
  // Concurrent calls come as "fsync(… <unfinished ...>" then "<... fsync resumed>) = 0": count the calls made, and that none failed.
  const calls = (await readFile(trace)).subarray(before).toString().split('\n').filter((l) => /fsync|fdatasync/.test(l));
  t.false(calls.some((l) => /= -1/.test(l)), `no fsync failed:\n${calls.join('\n')}`);
  const spoolFiles = calls.filter((l) => /fdatasync\(\d+<[^>]*\/spool\/[^>]*\.spool>/.test(l));
  const spoolDir = calls.filter((l) => /fsync\(\d+<[^>]*\/spool>/.test(l));
  t.true(spoolFiles.length >= 2, `the two spool files were fdatasynced:\n${calls.join('\n')}\n${attached}`);
  t.true(spoolDir.length >= 2, `the spool folder was fsynced for each:\n${calls.join('\n')}`);
});

e2eTest('ENAMETOOLONG for a name over 255 bytes on every path call (stat, rm, mv, truncate, touch, mkdir, rmdir, ls, getfattr, chmod), existing or not', async (t) => {
  await ready();
  await ok('mkdir', [onMount('/long')]);
  await ok('sh', ['-c', 'echo x > "$1"', 'sh', onMount('/long/ok')]);
  const long = 'x'.repeat(256);
  const wide = 'é'.repeat(128); // 128 characters, 256 bytes
  const L = onMount(`/long/${long}`);
  const TOO_LONG = /File name too long/;
  for (const name of [long, wide, `${long}/below`]) {
    const p = onMount(`/long/${name}`);
    t.is(await errnoOf('stat', p), 'ENAMETOOLONG', `stat ${name.slice(0, 8)}…`);
    t.is(await errnoOf('create', p), 'ENAMETOOLONG', `create ${name.slice(0, 8)}…`);
    t.is(await errnoOf('mkdir', p), 'ENAMETOOLONG');
    t.is(await errnoOf('unlink', p), 'ENAMETOOLONG');
    t.is(await errnoOf('rmdir', p), 'ENAMETOOLONG');
    t.is(await errnoOf('truncate', p, '0'), 'ENAMETOOLONG');
    t.is(await errnoOf('readdir', p), 'ENAMETOOLONG');
    t.is(await errnoOf('rename', onMount('/long/ok'), p), 'ENAMETOOLONG', 'rename onto a long name');
    t.is(await errnoOf('rename', p, onMount('/long/other')), 'ENAMETOOLONG', 'rename from a long name');
  }
  t.regex(await fails('stat', [L]), TOO_LONG);
  t.regex(await fails('rm', [L]), TOO_LONG);
  t.regex(await fails('rm', ['-f', L]), TOO_LONG);
  t.regex(await fails('mv', [onMount('/long/ok'), L]), TOO_LONG);
  t.regex(await fails('mv', [L, onMount('/long/ok2')]), TOO_LONG);
  t.regex(await fails('truncate', ['-s', '10', L]), TOO_LONG);
  t.regex(await fails('truncate', ['-c', '-s', '10', L]), TOO_LONG);
  t.regex(await fails('touch', [L]), TOO_LONG);
  t.regex(await fails('mkdir', [L]), TOO_LONG);
  t.regex(await fails('rmdir', [L]), TOO_LONG);
  t.regex(await fails('ls', [L]), TOO_LONG);
  t.regex(await fails('getfattr', ['-n', 'user.sregistry.uri', L]), TOO_LONG);
  t.regex(await fails('chmod', ['600', L]), TOO_LONG);
  // 255 bytes is allowed.
  const max = 'y'.repeat(255);
  const made = await sh('sh', ['-c', 'echo 255 > "$1"', 'sh', onMount(`/long/${max}`)]);
  t.is(made.code, 0, made.stderr);
  await unmount();
  t.deepEqual(await remoteNames(dbx, '/long'), ['ok', max].sort(), 'no long name reached Dropbox, ok was not moved');
  t.is((await remoteMeta(dbx, `/long/${max}`))?.content_hash, dropboxHash(Buffer.from('255\n')));
});

e2eTest('EFBIG: truncate -s 999999999999999 and writes past the largest file Dropbox stores; the file is untouched and unmount is not blocked', async (t) => {
  await ready();
  const data = pseudoRandom(1000, 'efbig');
  await seeded('/big/f.simg', data);
  const f = onMount('/big/f.simg');
  t.regex(await fails('truncate', ['-s', '999999999999999', f]), /File too large/);
  t.is(await errnoOf('truncate', f, '999999999999999'), 'EFBIG');
  t.is(await errnoOf('truncate', f, String(MAX_FILE_BYTES + 1)), 'EFBIG', 'one byte past the limit');
  // A new file too: created (empty), its truncate refused.
  t.regex(await fails('truncate', ['-s', '999999999999999', onMount('/big/new.simg')]), /File too large/);
  // A write that starts at the limit (dd seeks there without writing anything before it).
  const dd = await fails('dd', ['if=/dev/zero', `of=${f}`, 'bs=1', 'count=1', `seek=${MAX_FILE_BYTES}`, 'conv=notrunc', 'status=none']);
  t.regex(dd, /File too large/);
  const ddFar = await fails('dd', ['if=/dev/zero', `of=${f}`, 'bs=4096', 'count=1', `oflag=seek_bytes`, 'seek=999999999999999', 'conv=notrunc', 'status=none']);
  t.regex(ddFar, /File too large/);
  t.is((await ok('stat', ['-c', '%s', f])).trim(), '1000');
  t.is(await sha256sum(f), sha256(data));
  t.regex(await m.log(), /truncate \/big\/f\.simg: EFBIG/, 'the log says why');
  t.is((await m.sreg(['status', '--json'])).code, 0);
  const open = JSON.parse((await m.sreg(['status', '--json'])).stdout) as { openForWriting?: number }[];
  t.is(open[0]?.openForWriting, 0, 'no write handle left behind by the refused calls');
  await unmount();
  t.deepEqual(await remoteNames(dbx, '/big'), ['f.simg', 'new.simg']);
  t.is((await remoteMeta(dbx, '/big/new.simg'))?.size, 0, 'the new file, empty');
  t.is((await remoteMeta(dbx, '/big/f.simg'))?.content_hash, dropboxHash(data), 'Dropbox still has the old bytes');
});

e2eTest('unsupported: ln and ln -s EPERM, mkfifo and mknod EPERM, fallocate EOPNOTSUPP (posix_fallocate writes zeros), readlink EINVAL, rename flags (RENAME_NOREPLACE, RENAME_EXCHANGE) EINVAL; nothing reaches Dropbox', async (t) => {
  await ready();
  const data = pseudoRandom(5000, 'unsupported');
  await seeded('/un/a.simg', data);
  await seeded('/un/b.simg', Buffer.from('b'));
  const a = onMount('/un/a.simg');
  const NOT_PERMITTED = /Operation not permitted/;
  t.regex(await fails('ln', [a, onMount('/un/hard')]), NOT_PERMITTED);
  t.regex(await fails('ln', ['-s', 'a.simg', onMount('/un/soft')]), NOT_PERMITTED);
  t.regex(await fails('ln', ['-s', '/etc/passwd', onMount('/un/soft2')]), NOT_PERMITTED);
  t.regex(await fails('mkfifo', [onMount('/un/fifo')]), NOT_PERMITTED);
  t.regex(await fails('mknod', [onMount('/un/null'), 'c', '1', '3']), NOT_PERMITTED);
  t.regex(await fails('mknod', [onMount('/un/pipe'), 'p']), NOT_PERMITTED);
  t.regex(await fails('fallocate', ['-l', '1M', a]), /Operation not supported/);
  t.regex(await fails('fallocate', ['-o', '0', '-l', '100', '--punch-hole', a]), /keep size mode is unsupported/); // util-linux's words for EOPNOTSUPP here
  // posix_fallocate(3): glibc writes the zeros itself when fallocate(2) says EOPNOTSUPP.
  const px = await sh('fallocate', ['--posix', '-l', '4096', onMount('/un/zeros')]);
  t.is(px.code, 0, `fallocate --posix: ${px.stderr}`);
  const rl = await sh('perl', ['-e', 'defined(readlink($ARGV[0])) and exit 0; print 0+$!; exit 1', a]);
  t.is(rl.code, 1);
  t.is(rl.stdout, '22', 'readlink of a file: EINVAL');
  // renameat2(AT_FDCWD, a, AT_FDCWD, b, flags): 316 on x86_64, 276 on arm64.
  const nr = process.arch === 'arm64' ? 276 : 316;
  const renameat2 = (to: string, flags: number): ReturnType<typeof sh> =>
    sh('perl', ['-e', `my $r = syscall(${nr}, -100, $ARGV[0], -100, $ARGV[1], ${flags}); print $r == 0 ? 'OK' : 0+$!`, a, onMount(to)]);
  t.is((await renameat2('/un/c.simg', 1)).stdout, '22', 'RENAME_NOREPLACE onto a free name: EINVAL');
  t.is((await renameat2('/un/b.simg', 1)).stdout, '17', 'RENAME_NOREPLACE onto an existing name: EEXIST (the kernel answers it)');
  t.is((await renameat2('/un/b.simg', 2)).stdout, '22', 'RENAME_EXCHANGE: EINVAL');
  // mv -n falls back to a check and a plain rename: it keeps the target.
  const mvn = await sh('mv', ['-n', a, onMount('/un/b.simg')]);
  t.is(mvn.code, 0, mvn.stderr);
  t.is(await sha256sum(a), sha256(data), 'a.simg unchanged');
  t.deepEqual((await ok('ls', [onMount('/un')])).trim().split('\n'), ['a.simg', 'b.simg', 'zeros']);
  await unmount();
  t.deepEqual(await remoteNames(dbx, '/un'), ['a.simg', 'b.simg', 'zeros'], 'nothing else reached Dropbox');
  t.is((await remoteMeta(dbx, '/un/zeros'))?.content_hash, dropboxHash(Buffer.alloc(4096)));
  t.is((await remoteMeta(dbx, '/un/a.simg'))?.content_hash, dropboxHash(data));
});

e2eTest('fsync through a descriptor still open for writing journals the bytes: after kill -9 of the mount, the next mount uploads them', async (t) => {
  t.timeout(110_000);
  const mm = await mountFor(t, { emulator: { args: ['--bandwidth', '1M'] } });
  const remote = sdk(mm.emu);
  await ok('mkdir', [path.join(mm.dir, 'sync')]);
  const file = path.join(mm.dir, 'sync', 'held.simg');
  const data = pseudoRandom(6 * MiB, 'fsync-kill');
  const src = path.join(workDir, 'held.bin');
  await writeFile(src, data);
  const holder = spawn(process.execPath, [
    '-e',
    `const fs = require('node:fs');
     const fd = fs.openSync(process.argv[1], 'w');
     fs.writeSync(fd, fs.readFileSync(process.argv[2]));
     fs.fsyncSync(fd);
     console.log('synced');
     setInterval(() => {}, 1000);`,
    file,
    src,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  holder.stdout.on('data', (d: Buffer) => (out += d.toString()));
  holder.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await waitFor('the holder to write and fsync', () => Promise.resolve(out.includes('synced') ? true : err ? false : undefined), 30_000, 20);
  t.is(out.trim(), 'synced', err);
  // The mount dies while the file is still open (never closed): only fsync put it in the journal.
  mm.child()?.kill('SIGKILL');
  await waitFor('the mount process to die', () => Promise.resolve(mm.child()?.signalCode === 'SIGKILL' ? true : undefined), 10_000, 20);
  holder.kill('SIGKILL');
  t.is(await remoteMeta(remote, '/sync/held.simg'), undefined, 'not uploaded before the mount died (1 MB/s)');
  const u = await mm.sreg(['unmount', mm.dir]);
  t.is(u.code, 0, u.stderr);
  t.regex(u.stdout, /1 upload\(s\) it had accepted will finish at the next sreg mount/);
  t.false(await isMounted(mm.dir));
  await mm.emu.admin('POST', '/config', { bandwidthBytesPerSec: 0 });
  await mm.remount();
  const meta = await waitForRemote(remote, '/sync/held.simg', dropboxHash(data), 60_000);
  t.is(meta.size, data.length);
});
