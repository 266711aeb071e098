/**
 * A write to the spool that fails for real (a 1 MiB tmpfs as the spool folder, so the disk
 * answers ENOSPC): the handle is failed, its close and fsync answer ENOSPC, nothing of it is
 * journaled or uploaded, the spool file goes at release, an earlier version stays, and the
 * path works normally afterwards. Needs root (mount); tmpfs is unmounted even on failure.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { errnoOf } from '../../src/vfs/index.js';
import { MemorySut, O_RDWR, O_TRUNC, O_WRONLY } from './memory-sut.js';

const run = promisify(execFile);

async function smallSpool(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-enospc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  // Lazily if a failed test left a spool file open: the tmpfs goes either way.
  t.teardown(() => run('umount', [dir]).catch(() => run('umount', ['-l', dir])));
  return dir;
}

const MiB = 1024 * 1024;

/** The VFS over the in-memory ports, spooling to a 1 MiB tmpfs. */
async function onSmallSpool(t: { teardown(fn: () => unknown): void }): Promise<{ spool: string; s: MemorySut; vfs: MemorySut['vfs']; ports: MemorySut['ports'] }> {
  const spool = await smallSpool(t);
  const s = new MemorySut(spool);
  return { spool, s, vfs: s.vfs, ports: s.ports };
}

test('a spool write failing with ENOSPC: close and fsync answer ENOSPC, nothing is uploaded, the spool file goes, the old version stays', async (t) => {
  const { spool, s, vfs, ports } = await onSmallSpool(t);
  ports.remote.upload('/a.simg', Buffer.from('old bytes'));
  const fd = await vfs.open('/a.simg', O_WRONLY | O_TRUNC);
  t.is(await vfs.write(fd, Buffer.alloc(64 * 1024, 1), 0), 64 * 1024);
  const err = await t.throwsAsync(vfs.write(fd, Buffer.alloc(2 * MiB, 2), 64 * 1024));
  t.is(errnoOf(err), 'ENOSPC');
  t.is(errnoOf(await t.throwsAsync(vfs.fsync(fd))), 'ENOSPC');
  t.is(errnoOf(await t.throwsAsync(vfs.write(fd, Buffer.from('x'), 0))), 'ENOSPC', 'later writes fail too');
  t.is(errnoOf(await t.throwsAsync(vfs.flush(fd))), 'ENOSPC', 'close reports the error');
  t.is(errnoOf(await t.throwsAsync(vfs.flush(fd))), 'ENOSPC', 'every close of it (dup) does');
  await vfs.release(fd);
  t.deepEqual(await readdir(spool), [], 'the spool file is removed at release');
  t.is(vfs.openCount(), 0);
  const files = await s.drain();
  t.is(files.files.get('/a.simg')?.bytes.toString(), 'old bytes');
  t.is(vfs.stateOf('/a.simg'), 'clean');
  t.is(vfs.getattr('/a.simg').size, 9);
});

test('a new file whose spool write failed is never uploaded; creating it again afterwards works', async (t) => {
  const { spool, s, vfs, ports } = await onSmallSpool(t);
  const fd = await vfs.create('/b.simg');
  t.is(errnoOf(await t.throwsAsync(vfs.write(fd, Buffer.alloc(2 * MiB, 3), 0))), 'ENOSPC');
  t.is(errnoOf(await t.throwsAsync(s.close(fd))), 'ENOSPC');
  await s.drain();
  t.false(ports.remote.snapshotFiles().has('/b.simg'));
  t.is(vfs.lookup('/b.simg'), undefined);
  t.deepEqual(await readdir(spool), []);
  const again = await vfs.create('/b.simg');
  await vfs.write(again, Buffer.from('small'), 0);
  await s.close(again);
  await s.drain();
  t.is(ports.remote.snapshotFiles().get('/b.simg')?.bytes.toString(), 'small');
});

test('an earlier journaled close stays when a later write of the same handle fails', async (t) => {
  const { spool, s, vfs, ports } = await onSmallSpool(t);
  const fd = await vfs.create('/c.simg');
  await vfs.write(fd, Buffer.from('first'), 0);
  await vfs.flush(fd); // close of one dup'd descriptor: journaled
  t.is(errnoOf(await t.throwsAsync(vfs.write(fd, Buffer.alloc(2 * MiB, 4), 5))), 'ENOSPC');
  t.is(errnoOf(await t.throwsAsync(vfs.flush(fd))), 'ENOSPC');
  await vfs.release(fd);
  await s.drain();
  t.is(ports.remote.snapshotFiles().get('/c.simg')?.bytes.toString(), 'first');
  t.deepEqual(await readdir(spool), []);
});

test('after a failed write, ftruncate answers the same error and nothing is uploaded', async (t) => {
  const { s, vfs, ports } = await onSmallSpool(t);
  const fd = await vfs.create('/d.simg');
  // tmpfs allocates on write, not truncate: the write that fills the hole is what fails.
  await vfs.ftruncate(fd, 2 * MiB);
  t.is(errnoOf(await t.throwsAsync(vfs.write(fd, Buffer.alloc(2 * MiB, 5), 0))), 'ENOSPC');
  t.is(errnoOf(await t.throwsAsync(vfs.ftruncate(fd, 0))), 'ENOSPC');
  t.is(errnoOf(await t.throwsAsync(s.close(fd))), 'ENOSPC');
  await s.drain();
  t.false(ports.remote.snapshotFiles().has('/d.simg'));
});

test('while a failed descriptor stays open, the path shows the version before it; a new open starts from that version and saves', async (t) => {
  const { spool, s, vfs, ports } = await onSmallSpool(t);
  ports.remote.upload('/e.simg', Buffer.from('old bytes'));
  const bad = await vfs.open('/e.simg', O_RDWR);
  t.is(await vfs.write(bad, Buffer.from('NEW'), 0), 3);
  t.is(vfs.getattr('/e.simg').size, 9);
  t.is(errnoOf(await t.throwsAsync(vfs.write(bad, Buffer.alloc(2 * MiB, 6), 9))), 'ENOSPC');
  // The failed spool's bytes ('NEW bytes' and part of the 2 MiB) are never journaled: the path
  // shows the version Dropbox has, and so does what a new descriptor reads and writes on.
  t.is(vfs.getattr('/e.simg').size, 9);
  t.is(vfs.stateOf('/e.simg'), 'clean');
  t.deepEqual(vfs.readdir('/'), ['e.simg']);
  t.is(errnoOf(await t.throwsAsync(vfs.read(bad, 0, 64))), 'EIO', 'what was written through it is lost, and a read says so');
  // Its spool file was emptied, so the 1 MiB disk has room again for the new open's copy.
  const good = await vfs.open('/e.simg', O_RDWR);
  t.is((await vfs.read(good, 0, 64)).toString(), 'old bytes');
  await vfs.write(good, Buffer.from('OLD'), 0);
  t.is(vfs.stateOf('/e.simg'), 'open-for-write');
  t.is(vfs.getattr('/e.simg').size, 9);
  await s.close(good);
  t.is(errnoOf(await t.throwsAsync(s.close(bad))), 'ENOSPC', 'the failed one still reports its error');
  await s.drain();
  t.is(ports.remote.snapshotFiles().get('/e.simg')?.bytes.toString(), 'OLD bytes');
  t.deepEqual(await readdir(spool), []);
});

test('truncate(2) of a path whose only writer failed makes a new revision from the version before it', async (t) => {
  const { s, vfs, ports } = await onSmallSpool(t);
  ports.remote.upload('/f.simg', Buffer.from('old bytes'));
  const bad = await vfs.open('/f.simg', O_WRONLY);
  t.is(errnoOf(await t.throwsAsync(vfs.write(bad, Buffer.alloc(2 * MiB, 7), 0))), 'ENOSPC');
  await vfs.truncate('/f.simg', 3);
  t.is(vfs.getattr('/f.simg').size, 3);
  t.is(errnoOf(await t.throwsAsync(s.close(bad))), 'ENOSPC');
  await s.drain();
  t.is(ports.remote.snapshotFiles().get('/f.simg')?.bytes.toString(), 'old');
});
