/**
 * Issue 8, end to end: the emulator goes down for 3 s while a file is read through a real
 * mount; the read waits (retrying) and completes with the right bytes, and meanwhile `stat`
 * and `ls` answer from the catalog. With a read deadline of 1 s an outage ends the read with
 * EIO, and the next read after recovery works. A file too big for the quota fails its upload
 * at once and `sreg status` says why.
 */
import { sdk } from '../helpers/emulator.js';
import { e2e, errnoOf, mountFor, ok, pseudoRandom, sha256, sha256sum, sh, sleep, upload, waitFor } from './helpers.js';
import path from 'node:path';

const e2eTest = e2e('outage.test');
const MiB = 1024 * 1024;

e2eTest('the emulator down 3 s while a file is read through the mount: the read completes; stat and ls never wait', async (t) => {
  const m = await mountFor(t);
  const data = pseudoRandom(12 * MiB + 5, 'outage');
  await upload(sdk(m.emu), '/rr/big.bin', data);
  const file = path.join(m.dir, 'rr', 'big.bin');
  await waitFor('the file on the mount', async () => ((await errnoOf('stat', file)) === 'OK' ? true : undefined));
  await m.emu.stop();
  const reading = sha256sum(file);
  // Down: metadata comes from the catalog, at once (these runs would time out at 10 s otherwise).
  const st = await sh('stat', ['-c', '%s', file], { timeoutMs: 10_000 });
  t.is(st.code, 0, st.stderr);
  t.is(st.stdout.trim(), String(data.length));
  const ls = await sh('ls', ['-l', path.join(m.dir, 'rr')], { timeoutMs: 10_000 });
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stdout, /big\.bin/);
  await sleep(3000);
  await m.emu.restart();
  t.is(await reading, sha256(data), 'the read rode out the outage with the right bytes');
  t.regex(await m.log(), /retry \d+ of files\/download/, 'it did retry meanwhile');
  await m.unmount();
});

e2eTest('an outage longer than SREGISTRY_READ_DEADLINE (1 s): the read fails with EIO; after recovery it works', async (t) => {
  const m = await mountFor(t, { env: { SREGISTRY_READ_DEADLINE: '1' } });
  const data = pseudoRandom(2 * MiB, 'deadline');
  await upload(sdk(m.emu), '/rr/small.bin', data);
  const file = path.join(m.dir, 'rr', 'small.bin');
  await waitFor('the file on the mount', async () => ((await errnoOf('stat', file)) === 'OK' ? true : undefined));
  await m.emu.stop();
  t.is(await errnoOf('read', file), 'EIO');
  await m.emu.restart();
  t.is(await sha256sum(file), sha256(data));
  await ok('ls', [m.dir]);
  await m.unmount();
});

e2eTest('a 3 GiB sparse file with 1 GB of quota: the upload fails at once and `sreg status` says there is not enough space', async (t) => {
  const m = await mountFor(t, { emulator: { args: ['--quota', '1G'] } });
  await ok('mkdir', [path.join(m.dir, 'rr')]);
  const file = path.join(m.dir, 'rr', 'big.simg');
  await ok('truncate', ['-s', '3G', file]);
  const line = await waitFor('status to show the failing upload', async () => {
    const r = await m.sreg(['status']);
    return /failing: .*big\.simg.*not enough space in Dropbox.*/.exec(r.stdout)?.[0];
  });
  t.regex(line, /it needs 3\.22 GB, 1\.00 GB of 1\.00 GB is free/);
  const s = await m.emu.admin<{ bytesReceived: number; requests: Record<string, number> }>('GET', '/stats');
  t.is(s.requests['files/upload_session/start'], undefined, 'no upload session was started');
  // Removing the file cancels its upload; then the mount unmounts cleanly.
  await ok('rm', [file]);
  await m.unmount();
});
