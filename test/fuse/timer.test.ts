/**
 * The adapter's safety timer (src/fuse/reply.ts), with the timeout injected (a few ms) and VFS
 * calls that are held until the test lets them go: the kernel gets EIO exactly once; the work
 * is cancelled (its signal aborts); what it produces afterwards is undone (a handle from open
 * or create is discarded, so unmount is never refused for it); a read or write is answered
 * only once it no longer uses the kernel's buffer. No assertion depends on how long anything
 * took: each waits for the answer, then lets the work go.
 */
import test from 'ava';
import { VfsError } from '../../src/vfs/index.js';
import { deferred, driver, errno, TestVfs, turns } from './helpers.js';

const opts = { safetyTimeoutMs: 5 };

test('an open that returns its handle after the timer answered EIO: the handle is discarded, and the kernel got one answer', async (t) => {
  const vfs = new TestVfs();
  const late = deferred<number>();
  vfs.open = (p, flags) => {
    vfs.calls.push(['open', p, flags]);
    return late.promise;
  };
  const d = driver(vfs, opts);
  const s = d.start('open', '/a', 0o2);
  t.is((await s.first())[0], errno('EIO'));
  late.resolve(42);
  await turns();
  t.is(s.answers.length, 1, 'answered once');
  t.deepEqual(vfs.calls, [['open', '/a', 0o2], ['discard', 42]], 'the late handle was discarded, not released (nothing is journaled for it)');
  t.true(d.logs.some((l) => /^open \/a: no answer after/.test(l)));
  t.true(d.logs.some((l) => /^open \/a: finished after EIO was answered for it: undoing/.test(l)));
});

test('a create that returns after the timer: its handle is discarded too; one that fails late changes nothing', async (t) => {
  const vfs = new TestVfs();
  const late = deferred<number>();
  vfs.create = (p) => {
    vfs.calls.push(['create', p]);
    return late.promise;
  };
  const d = driver(vfs, opts);
  const s = d.start('create', '/new', 0o644);
  t.is((await s.first())[0], errno('EIO'));
  late.resolve(43);
  await turns();
  t.deepEqual(vfs.calls, [['create', '/new'], ['discard', 43]]);

  const failing = deferred<number>();
  vfs.create = () => failing.promise;
  const s2 = d.start('create', '/other', 0o644);
  t.is((await s2.first())[0], errno('EIO'));
  failing.reject(new VfsError('ENOSPC', 'disk full'));
  await turns();
  t.is(s2.answers.length, 1);
  t.deepEqual(vfs.calls, [['create', '/new'], ['discard', 43]], 'nothing to undo');
});

test('the timer cancels the work: the signal a read was given aborts, and the kernel is answered once the read has let go of its buffer', async (t) => {
  const vfs = new TestVfs();
  let given: AbortSignal | undefined;
  const finish = deferred<void>();
  let settled = false;
  vfs.read = async (_fd, _pos, _len, into, gone) => {
    given = gone;
    await new Promise<void>((resolve) => gone!.addEventListener('abort', () => resolve(), { once: true }));
    // Aborted: a write into the kernel's buffer still under way finishes first.
    await finish.promise;
    into![0] = 1;
    settled = true;
    throw new VfsError('EIO', 'answered meanwhile');
  };
  const d = driver(vfs, opts);
  const buf = Buffer.alloc(8);
  const s = d.start('read', '/a', 7, buf, 8, 0, 0);
  while (!given?.aborted) await turns(1);
  await turns();
  t.is(s.answers.length, 0, 'no answer while the read may still write into the buffer');
  finish.resolve();
  const a = await s.first();
  t.true(settled, 'answered after the read settled');
  t.is(a[0], errno('EIO'));
  await turns();
  t.is(s.answers.length, 1);
  t.true(d.logs.some((l) => /^read \/a: no answer after .*cancelled; replying EIO once it lets go of the kernel's buffer/.test(l)));
});

test('a read that succeeds after the timer fired still answers EIO (the kernel was told it would), once', async (t) => {
  const vfs = new TestVfs();
  const finish = deferred<void>();
  let gone: AbortSignal | undefined;
  vfs.read = async (_fd, _pos, _len, into, signal) => {
    gone = signal;
    await finish.promise;
    return into!.subarray(0, 0);
  };
  const d = driver(vfs, opts);
  const s = d.start('read', '/a', 7, Buffer.alloc(8), 8, 0, 0);
  while (!gone?.aborted) await turns(1);
  finish.resolve();
  t.deepEqual((await s.first())[0], errno('EIO'));
  await turns();
  t.is(s.answers.length, 1);
});

test('a write is answered only once it has let go of the kernel\'s buffer', async (t) => {
  const vfs = new TestVfs();
  const finish = deferred<number>();
  let started = false;
  vfs.write = () => {
    started = true;
    return finish.promise;
  };
  const d = driver(vfs, opts);
  const s = d.start('write', '/a', 7, Buffer.from('abc'), 3, 0, 0);
  t.true(started);
  while (!d.logs.some((l) => l.startsWith('write /a: no answer'))) await turns(1);
  t.is(s.answers.length, 0);
  finish.resolve(3);
  t.deepEqual((await s.first()).slice(0, 2), [errno('EIO'), 0]);
  await turns();
  t.is(s.answers.length, 1);
});

test('any other call that never settles: EIO once; when it does settle late, nothing more is answered and the log says so', async (t) => {
  const vfs = new TestVfs();
  const late = deferred<void>();
  vfs.unlink = () => late.promise;
  const never = new Promise<void>(() => undefined);
  vfs.mkdir = () => never;
  const d = driver(vfs, opts);
  const u = d.start('unlink', '/a');
  const m = d.start('mkdir', '/x', 0o755);
  t.deepEqual(await u.first(), [errno('EIO')]);
  t.deepEqual(await m.first(), [errno('EIO')]);
  late.resolve();
  await turns();
  t.is(u.answers.length, 1);
  t.is(m.answers.length, 1);
  t.true(d.logs.some((l) => l === 'unlink /a: finished after EIO was answered for it'));
});

test('without the timer firing, nothing is undone and nothing is logged', async (t) => {
  const d = driver(new TestVfs(), { safetyTimeoutMs: 60_000 });
  t.deepEqual(await d.call('open', '/a', 0), [0, 7]);
  t.deepEqual(await d.call('release', '/a', 7), [0]);
  t.deepEqual(d.vfs.calls.map((c) => c[0]), ['open', 'getattr', 'release']);
  t.deepEqual(d.logs, []);
});
