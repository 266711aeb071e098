/** drain(): resolves when the journal is empty, rejects (keeping it) when every job keeps failing. */
import test from 'ava';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { RemoteError } from '../../src/dropbox/errors.js';
import { UploadError, UploadQueue } from '../../src/upload/index.js';
import type { UploadStatus } from '../../src/vfs/ports.js';
import { FakeClient, rows, setup, spool } from './helpers.js';

test('drain resolves when everything is uploaded and reports progress', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  client.behavior = () => new Promise((r) => setTimeout(r, 20));
  const q = new UploadQueue({ db: env.db, spoolDir: env.spoolDir, client });
  t.teardown(() => q.stop());
  for (let i = 0; i < 5; i++) q.enqueue(`/f${i}`, await spool(env.spoolDir, `s${i}`, 'xyz'), 3);
  const progress: UploadStatus[] = [];
  await q.drain((s) => progress.push(s));
  t.like(progress[0], { files: 5, bytes: 15 });
  t.like(q.status(), { files: 0, bytes: 0 });
  t.is(client.calls.length, 5);
  await q.drain(); // nothing pending: at once
});

test('drain rejects, keeping the journal, when every pending job fails with a non-retryable error', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  client.behavior = () => {
    throw new RemoteError('insufficient_space', 'files/upload', 'Dropbox files/upload: the Dropbox account is full (path/insufficient_space)');
  };
  const q = new UploadQueue({ db: env.db, spoolDir: env.spoolDir, client, retryDelayMs: () => 3600_000 });
  t.teardown(() => q.stop());
  const a = await spool(env.spoolDir, 'a', 'aaaaa');
  const b = await spool(env.spoolDir, 'b', 'bbbbbbb');
  q.enqueue('/a', a, 5);
  q.enqueue('/b', b, 7);
  const e = await t.throwsAsync(q.drain(), { instanceOf: UploadError });
  t.is(e?.code, 'drain_failed');
  t.regex(e?.message ?? '', /^2 files \(12 bytes\) still waiting to upload/);
  t.regex(e?.message ?? '', /account is full/);
  t.deepEqual(rows(env.db).map((r) => [r.path, r.state]), [['/a', 'failed'], ['/b', 'failed']]);
  t.true(existsSync(a) && existsSync(b));
  t.is(q.status().failing.length, 2);
});

test('drain retries a failed job at once instead of waiting out its delay', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  let fail = true;
  client.behavior = () => {
    if (fail) throw new RemoteError('api', 'files/upload', 'Dropbox files/upload failed: something');
  };
  const q = new UploadQueue({ db: env.db, spoolDir: env.spoolDir, client, retryDelayMs: () => 3600_000 });
  t.teardown(() => q.stop());
  q.enqueue('/a', await spool(env.spoolDir, 'a', 'a'), 1);
  const failed = once(q, 'failed');
  q.start();
  await failed;
  fail = false;
  await q.drain();
  t.is(client.calls.length, 2);
  t.deepEqual(rows(env.db), []);
});
