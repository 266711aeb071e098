/**
 * Issue 8: an upload that cannot fit in the account's free space fails at once, before any
 * byte is sent (users/get_space_usage first), with insufficient_space and a message that says
 * how much is needed and free; one that fits goes through. A 3 GiB sparse file against a
 * 1 GB quota, as in the issue.
 */
import test from 'ava';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { startEmulator } from '../helpers/emulator.js';
import { client, MiB, randomFile, remoteError, stats, tempDir } from './helpers.js';

test('a 3 GiB sparse file with a 1 GB quota: fails at once with insufficient_space, nothing sent', async (t) => {
  const emu = await startEmulator(t, { args: ['--quota', '1G'] });
  const dir = await tempDir(t);
  const file = path.join(dir, 'sparse.simg');
  const fh = await open(file, 'w');
  await fh.truncate(3 * 1024 * MiB);
  await fh.close();
  const c = client(t, emu);
  const e = await remoteError(t, c.upload(file, 3 * 1024 * MiB, { path: '/rr/sparse.simg', mode: 'add' }), 'insufficient_space');
  t.regex(e.message, /not enough space in Dropbox for \/rr\/sparse\.simg: it needs 3\.22 GB, 1\.00 GB of 1\.00 GB is free \(nothing was sent\)/);
  const s = await stats(emu);
  t.is(s.requests['users/get_space_usage'], 1);
  t.is(s.requests['files/upload_session/start'], undefined, 'no session started');
  t.true(s.bytesReceived < 10_000, `received ${s.bytesReceived} bytes`);
});

test('a session-sized upload that fits the free space goes through', async (t) => {
  const emu = await startEmulator(t, { args: ['--quota', '30M'] });
  const dir = await tempDir(t);
  const file = path.join(dir, 'f.bin');
  await randomFile(file, 9 * MiB);
  const c = client(t, emu, { workers: 1 });
  const md = await c.upload(file, 9 * MiB, { path: '/f.bin', mode: 'add' });
  t.is(md.size, 9 * MiB);
  // Two more fit (28.3 MB used of 30); a fourth does not: the check counts what is used.
  await c.upload(file, 9 * MiB, { path: '/g.bin', mode: 'add' });
  await c.upload(file, 9 * MiB, { path: '/h.bin', mode: 'add' });
  const e = await remoteError(t, c.upload(file, 9 * MiB, { path: '/i.bin', mode: 'add' }), 'insufficient_space');
  t.regex(e.message, /it needs 9\.4 MB, 1\.7 MB of 30\.0 MB is free/);
});
