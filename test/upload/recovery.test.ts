/**
 * The journal survives a crash: a queue dropped without stop() (as by kill -9), one upload in
 * flight, is resumed by a new queue on the same database.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { MountStateDb } from '../../src/catalog/mount-state.js';
import { UploadQueue } from '../../src/upload/index.js';
import { FakeClient, rows, setup, spool, waitFor } from './helpers.js';

test('after a crash, a new queue resets the row left uploading and uploads everything, oldest first', async (t) => {
  const env = await setup(t);
  const hung = new FakeClient();
  hung.behavior = () => new Promise<void>(() => undefined); // never answers: the process "dies" mid-upload
  const first = new UploadQueue({ db: env.db, spoolDir: env.spoolDir, client: hung, concurrency: 1 });
  const a = await spool(env.spoolDir, 'a', 'aaa');
  const b = await spool(env.spoolDir, 'b', 'bb');
  const c = await spool(env.spoolDir, 'c', 'c');
  first.enqueue('/a', a, 3);
  first.enqueue('/b', b, 2);
  first.enqueue('/c', c, 1);
  first.start();
  await waitFor(() => hung.calls.length === 1, 'the first upload to start');
  t.deepEqual(rows(env.db).map((r) => [r.path, r.state]), [['/a', 'uploading'], ['/b', 'queued'], ['/c', 'queued']]);
  // `first` is dropped without stop(); a new process opens the database again.
  const reg = MountStateDb.open(env.dir);
  t.teardown(() => reg.close());
  const client = new FakeClient();
  const second = new UploadQueue({ db: reg.durable, spoolDir: env.spoolDir, client, concurrency: 1 });
  t.teardown(() => second.stop());
  t.is(second.pending('/a')?.state, 'uploading', 'before start the journal still says what the crash left');
  second.start();
  t.not(second.pending('/a')?.state, 'uploading', 'start reset it');
  await second.drain();
  t.deepEqual(client.calls.map((x) => [x.path, x.content]), [['/a', 'aaa'], ['/b', 'bb'], ['/c', 'c']]);
  t.deepEqual(rows(reg.durable), []);
  t.false(existsSync(a) || existsSync(b) || existsSync(c));
});

test('after a crash, of two rows of one path (the older was uploading) only the newer is uploaded', async (t) => {
  const env = await setup(t);
  const hung = new FakeClient();
  hung.behavior = () => new Promise<void>(() => undefined);
  const first = new UploadQueue({ db: env.db, spoolDir: env.spoolDir, client: hung });
  const v1 = await spool(env.spoolDir, 'v1', 'old');
  first.enqueue('/p', v1, 3);
  first.start();
  await first.whenStarted();
  await waitFor(() => hung.calls.length === 1, 'the upload to start');
  // Written after start, as a handle opened on the mount writes it.
  const v2 = await spool(env.spoolDir, 'v2', 'new');
  first.enqueue('/p', v2, 3);
  t.is(rows(env.db).length, 2);
  const client = new FakeClient();
  const second = new UploadQueue({ db: env.db, spoolDir: env.spoolDir, client });
  t.teardown(() => second.stop());
  second.start();
  await second.whenStarted();
  t.false(existsSync(v1));
  await second.drain();
  t.deepEqual(client.calls.map((x) => [x.path, x.content]), [['/p', 'new']]);
});
