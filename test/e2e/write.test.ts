/**
 * The mount read-write, end to end (README "Semantics": create/write/close, truncate, unlink,
 * mkdir, rmdir, rename, chmod/utimes, the errno of each failure, and the user.sregistry.*
 * extended attributes), with real clients: cp, rsync, mv, rm, mkdir, rmdir, truncate, the
 * shell's >>, getfattr/setfattr, and a Node fs.promises probe for errno codes. What Dropbox
 * holds afterwards is read with the official SDK; hashes are computed here from the source bytes.
 *
 * One mount is shared by the file's serial tests; each test works in its own folder.
 */
import test from 'ava';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Dropbox } from 'dropbox';
import { buildSifs, type Sif } from '../helpers/cli.js';
import { sdk } from '../helpers/emulator.js';
import { startMount, type Mounted } from '../helpers/mount.js';
import {
  dropboxHash, e2e, errnoOf, FUSE, ok, pseudoRandom, remoteBytes, remoteMeta, remoteNames, SharedContext, sh, sha256, sha256sum, track, upload,
  waitFor, waitForRemote,
} from './helpers.js';

const e2eTest = e2e('write.test');
const MiB = 1024 * 1024;

const shared = new SharedContext();
let m: Mounted;
let dbx: Dropbox;
let workDir = '';
let tacos: Sif;

test.before(async () => {
  if (!FUSE.ok) return;
  workDir = await mkdtemp(path.join(tmpdir(), 'sreg-e2e-write-'));
  ({ tacos } = await buildSifs(workDir, { tacos: { uri: 'vsoch/hello-world:tacos' } }));
  m = track(await startMount(shared.t));
  await m.emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  dbx = sdk(m.emu);
});

test.after.always(async () => {
  await shared.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const onMount = (p: string): string => path.join(m.dir, p);

/** A local source file with these bytes. */
async function local(name: string, data: Buffer): Promise<string> {
  const f = path.join(workDir, name);
  await writeFile(f, data);
  return f;
}

/** Another machine uploads `p`; returns once the mount shows it with its size. */
async function seeded(p: string, data: Buffer): Promise<string> {
  const meta = await upload(dbx, p, data);
  await waitFor(`${p} on the mount`, async () => {
    const r = await sh('stat', ['-c', '%s', onMount(p)]);
    return r.code === 0 && r.stdout.trim() === String(data.length) ? true : undefined;
  }, 15_000);
  return meta.rev;
}

/** The value of an xattr once the mount has it (getfattr --only-values), or the failure. */
const getfattr = (name: string, file: string): ReturnType<typeof sh> => sh('getfattr', ['-n', name, '--only-values', file]);

/** Attribute names `getfattr -d` dumps. */
async function dumpedNames(file: string): Promise<string[]> {
  const out = await ok('getfattr', ['-d', '--absolute-names', file]);
  return out
    .split('\n')
    .filter((l) => /^user\./.test(l))
    .map((l) => l.slice(0, l.indexOf('=')))
    .sort();
}

e2eTest('a file is shown with its local size right after cp returns (written, not uploaded yet)', async (t) => {
  await ok('mkdir', [onMount('/fresh')]);
  const src = await local('fresh.bin', pseudoRandom(4 * MiB, 'fresh'));
  // cp then stat at once, five times: the file must never be missing in between.
  const script = 'for i in 1 2 3 4 5; do cp "$1" "$2/t$i.simg" && stat -c "%n %s" "$2/t$i.simg" || echo "MISSING t$i.simg"; done';
  const r = await sh('sh', ['-c', script, 'sh', src, onMount('/fresh')]);
  const want = [1, 2, 3, 4, 5].map((i) => `${onMount('/fresh')}/t${i}.simg ${4 * MiB}`);
  t.deepEqual(r.stdout.trim().split('\n'), want, r.stderr);
  for (let i = 1; i <= 5; i++) await waitForRemote(dbx, `/fresh/t${i}.simg`, dropboxHash(await readFile(src)));
});

e2eTest('cp into the mount: uploaded after close with the right content_hash; user.sregistry.version equals it; cp out gives the same bytes', async (t) => {
  await ok('mkdir', [onMount('/vsoch')]);
  const data = await readFile(tacos.file);
  const image = await local('image.simg', data);
  await ok('cp', [image, `${onMount('/vsoch')}/`]);
  const meta = await waitForRemote(dbx, '/vsoch/image.simg', dropboxHash(data));
  t.is(meta.size, data.length);
  t.is(sha256(await remoteBytes(dbx, '/vsoch/image.simg')), tacos.sha256, 'the bytes in Dropbox');
  const version = await waitFor('user.sregistry.version', async () => {
    const r = await getfattr('user.sregistry.version', onMount('/vsoch/image.simg'));
    return r.code === 0 ? r.stdout : undefined;
  }, 10_000);
  t.is(version, tacos.contentHash);
  t.is(version, meta.content_hash);
  const out = path.join(workDir, 'out.simg');
  await ok('cp', [onMount('/vsoch/image.simg'), out]);
  t.is(sha256(await readFile(out)), tacos.sha256, 'cp out of the mount');
  t.is((await ok('stat', ['-c', '%A %s', onMount('/vsoch/image.simg')])).trim(), `-rwxr-xr-x ${data.length}`);
});

e2eTest('rsync into the mount (temp file + rename) ends with exactly one remote file of each final name', async (t) => {
  await ok('mkdir', [onMount('/rs')]);
  const files = { 'one.simg': pseudoRandom(3 * MiB + 17, 'rsync-1'), 'two.simg': pseudoRandom(MiB, 'rsync-2'), 'three:x.simg': pseudoRandom(5000, 'rsync-3') };
  const srcDir = path.join(workDir, 'rsync-src');
  await mkdir(srcDir);
  for (const [name, data] of Object.entries(files)) await writeFile(path.join(srcDir, name), data);
  // Plain rsync: each file is written as .NAME.XXXXXX, closed, then renamed.
  const r = await sh('rsync', [...Object.keys(files).map((n) => path.join(srcDir, n)), `${onMount('/rs')}/`], { timeoutMs: 60_000 });
  t.is(r.code, 0, `rsync: ${r.stderr}`);
  for (const [name, data] of Object.entries(files)) await waitForRemote(dbx, `/rs/${name}`, dropboxHash(data));
  // Give a stray temp file every chance to land before looking.
  await waitFor('the upload queue to be empty', async () => {
    const s = await m.sreg(['status', '--json']);
    const st = JSON.parse(s.stdout) as { uploads?: { files: number } }[];
    return st[0]?.uploads?.files === 0 ? true : undefined;
  }, 15_000);
  const names = Object.keys(files).sort();
  t.deepEqual(await remoteNames(dbx, '/rs'), names, 'remote folder');
  t.deepEqual((await ok('ls', ['-A', onMount('/rs')])).trim().split('\n').sort(), names, 'mount folder');
  for (const [name, data] of Object.entries(files)) t.is(await sha256sum(onMount(`/rs/${name}`)), sha256(data), name);
});

e2eTest('cp over an existing image uploads a new revision with the new bytes', async (t) => {
  const oldData = pseudoRandom(2 * MiB, 'over-old');
  const newData = pseudoRandom(2 * MiB + 5, 'over-new');
  const oldRev = await seeded('/over/x:latest.simg', oldData);
  await ok('cp', [await local('over-new.simg', newData), onMount('/over/x:latest.simg')]);
  const meta = await waitForRemote(dbx, '/over/x:latest.simg', dropboxHash(newData));
  t.not(meta.rev, oldRev, 'a new rev');
  t.is(meta.size, newData.length);
  t.is(await sha256sum(onMount('/over/x:latest.simg')), sha256(newData));
  t.deepEqual(await remoteNames(dbx, '/over'), ['x:latest.simg']);
});

e2eTest('truncate -s 0 and truncate -s N upload the shortened file', async (t) => {
  const data = pseudoRandom(MiB + 1, 'trunc');
  await seeded('/trunc/zero.bin', data);
  await seeded('/trunc/part.bin', data);
  await ok('truncate', ['-s', '0', onMount('/trunc/zero.bin')]);
  await ok('truncate', ['-s', '1000', onMount('/trunc/part.bin')]);
  t.is((await ok('stat', ['-c', '%s', onMount('/trunc/zero.bin')])).trim(), '0');
  const zero = await waitForRemote(dbx, '/trunc/zero.bin', dropboxHash(Buffer.alloc(0)));
  t.is(zero.size, 0);
  const part = await waitForRemote(dbx, '/trunc/part.bin', dropboxHash(data.subarray(0, 1000)));
  t.is(part.size, 1000);
  t.true((await remoteBytes(dbx, '/trunc/part.bin')).equals(data.subarray(0, 1000)));
});

e2eTest('echo hi >> an existing remote file: Dropbox then holds the old bytes and the new ones', async (t) => {
  const old = pseudoRandom(5 * MiB + 3, 'append'); // more than one 4 MiB block
  await seeded('/app/log.txt', old);
  const r = await sh('sh', ['-c', 'echo hi >> "$1"', 'sh', onMount('/app/log.txt')]);
  t.is(r.code, 0, r.stderr);
  const want = Buffer.concat([old, Buffer.from('hi\n')]);
  await waitForRemote(dbx, '/app/log.txt', dropboxHash(want));
  t.true((await remoteBytes(dbx, '/app/log.txt')).equals(want), 'remote bytes = old + "hi\\n"');
  t.is((await ok('stat', ['-c', '%s', onMount('/app/log.txt')])).trim(), String(want.length));
  t.is((await ok('stat', ['-c', '%A', onMount('/app/log.txt')])).trim(), '-rw-r--r--', 'not an image: no exec bit');
});

e2eTest('mkdir creates the folder in Dropbox; rmdir of an empty folder deletes it; rmdir of a non-empty one is ENOTEMPTY', async (t) => {
  await ok('mkdir', [onMount('/newcol')]);
  t.is((await remoteMeta(dbx, '/newcol'))?.['.tag'], 'folder', 'created remotely when mkdir returns');
  t.is((await ok('stat', ['-c', '%A', onMount('/newcol')])).trim(), 'drwxr-xr-x');
  await ok('rmdir', [onMount('/newcol')]);
  t.is(await remoteMeta(dbx, '/newcol'), undefined, 'deleted remotely when rmdir returns');
  t.is(await errnoOf('stat', onMount('/newcol')), 'ENOENT');

  await seeded('/full/a:b.simg', pseudoRandom(1000, 'full'));
  const r = await sh('rmdir', [onMount('/full')]);
  t.not(r.code, 0);
  t.regex(r.stderr, /Directory not empty/);
  t.is(await errnoOf('rmdir', onMount('/full')), 'ENOTEMPTY');
  t.is((await remoteMeta(dbx, '/full'))?.['.tag'], 'folder', 'still there');
  t.deepEqual(await remoteNames(dbx, '/full'), ['a:b.simg']);
  t.is(await errnoOf('rmdir', onMount('/full/a:b.simg')), 'ENOTDIR', 'rmdir of a file');
});

e2eTest('rm deletes the file in Dropbox; rm of a missing file is ENOENT', async (t) => {
  await seeded('/del/x:1.simg', pseudoRandom(2000, 'del'));
  await seeded('/del/keep.simg', pseudoRandom(2000, 'keep'));
  await ok('rm', [onMount('/del/x:1.simg')]);
  t.is(await remoteMeta(dbx, '/del/x:1.simg'), undefined, 'deleted remotely when rm returns');
  t.deepEqual(await remoteNames(dbx, '/del'), ['keep.simg']);
  t.deepEqual((await ok('ls', [onMount('/del')])).trim().split('\n'), ['keep.simg']);
  t.is(await errnoOf('unlink', onMount('/del/x:1.simg')), 'ENOENT');
  t.is(await errnoOf('unlink', onMount('/del')), 'EISDIR', 'unlink of a folder');
});

e2eTest('mv a:red.simg a:blue.simg retags: Dropbox has only the new name, with the same content_hash', async (t) => {
  const data = pseudoRandom(MiB + 7, 'retag');
  await seeded('/mvcol/a:red.simg', data);
  await ok('mv', [onMount('/mvcol/a:red.simg'), onMount('/mvcol/a:blue.simg')]);
  t.deepEqual(await remoteNames(dbx, '/mvcol'), ['a:blue.simg'], 'remote names when mv returns');
  t.is((await remoteMeta(dbx, '/mvcol/a:blue.simg'))?.content_hash, dropboxHash(data));
  t.deepEqual((await ok('ls', [onMount('/mvcol')])).trim().split('\n'), ['a:blue.simg']);
  t.is(await sha256sum(onMount('/mvcol/a:blue.simg')), sha256(data));
  const uri = await waitFor('uri of the new name', async () => {
    const r = await getfattr('user.sregistry.uri', onMount('/mvcol/a:blue.simg'));
    return r.code === 0 ? r.stdout : undefined;
  }, 10_000);
  t.is(uri, 'mvcol/a:blue');
});

e2eTest('mv onto an existing file replaces it', async (t) => {
  const a = pseudoRandom(300_000, 'mv-a');
  const b = pseudoRandom(200_000, 'mv-b');
  await seeded('/mvover/x.simg', a);
  await seeded('/mvover/y.simg', b);
  await ok('mv', [onMount('/mvover/x.simg'), onMount('/mvover/y.simg')]);
  t.deepEqual(await remoteNames(dbx, '/mvover'), ['y.simg']);
  t.is((await remoteMeta(dbx, '/mvover/y.simg'))?.content_hash, dropboxHash(a));
  t.deepEqual((await ok('ls', [onMount('/mvover')])).trim().split('\n'), ['y.simg']);
  t.is(await sha256sum(onMount('/mvover/y.simg')), sha256(a));
  t.is(await errnoOf('rename', onMount('/mvover/nope.simg'), onMount('/mvover/z.simg')), 'ENOENT', 'source missing');
});

e2eTest('errnos: mkdir of an existing name EEXIST, desktop.ini EINVAL, a missing path ENOENT, a file used as a folder ENOTDIR', async (t) => {
  await seeded('/errs/file.simg', pseudoRandom(100, 'errs'));
  const mk = await sh('mkdir', [onMount('/errs')]);
  t.not(mk.code, 0);
  t.regex(mk.stderr, /File exists/);
  t.is(await errnoOf('mkdir', onMount('/errs')), 'EEXIST');
  t.is(await errnoOf('mkdir', onMount('/errs/file.simg')), 'EEXIST', 'mkdir over a file');

  const touch = await sh('touch', [onMount('/errs/desktop.ini')]);
  t.not(touch.code, 0);
  t.regex(touch.stderr, /Invalid argument/);
  t.is(await errnoOf('create', onMount('/errs/desktop.ini')), 'EINVAL');
  t.is(await errnoOf('create', onMount('/errs/Thumbs.db')), 'EINVAL');
  t.is(await errnoOf('create', onMount('/errs/trailing ')), 'EINVAL');
  t.is(await errnoOf('create', onMount(`/errs/${'x'.repeat(256)}`)), 'ENAMETOOLONG');

  const st = await sh('stat', [onMount('/errs/missing.simg')]);
  t.not(st.code, 0);
  t.regex(st.stderr, /No such file or directory/);
  t.is(await errnoOf('stat', onMount('/errs/missing.simg')), 'ENOENT');
  t.is(await errnoOf('create', onMount('/nocol/x.simg')), 'ENOENT', 'parent missing');

  t.is(await errnoOf('create', onMount('/errs/file.simg/x.simg')), 'ENOTDIR', 'create in a file');
  t.is(await errnoOf('read', onMount('/errs/file.simg/x.simg')), 'ENOTDIR', 'open in a file');
  t.is(await errnoOf('stat', onMount('/errs/file.simg/x.simg')), 'ENOTDIR', 'stat in a file');
  t.is(await errnoOf('readdir', onMount('/errs/file.simg')), 'ENOTDIR', 'readdir of a file');
  const cat = await sh('cat', [onMount('/errs/file.simg/x')]);
  t.regex(cat.stderr, /Not a directory/);
  // None of that reached Dropbox.
  t.deepEqual(await remoteNames(dbx, '/errs'), ['file.simg']);
});

e2eTest('chmod, chown and touch are accepted and not stored', async (t) => {
  const data = pseudoRandom(1000, 'modes');
  await seeded('/modes/a.simg', data);
  const f = onMount('/modes/a.simg');
  t.is((await sh('chmod', ['600', f])).code, 0);
  t.is((await sh('chown', ['1:1', f])).code, 0);
  t.is((await sh('touch', ['-d', '2001-01-01', f])).code, 0);
  t.is((await ok('stat', ['-c', '%A %U', f])).trim(), '-rwxr-xr-x root');
  const cp = await sh('cp', ['-p', await local('modes.simg', data), onMount('/modes/b.simg')]);
  t.is(cp.code, 0, `cp -p: ${cp.stderr}`);
  await waitForRemote(dbx, '/modes/b.simg', dropboxHash(data));
  t.is(await errnoOf('stat', onMount('/modes/missing')), 'ENOENT');
});

e2eTest('xattrs: getfattr -d never creates a link; reading share_url does (once); setfattr -x revokes it; the others are read-only', async (t) => {
  const data = pseudoRandom(50_000, 'xattr');
  await seeded('/xa/img:v1.simg', data);
  const f = onMount('/xa/img:v1.simg');
  const links = async (): Promise<string[]> => (await dbx.sharingListSharedLinks({})).result.links.map((l) => l.url);

  t.deepEqual(await dumpedNames(f), ['user.sregistry.content_hash', 'user.sregistry.inspect', 'user.sregistry.uri', 'user.sregistry.version']);
  t.deepEqual(await links(), [], 'getfattr -d made no shared link');
  t.is((await getfattr('user.sregistry.uri', f)).stdout, 'xa/img:v1');
  t.is((await getfattr('user.sregistry.content_hash', f)).stdout, dropboxHash(data));
  t.is((await getfattr('user.sregistry.version', f)).stdout, dropboxHash(data));
  const inspect = JSON.parse((await getfattr('user.sregistry.inspect', f)).stdout) as { uri?: string; version?: string };
  t.is(inspect.uri, 'xa/img:v1');
  t.is(inspect.version, dropboxHash(data));

  const first = await getfattr('user.sregistry.share_url', f);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /^https:\/\/\S+$/);
  t.deepEqual(await links(), [first.stdout], 'reading share_url created exactly that link');
  const second = await getfattr('user.sregistry.share_url', f);
  t.is(second.stdout, first.stdout, 'the same URL again');
  t.deepEqual(await links(), [first.stdout], 'still one link');
  t.deepEqual(await dumpedNames(f), ['user.sregistry.content_hash', 'user.sregistry.inspect', 'user.sregistry.share_url', 'user.sregistry.uri', 'user.sregistry.version']);

  t.is((await sh('setfattr', ['-x', 'user.sregistry.share_url', f])).code, 0);
  t.deepEqual(await links(), [], 'revoked');
  t.false((await dumpedNames(f)).includes('user.sregistry.share_url'));
  const again = await sh('setfattr', ['-x', 'user.sregistry.share_url', f]);
  t.regex(again.stderr, /No such attribute/, 'no link left: ENODATA');

  const set = await sh('setfattr', ['-n', 'user.sregistry.uri', '-v', 'x', f]);
  t.not(set.code, 0);
  t.regex(set.stderr, /Operation not permitted/);
  const rmUri = await sh('setfattr', ['-x', 'user.sregistry.version', f]);
  t.regex(rmUri.stderr, /Operation not permitted/);
  const other = await sh('setfattr', ['-n', 'user.other', '-v', '1', f]);
  t.regex(other.stderr, /Operation not supported/);
  t.is((await getfattr('user.sregistry.uri', f)).stdout, 'xa/img:v1', 'unchanged');

  // Not an image: no uri, no inspect; a missing attribute is ENODATA.
  await seeded('/xa/notes.txt', Buffer.from('notes\n'));
  const noUri = await getfattr('user.sregistry.uri', onMount('/xa/notes.txt'));
  t.regex(noUri.stderr, /No such attribute/);
  t.is((await getfattr('user.sregistry.content_hash', onMount('/xa/notes.txt'))).stdout, dropboxHash(Buffer.from('notes\n')));
  t.regex((await getfattr('user.sregistry.nope', f)).stderr, /No such attribute/);
  // Outside user.*: no SELinux labels or ACLs here. ENOTSUP, so that `ls -l` stops asking.
  t.regex((await getfattr('security.selinux', f)).stderr, /Operation not supported/);
  t.regex((await getfattr('system.posix_acl_access', onMount('/xa'))).stderr, /Operation not supported/);
  await seeded('/xa/more.txt', Buffer.from('more\n'));
  const lsTrace = await sh('strace', ['-e', 'trace=getxattr,lgetxattr', 'ls', '-l', onMount('/xa')]);
  t.is(lsTrace.code, 0, lsTrace.stderr);
  const asked = lsTrace.stderr.split('\n').filter((l) => /getxattr\(/.test(l));
  t.true(asked.length > 0 && asked.length <= 2, `ls -l of 3 files asked for labels/ACLs ${asked.length} times: after ENOTSUP it stops\n${asked.join('\n')}`);
  t.deepEqual(await links(), [], 'no link made by any of that');
});

e2eTest('a file changed in Dropbox while it was open for writing here: both are kept, ours as a conflicted copy, and the log says so', async (t) => {
  await ok('mkdir', [onMount('/conflict')]);
  await seeded('/conflict/x.txt', Buffer.from('one\n'));
  const ours = Buffer.from('ours, written on the mount\n');
  const theirs = Buffer.from('theirs, from another machine\n');
  // Opened (without truncation) from the revision the mount knows; another machine uploads; then close.
  const fh = await open(onMount('/conflict/x.txt'), 'r+');
  try {
    await fh.write(ours, 0, ours.length, 0);
    await upload(dbx, '/conflict/x.txt', theirs);
  } finally {
    await fh.close();
  }
  const copy = await waitFor('the conflicted copy in Dropbox', async () => (await remoteNames(dbx, '/conflict')).find((n) => n.includes('conflicted copy')));
  t.is(copy, 'x (conflicted copy).txt');
  t.deepEqual(await remoteBytes(dbx, '/conflict/x.txt'), theirs, 'the other machine\'s version stays');
  t.deepEqual(await remoteBytes(dbx, `/conflict/${copy}`), ours);
  // Dropbox has the copy a moment before the mount has its answer and logs it.
  const said = /\/conflict\/x\.txt was changed in Dropbox since it was opened \(rev \w+\): both are kept, ours as \/conflict\/x \(conflicted copy\)\.txt/;
  t.regex(await waitFor('the log line', async () => ((await m.log()).match(said) ? m.log() : undefined)), said);
});
