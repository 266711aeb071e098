/** UploadQueue over the real client and a real emulator: bytes arrive intact, a 5xx burst is survived. */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DropboxClient } from '../../src/dropbox/client.js';
import { contentHash } from '../../src/dropbox/content-hash.js';
import { UploadQueue } from '../../src/upload/index.js';
import { startEmulator } from '../helpers/emulator.js';
import { rows, setup } from './helpers.js';

const MiB = 1024 * 1024;

test('files queued on the real client reach the emulator with the right content_hash, through 5xx answers too', async (t) => {
  const emu = await startEmulator(t);
  const env = await setup(t);
  const client = new DropboxClient({ endpoint: emu.url, accessToken: emu.token, workers: 4, retry: { baseDelayMs: 20 } });
  t.teardown(() => client.close());
  const q = new UploadQueue({ db: env.db, spoolDir: env.spoolDir, client });
  t.teardown(() => q.stop());
  q.start();

  const put = async (name: string, remote: string, size: number): Promise<{ remote: string; hash: string; file: string }> => {
    const bytes = randomBytes(size);
    const file = path.join(env.spoolDir, name);
    await writeFile(file, bytes);
    q.enqueue(remote, file, size);
    return { remote, hash: contentHash(bytes), file };
  };
  const files = [
    await put('a.spool', '/lib/a:latest.simg', 1 * MiB),
    await put('b.spool', '/lib/b:latest.simg', 3 * MiB + 17),
    await put('c.spool', '/Other/C:v1.simg', 5 * MiB),
  ];
  await q.drain();

  const rule = await emu.admin<{ id: number }>('POST', '/faults', { kind: '5xx', count: 2, routes: ['files/upload'] });
  files.push(await put('d.spool', '/lib/d:latest.simg', 2 * MiB));
  await q.drain();
  const faults = await emu.admin<{ id: number; fired: number }[]>('GET', '/faults');
  t.is(faults.find((f) => f.id === rule.id)?.fired, 2, 'the 5xx answers happened');

  for (const f of files) {
    const meta = await client.getMetadata(f.remote);
    t.is(meta?.kind, 'file', f.remote);
    t.is(meta?.kind === 'file' ? meta.contentHash : undefined, f.hash, f.remote);
    t.is(meta?.pathDisplay, f.remote);
    t.false(existsSync(f.file));
  }
  t.deepEqual(rows(env.db), []);
});
