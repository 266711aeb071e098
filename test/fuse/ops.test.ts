/**
 * The FUSE adapter's contract (src/fuse/ops.ts), driven through fuse-native's own JavaScript
 * layer with an in-memory VFS (helpers.ts): every registered operation reads its arguments in
 * fuse-native's order and answers in fuse-native's form, exactly once; failures become the
 * errno of vfs/errors.ts; names over 255 bytes are ENAMETOOLONG and sizes past Dropbox's
 * largest file EFBIG before the VFS is called; the unsupported operations answer their errno.
 */
import test from 'ava';
import { LocalError, RemoteError } from '../../src/dropbox/errors.js';
import { MAX_FILE_BYTES } from '../../src/fuse/index.js';
import { VfsError, type Errno } from '../../src/vfs/index.js';
import { driver, errno, TestVfs, turns } from './helpers.js';

const HI = 4294967296; // fuse-native passes 64-bit sizes and offsets as (low, high) 32-bit halves
const long = 'x'.repeat(256);

test('the operations registered are exactly these (a new one needs a test here)', (t) => {
  const { ops } = driver();
  t.deepEqual(Object.keys(ops).sort(), [
    'access', 'chmod', 'chown', 'create', 'flush', 'fsync', 'fsyncdir', 'ftruncate', 'getattr', 'getxattr', 'init', 'link', 'listxattr', 'mkdir', 'mknod',
    'open', 'read', 'readdir', 'readlink', 'release', 'removexattr', 'rename', 'rmdir', 'setxattr', 'statfs', 'symlink', 'truncate', 'unlink', 'utimens', 'write',
  ]);
  // fuse-native answers FGETATTR through ops.getattr(path) whatever is registered; left out, libfuse calls getattr.
  t.is(ops.fgetattr, undefined);
});

test('argument orders: fsync(path, datasync, fd), fsyncdir, flush, release', async (t) => {
  const d = driver();
  t.deepEqual(await d.call('fsync', '/a', 1, 9), [0]);
  t.deepEqual(await d.call('fsync', '/a', 0, 11), [0]);
  t.deepEqual(await d.call('flush', '/a', 12), [0]);
  t.deepEqual(await d.call('release', '/a', 13), [0]);
  t.deepEqual(await d.call('fsyncdir', '/d', 1, 0), [0]);
  // fsync is a flush of that handle: the bytes in the spool and the upload journal.
  t.deepEqual(d.vfs.calls, [['flush', 9], ['flush', 11], ['flush', 12], ['release', 13], ['getattr', '/d']]);
});

test('argument orders: open, create, read, write, truncate, ftruncate with 64-bit sizes', async (t) => {
  const d = driver();
  t.deepEqual(await d.call('open', '/a', 0o2), [0, 7]);
  t.deepEqual(await d.call('create', '/new', 0o644), [0, 8]);
  const buf = Buffer.alloc(16, 0);
  const r = await d.call('read', '/a', 7, buf, 16, 1, 0);
  t.is(r[0], 4, 'read answers the byte count');
  t.is(buf.subarray(0, 4).toString(), 'ello', 'into the kernel\'s buffer');
  const w = await d.call('write', '/a', 7, Buffer.from('abcdef'), 3, 5, 1);
  t.is(w[0], 3, 'write answers the byte count');
  t.deepEqual(await d.call('truncate', '/a', 3, 2), [0]);
  t.deepEqual(await d.call('ftruncate', '/a', 7, 4, 0), [0]);
  t.deepEqual(d.vfs.calls, [
    ['open', '/a', 0o2], ['getattr', '/a'],
    ['create', '/new'],
    ['read', 7, 1, 16, 16, true],
    ['write', 7, 'abc', 5 + HI],
    ['truncate', '/a', 3 + 2 * HI],
    ['ftruncate', 7, 4],
  ]);
});

test('argument orders: namespace calls, attributes and xattrs', async (t) => {
  const d = driver();
  t.deepEqual(await d.call('init'), [0]);
  t.is((await d.call('statfs', '/'))[0], 0);
  const st = await d.call('getattr', '/a');
  t.is(st[0], 0);
  t.is((st[1] as Uint32Array)[3], 5, 'the size, in fuse-native\'s stat array');
  t.is((await d.call('getattr', '/missing'))[0], errno('ENOENT'));
  t.deepEqual(await d.call('access', '/a', 4), [0]);
  t.deepEqual(await d.call('readdir', '/'), [0, ['a'], []]);
  t.deepEqual(await d.call('unlink', '/a'), [0]);
  t.deepEqual(await d.call('rename', '/a', '/b'), [0]);
  t.deepEqual(await d.call('mkdir', '/e', 0o755), [0]);
  t.deepEqual(await d.call('rmdir', '/e'), [0]);
  t.deepEqual(await d.call('chmod', '/a', 0o600), [0]);
  t.deepEqual(await d.call('chown', '/a', 1, 2), [0]);
  t.deepEqual(await d.call('utimens', '/a', 1, 0, 2, 0), [0]);
  const value = Buffer.alloc(64);
  const g = await d.call('getxattr', '/a', 'user.x', value, 0);
  t.is(g[0], 'value of user.x'.length);
  t.is(value.subarray(0, g[0] as number).toString(), 'value of user.x');
  const list = Buffer.alloc(64);
  const l = await d.call('listxattr', '/a', list);
  t.is(list.subarray(0, l[0] as number).toString(), 'user.a\0user.bb\0');
  t.is((await d.call('setxattr', '/a', 'user.sregistry.uri', Buffer.from('v'), 0, 0))[0], errno('EPERM'));
  t.deepEqual(await d.call('removexattr', '/a', 'user.sregistry.share_url'), [0]);
  t.deepEqual(d.vfs.calls.filter((c) => c[0] !== 'getattr' && c[0] !== 'statfs'), [
    ['readdir', '/'], ['unlink', '/a'], ['rename', '/a', '/b'], ['mkdir', '/e'], ['rmdir', '/e'],
    ['xattr.get', '/a', 'user.x'], ['xattr.list', '/a'], ['xattr.set', 'user.sregistry.uri'], ['xattr.remove', '/a', 'user.sregistry.share_url'],
  ]);
});

test('unsupported: link, symlink and mknod answer EPERM, readlink EINVAL; the VFS is not asked to do anything', async (t) => {
  const d = driver();
  t.deepEqual(await d.call('link', '/a', '/b'), [errno('EPERM')]);
  t.deepEqual(await d.call('symlink', '/etc/passwd', '/s'), [errno('EPERM')]);
  t.deepEqual(await d.call('mknod', '/fifo', 0o010644, 0), [errno('EPERM')]);
  t.is((await d.call('readlink', '/a'))[0], errno('EINVAL'));
  t.deepEqual(d.vfs.calls, []);
  // The link's own name is checked first, as for every path call.
  t.deepEqual(await d.call('symlink', 'target', `/${long}`), [errno('ENAMETOOLONG')]);
});

test('ENAMETOOLONG for a name over 255 bytes in any component, on every path call, before the VFS sees it', async (t) => {
  const d = driver();
  const E = errno('ENAMETOOLONG');
  const wide = 'é'.repeat(128); // 256 bytes in 128 characters
  for (const p of [`/${long}`, `/d/${long}`, `/${long}/a`, `/${wide}`]) {
    t.is((await d.call('getattr', p))[0], E, `getattr ${p.length}`);
    t.deepEqual(await d.call('access', p, 0), [E]);
    t.is((await d.call('readdir', p))[0], E);
    t.is((await d.call('open', p, 0))[0], E);
    t.is((await d.call('create', p, 0o644))[0], E);
    t.deepEqual(await d.call('truncate', p, 0, 0), [E]);
    t.deepEqual(await d.call('unlink', p), [E]);
    t.deepEqual(await d.call('mkdir', p, 0o755), [E]);
    t.deepEqual(await d.call('rmdir', p), [E]);
    t.deepEqual(await d.call('rename', '/a', p), [E]);
    t.deepEqual(await d.call('rename', p, '/a'), [E]);
    t.deepEqual(await d.call('link', '/a', p), [E]);
    t.deepEqual(await d.call('mknod', p, 0o010644, 0), [E]);
    t.deepEqual(await d.call('chmod', p, 0o600), [E]);
    t.deepEqual(await d.call('chown', p, 0, 0), [E]);
    t.deepEqual(await d.call('utimens', p, 0, 0, 0, 0), [E]);
    t.is((await d.call('getxattr', p, 'user.x', Buffer.alloc(8), 0))[0], E);
    t.is((await d.call('listxattr', p, Buffer.alloc(8)))[0], E);
    t.is((await d.call('setxattr', p, 'user.x', Buffer.from('v'), 0, 0))[0], E);
    t.deepEqual(await d.call('removexattr', p, 'user.x'), [E]);
  }
  t.deepEqual(d.vfs.calls, [], 'the VFS was never called');
  // 255 bytes is a name.
  t.is((await d.call('getattr', `/${'y'.repeat(255)}`))[0], errno('ENOENT'));
  t.is((await d.call('getattr', `/${'é'.repeat(127)}x`))[0], errno('ENOENT'));
});

test('EFBIG: truncate and ftruncate past the largest file Dropbox stores; a write at or past it; a write across it is cut short', async (t) => {
  const d = driver();
  const E = errno('EFBIG');
  const split = (n: number): [number, number] => [n % HI, Math.floor(n / HI)];
  t.deepEqual(await d.call('truncate', '/a', ...split(999999999999999)), [E]);
  t.deepEqual(await d.call('truncate', '/a', ...split(MAX_FILE_BYTES + 1)), [E]);
  t.deepEqual(await d.call('ftruncate', '/a', 7, ...split(MAX_FILE_BYTES + 1)), [E]);
  t.is((await d.call('write', '/a', 7, Buffer.from('abc'), 3, ...split(MAX_FILE_BYTES)))[0], E);
  t.is((await d.call('write', '/a', 7, Buffer.from('abc'), 3, ...split(999999999999999)))[0], E);
  t.deepEqual(d.vfs.calls, []);
  t.deepEqual(await d.call('truncate', '/a', ...split(MAX_FILE_BYTES)), [0], 'exactly the limit is allowed');
  t.is((await d.call('write', '/a', 7, Buffer.from('abc'), 3, ...split(MAX_FILE_BYTES - 2)))[0], 2, 'cut at the limit');
  t.deepEqual(d.vfs.calls, [['truncate', '/a', MAX_FILE_BYTES], ['write', 7, 'ab', MAX_FILE_BYTES - 2]]);
  t.true(d.logs.some((l) => /^truncate \/a: EFBIG/.test(l)), 'logged');
});

test('errno mapping: each failure of the VFS (thrown, rejected, from Dropbox or the local disk) becomes its errno', async (t) => {
  const vfs = new TestVfs();
  const d = driver(vfs);
  const cases: [unknown, Errno][] = [
    [new VfsError('ENOTEMPTY', 'x'), 'ENOTEMPTY'],
    [new VfsError('EXDEV', 'x'), 'EXDEV'],
    [new RemoteError('not_found', 'files/delete_v2', 'x'), 'ENOENT'],
    [new RemoteError('rate_limited', 'files/delete_v2', 'x'), 'EAGAIN'],
    [new RemoteError('insufficient_space', 'files/delete_v2', 'x'), 'ENOSPC'],
    [new RemoteError('auth', 'files/delete_v2', 'x'), 'EACCES'],
    [new LocalError('disk full', 'ENOSPC'), 'ENOSPC'],
    [new LocalError('too big', 'EFBIG'), 'EFBIG'],
    [Object.assign(new Error('raw fs error'), { code: 'EROFS' }), 'EROFS'],
    [new Error('anything else'), 'EIO'],
    ['not even an Error', 'EIO'],
  ];
  for (const [e, want] of cases) {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- a non-Error rejection is one of the cases
    vfs.unlink = () => Promise.reject(e);
    t.deepEqual(await d.call('unlink', '/a'), [errno(want)], `${String(e)} (async)`);
    vfs.rmdir = () => {
      throw e;
    };
    t.deepEqual(await d.call('rmdir', '/d'), [errno(want)], `${String(e)} (thrown)`);
  }
  t.true(d.logs.some((l) => /^unlink \/a: EIO: anything else/.test(l)), 'EIO is logged');
  t.false(d.logs.some((l) => /ENOTEMPTY/.test(l)), 'a user\'s ordinary mistake is not');
});

test('open of a file the VFS does not find answers ESTALE (the kernel opened a stale name: it looks again), other errors as they are', async (t) => {
  const vfs = new TestVfs();
  const d = driver(vfs);
  t.is((await d.call('open', '/missing', 0))[0], errno('ESTALE'));
  t.deepEqual(await d.call('open', '/a', 0), [0, 7], 'a file that is there opens');
  vfs.open = () => Promise.reject(new RemoteError('not_found', 'files/download', 'x'));
  t.is((await d.call('open', '/a', 0))[0], errno('ESTALE'), 'not found in Dropbox either');
  vfs.open = () => {
    throw new VfsError('EISDIR', 'x');
  };
  t.is((await d.call('open', '/d', 0))[0], errno('EISDIR'));
  // What only a LOOKUP answers (libfuse 2 asks getattr) stays ENOENT: the retry needs it.
  t.is((await d.call('getattr', '/missing'))[0], errno('ENOENT'));
  vfs.create = () => Promise.reject(new VfsError('ENOENT', 'no folder /d/missing'));
  t.is((await d.call('create', '/d/missing/x', 0o644))[0], errno('ENOENT'));
});

test('exactly once: every operation answers once, whether its work returns, throws or rejects', async (t) => {
  const vfs = new TestVfs();
  const d = driver(vfs);
  const signals = [
    d.start('getattr', '/a'),
    d.start('getattr', '/missing'),
    d.start('open', '/a', 0),
    d.start('open', '/missing', 0),
    d.start('read', '/a', 99, Buffer.alloc(4), 4, 0, 0), // EBADF
    d.start('unlink', '/a'),
    d.start('link', '/a', '/b'),
  ];
  vfs.readdir = () => {
    throw new VfsError('ENOTDIR', 'x');
  };
  signals.push(d.start('readdir', '/a'));
  await turns();
  for (const s of signals) t.is(s.answers.length, 1);
  t.is(signals[4]!.answers[0]!.args[0], errno('EBADF'));
  t.is(signals[7]!.answers[0]!.args[0], errno('ENOTDIR'));
});

test('getattr of a path that changed kind since the kernel was told (a folder where a file was) answers ESTALE once, then the new kind', async (t) => {
  const vfs = new TestVfs();
  const d = driver(vfs);
  t.is((await d.call('getattr', '/a'))[0], 0);
  vfs.files.delete('/a');
  vfs.folders.add('/a');
  t.is((await d.call('getattr', '/a'))[0], errno('ESTALE'));
  t.is((await d.call('getattr', '/a'))[0], 0, 'the retry sees the folder');
  t.is((await d.call('getattr', '/d'))[0], 0, 'a path seen once is as it is');
});
