/**
 * The mount's lifecycle, end to end (README "Mounting" and the Semantics rows for close and
 * `sreg unmount`): what close() accepted survives a kill -9 and is uploaded by the next mount;
 * a dead mount point is cleared by the next `sreg mount`; `sreg unmount` refuses while a file
 * is open for writing, waits for pending uploads, and SIGTERM does the same; `sreg status`
 * shows the mount, its cache and its upload queue. Uploads are slowed with the emulator's
 * --bandwidth so that "pending" lasts long enough to look at. Each test has its own mount.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sdk } from '../helpers/emulator.js';
import type { Mounted } from '../helpers/mount.js';
import { dropboxHash, e2e, errnoOf, FUSE, isMounted, mountFor, ok, pseudoRandom, remoteBytes, remoteMeta, sh, sha256, sha256sum, waitFor } from './helpers.js';

const e2eTest = e2e('lifecycle.test');
const MiB = 1024 * 1024;
const SLOW = { emulator: { args: ['--bandwidth', '1M'] } }; // 10⁶ bytes/s per connection

let workDir = '';
test.before(async () => {
  if (FUSE.ok) workDir = await mkdtemp(path.join(tmpdir(), 'sreg-e2e-life-'));
});
test.after.always(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function local(name: string, data: Buffer): Promise<string> {
  const f = path.join(workDir, name);
  await writeFile(f, data);
  return f;
}

interface StatusJson {
  mountpoint?: string;
  state: string;
  pid?: number;
  cache?: { budgetBytes: number; usedBytes: number; hits: number; misses: number };
  uploads?: { files: number; bytes: number };
  openForWriting?: number;
}

async function statusJson(m: Mounted): Promise<StatusJson[]> {
  const r = await m.sreg(['status', '--json']);
  if (r.code !== 0) throw new Error(`sreg status --json: ${r.code} ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusJson[];
}

/** Waits until the mount reports `files` pending uploads. */
const pendingIs = (m: Mounted, files: number): Promise<StatusJson> =>
  waitFor(`${files} pending upload(s) in sreg status`, async () => {
    const s = (await statusJson(m))[0];
    return s?.uploads?.files === files ? s : undefined;
  }, 10_000, 50);

async function exited(m: Mounted): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const c = m.child();
  if (!c) throw new Error('no mount process');
  if (c.exitCode !== null || c.signalCode !== null) return { code: c.exitCode, signal: c.signalCode };
  return new Promise((resolve) => c.once('exit', (code, signal) => resolve({ code, signal })));
}

e2eTest('kill -9 right after cp returned, before the upload finished: the next mount uploads the file', async (t) => {
  t.timeout(110_000);
  const m = await mountFor(t, SLOW);
  const dbx = sdk(m.emu);
  await ok('mkdir', [path.join(m.dir, 'crash')]);
  const data = pseudoRandom(12 * MiB, 'crash'); // three 4 MiB chunks at 1 MB/s each: seconds to upload
  const src = await local('crash.simg', data);
  const target = path.join(m.dir, 'crash', 'big.simg');
  const pid = m.child()?.pid;
  t.truthy(pid);
  // close() returned (cp exited 0), then at once kill -9 the mount.
  const r = await sh('sh', ['-c', 'cp "$1" "$2" && kill -9 "$3"', 'sh', src, target, String(pid)]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(await exited(m), { code: null, signal: 'SIGKILL' });
  t.is(await remoteMeta(dbx, '/crash/big.simg'), undefined, 'the upload had not finished when the mount died');
  t.true(await isMounted(m.dir), 'the dead mount is still in /proc/mounts');
  t.is(await errnoOf('readdir', m.dir), 'ENOTCONN');

  // `sreg unmount` clears a dead mount and says what the journal holds.
  const u = await m.sreg(['unmount', m.dir]);
  t.is(u.code, 0, u.stderr);
  t.regex(u.stdout, /cleared a dead mount on .*; 1 upload\(s\) it had accepted will finish at the next sreg mount/);
  t.false(await isMounted(m.dir));

  await m.emu.admin('POST', '/config', { bandwidthBytesPerSec: 0 });
  await m.remount();
  const want = dropboxHash(data);
  const outcome = await waitFor('the upload to finish, or the queue to be empty without it', async () => {
    const pending = (await statusJson(m))[0]?.uploads?.files;
    const meta = await remoteMeta(dbx, '/crash/big.simg');
    if (meta?.content_hash === want) return 'uploaded';
    return pending === 0 ? `lost (nothing pending; remote: ${meta ? meta.content_hash : 'none'})` : undefined;
  }, 60_000);
  t.is(outcome, 'uploaded', 'what close() accepted was uploaded by the next mount');
  if (outcome === 'uploaded') {
    t.is(sha256(await remoteBytes(dbx, '/crash/big.simg')), sha256(data));
    t.is(await sha256sum(target), sha256(data));
  }
});

e2eTest('sreg mount on a mount point whose process was killed clears the dead mount and mounts (also just after the folder was stat-ed)', async (t) => {
  const m = await mountFor(t);
  await ok('mkdir', [path.join(m.dir, 'here')]);
  t.deepEqual((await ok('ls', [m.dir])).trim().split('\n'), ['here']);
  // Something looked at the folder a moment before the crash: a Node fs.stat, as the
  // background `sreg mount` itself does while it waits for the mount to answer.
  t.is(await errnoOf('stat', m.dir), 'OK');
  m.child()?.kill('SIGKILL');
  await exited(m);
  t.is(await errnoOf('readdir', m.dir), 'ENOTCONN', 'dead');
  // What a user (or systemd's Restart=) does next: mount again, at once.
  const again = await m.remount().then(
    () => 'mounted',
    (e: Error) => e.message,
  );
  t.is(again, 'mounted');
  if (again !== 'mounted') return;
  t.true(await isMounted(m.dir));
  t.deepEqual((await ok('ls', [m.dir])).trim().split('\n'), ['here'], 'the new mount answers');
});

e2eTest('sreg unmount refuses while a file is open for writing and the mount stays; after close it unmounts and the file is uploaded', async (t) => {
  const m = await mountFor(t);
  const dbx = sdk(m.emu);
  await ok('mkdir', [path.join(m.dir, 'open')]);
  const file = path.join(m.dir, 'open', 'held.simg');
  const holder = spawn(process.execPath, [
    '-e',
    `const fs = require('node:fs');
     const fd = fs.openSync(process.argv[1], 'w');
     fs.writeSync(fd, Buffer.from('written, not closed\\n'));
     console.log('ready');
     process.stdin.once('data', () => { fs.writeSync(fd, Buffer.from('and closed\\n')); fs.closeSync(fd); console.log('closed'); process.exit(0); });`,
    file,
  ], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (holder.exitCode === null) holder.kill('SIGKILL');
  });
  let out = '';
  holder.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor('the holder to open the file', () => Promise.resolve(out.includes('ready') ? true : undefined), 15_000, 20);

  const r = await m.sreg(['unmount', m.dir]);
  t.not(r.code, 0, 'refused');
  t.regex(r.stderr, /open for writing/);
  t.true(await isMounted(m.dir), 'still mounted');
  t.deepEqual((await ok('ls', [path.join(m.dir, 'open')])).trim().split('\n'), ['held.simg'], 'still answering');
  t.is((await statusJson(m))[0]?.openForWriting, 1);

  const done = new Promise((resolve) => holder.once('exit', resolve));
  holder.stdin.write('close\n');
  await done;
  t.regex(out, /closed/);
  const u = await m.sreg(['unmount', m.dir]);
  t.is(u.code, 0, u.stderr);
  t.false(await isMounted(m.dir));
  const want = Buffer.from('written, not closed\nand closed\n');
  const meta = await remoteMeta(dbx, '/open/held.simg');
  t.is(meta?.content_hash, dropboxHash(want), 'uploaded before unmount returned');
});

e2eTest('sreg status shows the mount, its cache and the upload queue; sreg unmount waits for a pending upload and uploads it first', async (t) => {
  const m = await mountFor(t, SLOW);
  const dbx = sdk(m.emu);
  await ok('mkdir', [path.join(m.dir, 'slow')]);
  const data = pseudoRandom(6 * MiB, 'slow'); // one request at 1 MB/s: over 6 s
  await ok('cp', [await local('slow.simg', data), path.join(m.dir, 'slow', 'a:b.simg')]);
  const s = await pendingIs(m, 1);
  t.is(s.state, 'mounted');
  t.is(s.mountpoint, m.dir);
  t.is(s.pid, m.child()?.pid);
  t.is(s.uploads?.bytes, data.length);
  t.is(s.cache?.budgetBytes, 10 * 1024 ** 3, 'the default --cache-size 10Gi');
  const text = await m.sreg(['status']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, new RegExp(`^${m.dir.replace(/[/.]/g, '\\$&')}: mounted \\(pid ${m.child()?.pid}\\)$`, 'm'));
  t.regex(text.stdout, /^ {2}cache: \d+\.\d MB of 10737 MB; hit rate \d+\.\d% of \d+ reads; fetched \d+\.\d MB$/m);
  t.regex(text.stdout, /^ {2}uploads: 1 pending \(6\.3 MB\)$/m);
  t.is(await remoteMeta(dbx, '/slow/a:b.simg'), undefined, 'not uploaded yet when unmount starts');

  const u = await m.sreg(['unmount', m.dir], { timeoutMs: 120_000 });
  t.is(u.code, 0, u.stderr);
  t.regex(u.stdout, /unmounted /);
  t.is((await remoteMeta(dbx, '/slow/a:b.simg'))?.content_hash, dropboxHash(data), 'uploaded before unmount returned');
  t.false(await isMounted(m.dir));
  t.deepEqual(await exited(m), { code: 0, signal: null });
  t.is((await m.sreg(['status'])).stdout.trim(), 'no sreg mounts');
});

e2eTest('SIGTERM to the mount process uploads what is pending, then unmounts cleanly', async (t) => {
  const m = await mountFor(t, SLOW);
  const dbx = sdk(m.emu);
  await ok('mkdir', [path.join(m.dir, 'term')]);
  const data = pseudoRandom(4 * MiB, 'term'); // one request at 1 MB/s: over 4 s
  await ok('cp', [await local('term.simg', data), path.join(m.dir, 'term', 'x.simg')]);
  await pendingIs(m, 1);
  t.is(await remoteMeta(dbx, '/term/x.simg'), undefined, 'not uploaded yet at SIGTERM');
  m.child()?.kill('SIGTERM');
  t.deepEqual(await exited(m), { code: 0, signal: null });
  t.is((await remoteMeta(dbx, '/term/x.simg'))?.content_hash, dropboxHash(data), 'uploaded before the process exited');
  t.false(await isMounted(m.dir));
  t.regex(await m.log(), /SIGTERM: unmounting/);
  t.regex(await m.log(), /unmounted \S+ \(peak memory \d+\.\d MiB\)\n/, 'its last line says its peak memory');
});
