/**
 * Descriptors open for writing on one file share its bytes (src/vfs/nodes.ts, Spool), as
 * POSIX has it and as the kernel assumes (one size and one page cache per file): what one
 * writes the others read, an O_TRUNC open empties it for all of them, a close journals what
 * all of them wrote, and a write after that close goes on in a copy for every one of them.
 * Before, each descriptor had its own copy: two processes appending to one log kept only one
 * of them, with zeros where the other's lines were (the kernel places O_APPEND writes at its
 * one size).
 */
import test from 'ava';
import { readdir } from 'node:fs/promises';
import { memorySut, O_TRUNC, O_WRONLY, type MemorySut } from './memory-sut.js';

const sut = memorySut;

const text = (b: Buffer | undefined): string | undefined => b?.toString();

/** Closes `fds` in turn, uploads everything, and gives what Dropbox then holds at `p`. */
async function landed(s: MemorySut, p: string, ...fds: number[]): Promise<Buffer | undefined> {
  for (const fd of fds) await s.close(fd);
  await s.drain();
  return s.ports.remote.snapshotFiles().get(p)?.bytes;
}

test('two appenders on one file (the kernel places each write at the file size): every line lands, in order, no zeros', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  ports.remote.upload('/log', Buffer.from('orig\n'));
  const a = await vfs.open('/log', O_WRONLY);
  const b = await vfs.open('/log', O_WRONLY);
  let size = vfs.getattr('/log').size;
  for (const [fd, line] of [[a, 'A1\n'], [b, 'B1\n'], [a, 'A2\n']] as const) {
    await vfs.write(fd, Buffer.from(line), size);
    size = vfs.fgetattr(fd).size;
  }
  t.is(text(await vfs.read(b, 0, 100)), 'orig\nA1\nB1\nA2\n', 'each reads what the other wrote');
  await s.close(a);
  await vfs.write(b, Buffer.from('B2\n'), vfs.fgetattr(b).size);
  t.is(text(await vfs.read(b, 0, 100)), 'orig\nA1\nB1\nA2\nB2\n');
  t.is(text(await landed(s, '/log', b)), 'orig\nA1\nB1\nA2\nB2\n');
});

test('an O_TRUNC open of a file open for writing elsewhere empties it for both; the other writes on into the same file', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  ports.remote.upload('/f', Buffer.from('0123456789'));
  const a = await vfs.open('/f', O_WRONLY);
  await vfs.write(a, Buffer.from('ab'), 0);
  const b = await vfs.open('/f', O_WRONLY | O_TRUNC);
  t.is(vfs.fgetattr(a).size, 0, 'the first descriptor sees the truncation');
  t.is(text(await vfs.read(a, 0, 10)), '');
  await vfs.write(a, Buffer.from('new'), 0);
  t.is(text(await vfs.read(b, 0, 10)), 'new');
  t.is(text(await landed(s, '/f', b, a)), 'new');
});

test('a close journals the shared bytes; a write through the other descriptor after it goes to a copy (the journaled file never changes) and its close journals again', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  const a = await vfs.create('/f');
  await vfs.write(a, Buffer.from('one'), 0);
  const b = await vfs.open('/f', O_WRONLY);
  await vfs.flush(a);
  const journaled = ports.uploads.pending('/f');
  t.truthy(journaled, 'the close journaled the file');
  await vfs.write(b, Buffer.from('-two'), 3);
  t.is(text(await vfs.read(a, 0, 10)), 'one-two', 'the descriptor still open after its close reads the copy too');
  await vfs.release(a);
  t.is(text(await landed(s, '/f', b)), 'one-two');
  t.deepEqual(await readdir(s.spoolDir), [], 'no spool file is left behind');
});

test('a writer opened while the others are open sees their bytes without a copy; the last release closes the spool file, and a close with nothing written journals nothing', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  const a = await vfs.create('/f');
  await vfs.write(a, Buffer.from('abc'), 0);
  const b = await vfs.open('/f', O_WRONLY);
  t.is(text(await vfs.read(b, 0, 10)), 'abc');
  t.is((await readdir(s.spoolDir)).length, 1, 'one spool file for both');
  await vfs.flush(a);
  await vfs.flush(a);
  t.is(ports.uploads.pending('/f')?.size, 3);
  await vfs.release(a);
  t.is(text(await landed(s, '/f', b)), 'abc');
  t.is(vfs.openCount(), 0);
});

test('a close while another descriptor has writes in flight waits for them: it journals settled bytes only, and every byte lands', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  const a = await vfs.create('/f');
  const b = await vfs.open('/f', O_WRONLY);
  const block = (i: number): Buffer => Buffer.alloc(4096, i);
  const writes = Array.from({ length: 64 }, (_, i) => vfs.write(b, block(i), i * 4096));
  const closed = vfs.flush(a);
  await Promise.all([...writes, closed]);
  t.is(ports.uploads.pending('/f')?.size, 64 * 4096, 'the close journaled the file once no write was in flight');
  await vfs.write(b, Buffer.from('end'), 64 * 4096);
  await vfs.release(a);
  const want = Buffer.concat([...Array.from({ length: 64 }, (_, i) => block(i)), Buffer.from('end')]);
  t.true((await landed(s, '/f', b))?.equals(want), 'Dropbox holds every write');
  t.deepEqual(await readdir(s.spoolDir), [], 'no spool file is left behind');
});

test('two opens of one file at once (both copying its bytes) end on one spool: each sees the other\'s writes', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  ports.remote.upload('/f', Buffer.from('0123456789'));
  const [a, b] = await Promise.all([vfs.open('/f', O_WRONLY), vfs.open('/f', O_WRONLY)]);
  await vfs.write(a, Buffer.from('A'), 0);
  await vfs.write(b, Buffer.from('B'), 1);
  t.is(text(await vfs.read(a, 0, 10)), 'AB23456789');
  t.is(text(await vfs.read(b, 0, 10)), 'AB23456789');
  t.is((await readdir(s.spoolDir)).length, 1, 'the loser of the race dropped its copy');
  t.is(text(await landed(s, '/f', a, b)), 'AB23456789');
});
