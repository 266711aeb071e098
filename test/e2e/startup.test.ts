/**
 * A remount's start-up (issue 10): the mount answers from the catalog saved by the last mount
 * while its catch-up with Dropbox is held up (the emulator stalls every list_folder/continue),
 * then the catch-up's changes appear; a write made meanwhile (held until the catch-up) lands.
 */
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sdk } from '../helpers/emulator.js';
import { e2e, mountFor, remoteMeta, upload, waitFor } from './helpers.js';

const e2eTest = e2e('startup.test');

const names = async (dir: string): Promise<string[]> => (await readdir(dir).catch(() => [] as string[])).sort();

e2eTest('a remount answers from the saved catalog while its catch-up is held up; the changes made meanwhile then appear, and a write made meanwhile lands', async (t) => {
  // A stalled request fails after 3 s (then retried): the catch-up cannot finish while the fault is set.
  const m = await mountFor(t, { env: { SREGISTRY_DROPBOX_TIMEOUT: '3' } });
  const dbx = sdk(m.emu);
  const keep = path.join(m.dir, 'keep');
  await upload(dbx, '/keep/a.simg', Buffer.from('a'));
  await waitFor('a.simg listed', async () => ((await names(keep)).includes('a.simg') ? true : undefined));
  await m.unmount();

  // Changed while nothing was mounted.
  await upload(dbx, '/keep/while-away.simg', Buffer.from('w'));
  await m.emu.admin('POST', '/faults', { kind: 'stall', routes: ['files/list_folder/continue'] });
  await m.remount();
  t.deepEqual(await names(keep), ['a.simg'], 'answered from the saved catalog, before the catch-up');
  t.regex(await m.log(), /catching up with Dropbox in the background/);

  const write = writeFile(path.join(keep, 'new.simg'), 'n');
  await m.emu.admin('DELETE', '/faults');
  await write;
  await waitFor('the catch-up applied', async () => ((await names(keep)).includes('while-away.simg') ? true : undefined));
  t.deepEqual(await names(keep), ['a.simg', 'new.simg', 'while-away.simg']);
  await m.unmount();
  t.like(await remoteMeta(dbx, '/keep/new.simg'), { size: 1 });
  t.truthy(await remoteMeta(dbx, '/keep/while-away.simg'));
});
