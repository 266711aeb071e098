/**
 * The safety timer end to end (issue 7, found by reading): an open for append of an image whose
 * bytes are being fetched while Dropbox stalls is answered EIO by the timer; the write handle
 * the open still makes once the fetch goes through is discarded (never registered), so
 * `sreg unmount` drains and succeeds, and Dropbox keeps the image as it was. The timer is
 * shortened with SREG_SAFETY_TIMEOUT_MS (10 minutes otherwise). The download stalls for as long
 * as the emulator's fault stands, so the timer fires first whatever the machine's speed; once
 * the fault is lifted, the stalled request fails after SREGISTRY_DROPBOX_TIMEOUT (3 s) and its
 * retry completes the open.
 */
import path from 'node:path';
import { sdk } from '../helpers/emulator.js';
import { dropboxHash, e2e, mountFor, pseudoRandom, remoteMeta, remoteNames, sh, upload, waitFor } from './helpers.js';

const e2eTest = e2e('safety-timer.test');

e2eTest('echo >> an image while its download stalls: EIO from the safety timer, the handle the open makes later is discarded, sreg unmount succeeds and Dropbox keeps the image', async (t) => {
  const m = await mountFor(t, { env: { SREGISTRY_DROPBOX_TIMEOUT: '3', SREG_SAFETY_TIMEOUT_MS: '1000' } });
  await m.emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  const dbx = sdk(m.emu);
  const data = pseudoRandom(3 * 1024 * 1024 + 5, 'safety-timer');
  await upload(dbx, '/slow/big.simg', data);
  const file = path.join(m.dir, 'slow', 'big.simg');
  await waitFor('big.simg on the mount', async () => ((await sh('stat', ['-c', '%s', file])).stdout.trim() === String(data.length) ? true : undefined), 15_000);

  await m.emu.admin('POST', '/faults', { kind: 'stall', routes: ['files/download'] });
  // sh never throws: the fault is lifted whatever the append did.
  const appended = await sh('sh', ['-c', 'echo more >> "$1"', 'sh', file], { timeoutMs: 60_000 });
  await m.emu.admin('DELETE', '/faults');
  t.not(appended.code, 0, 'the append failed');
  t.regex(appended.stderr, /Input\/output error/);
  await waitFor('the late open to be undone', async () => (/big\.simg: finished after EIO was answered for it: undoing what it did/.test(await m.log()) ? true : undefined), 60_000);
  const status = JSON.parse((await m.sreg(['status', '--json'])).stdout) as { openForWriting?: number }[];
  t.is(status[0]?.openForWriting, 0, 'no write handle outlives the call the kernel gave up on');

  await m.unmount();
  t.deepEqual(await remoteNames(dbx, '/slow'), ['big.simg']);
  t.is((await remoteMeta(dbx, '/slow/big.simg'))?.content_hash, dropboxHash(data), 'Dropbox keeps the image as it was');
});
