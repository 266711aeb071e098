/**
 * UploadQueue with a fake client: the journal's life cycle, supersede, the concurrency rules,
 * retries, rename and delete of pending files, status and stop.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RemoteError } from '../../src/dropbox/errors.js';
import { SINGLE_REQUEST_MAX_BYTES } from '../../src/dropbox/upload.js';
import type { FileMeta } from '../../src/dropbox/client.js';
import { defaultRetryDelayMs, UploadError, UploadQueue, type UploadQueueOptions } from '../../src/upload/index.js';
import type { PendingUpload } from '../../src/vfs/ports.js';
import { FakeClient, Gate, rows, setup, spool, ticks, waitFor, type Env } from './helpers.js';

function queue(t: import('ava').ExecutionContext, env: Env, client: FakeClient, o: Partial<UploadQueueOptions> = {}): UploadQueue {
  const q = new UploadQueue({ db: env.db, spoolDir: env.spoolDir, client, ...o });
  t.teardown(() => q.stop());
  return q;
}

function record(q: UploadQueue): { uploaded: [PendingUpload, FileMeta][]; failed: [PendingUpload, Error][]; stray: PendingUpload[] } {
  const seen = { uploaded: [] as [PendingUpload, FileMeta][], failed: [] as [PendingUpload, Error][], stray: [] as PendingUpload[] };
  q.on('uploaded', (j: PendingUpload, m: FileMeta) => seen.uploaded.push([j, m]));
  q.on('failed', (j: PendingUpload, e: Error) => seen.failed.push([j, e]));
  q.on('stray', (j: PendingUpload) => seen.stray.push(j));
  return seen;
}

test('enqueue records the row at once; the worker uploads with overwrite, awaits afterUpload, then deletes row and spool', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const during: { row: boolean; spool: boolean }[] = [];
  const q = queue(t, env, client, {
    afterUpload: async (job) => {
      await new Promise((r) => setTimeout(r, 30));
      during.push({ row: q.pending(job.pathLower) !== undefined, spool: existsSync(job.spoolFile) });
    },
  });
  const f = await spool(env.spoolDir, 'a.spool', 'hello');
  const job = q.enqueue('/Col/A.simg', f, 5);
  t.like(job, { path: '/Col/A.simg', pathLower: '/col/a.simg', spoolFile: f, size: 5, state: 'queued', attempts: 0 });
  t.like(rows(env.db)[0], { path: '/Col/A.simg', path_lower: '/col/a.simg', parent_lower: '/col', spool: f, size: 5, state: 'queued' });
  t.is(q.pending('/col/a.simg')?.id, job.id);
  t.deepEqual(q.pendingChildren('/col').map((p) => p.path), ['/Col/A.simg']);
  t.deepEqual(q.pendingChildren(''), []);
  t.like(q.status(), { files: 1, bytes: 5, uploadedBytesInFlight: 0, failing: [] });

  const uploaded = once(q, 'uploaded') as Promise<[PendingUpload, FileMeta]>;
  q.start();
  const [ujob, meta] = await uploaded;
  t.is(ujob.id, job.id);
  t.is(meta.pathDisplay, '/Col/A.simg');
  t.deepEqual(during, [{ row: true, spool: true }], 'afterUpload ran before the row and the spool went');
  t.deepEqual(client.calls.map((c) => [c.path, c.mode, c.size, c.content]), [['/Col/A.simg', 'overwrite', 5, 'hello']]);
  t.is(q.pending('/col/a.simg'), undefined);
  t.deepEqual(rows(env.db), []);
  await waitFor(() => !existsSync(f), 'the spool file to go (right after the event)');
});

test('enqueue refuses a spool file outside the spool folder and a path that is not a file path', async (t) => {
  const env = await setup(t);
  const q = queue(t, env, new FakeClient());
  const outside = path.join(env.dir, 'elsewhere');
  await writeFile(outside, 'x');
  const f = await spool(env.spoolDir, 'ok', 'x');
  t.is(t.throws(() => q.enqueue('/a', outside, 1), { instanceOf: UploadError })?.code, 'bad_spool');
  t.is(t.throws(() => q.enqueue('/a', path.join(env.spoolDir, '..', 'elsewhere'), 1), { instanceOf: UploadError })?.code, 'bad_spool');
  t.is(t.throws(() => q.enqueue('a', f, 1), { instanceOf: UploadError })?.code, 'bad_path');
  t.is(t.throws(() => q.enqueue('/a/', f, 1), { instanceOf: UploadError })?.code, 'bad_path');
  t.deepEqual(rows(env.db), []);
});

test('a newer enqueue of a path supersedes its queued row (row and spool file go); only the newest is uploaded', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const q = queue(t, env, client);
  const v1 = await spool(env.spoolDir, 'v1', 'one');
  const v2 = await spool(env.spoolDir, 'v2', 'two!');
  const j1 = q.enqueue('/x/f', v1, 3);
  const j2 = q.enqueue('/X/F', v2, 4);
  t.deepEqual(rows(env.db).map((r) => r.id), [j2.id]);
  t.is(q.pending('/x/f')?.id, j2.id);
  t.not(j1.id, j2.id);
  await waitFor(() => !existsSync(v1), 'the superseded spool file to go');
  q.start();
  await q.drain();
  t.deepEqual(client.calls.map((c) => [c.path, c.content]), [['/X/F', 'two!']]);
  t.false(existsSync(v2));
});

test('a newer enqueue while the path is uploading waits: the first finishes, then the newer one uploads (never both at once)', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const gate = new Gate();
  client.behavior = gate.behavior;
  const q = queue(t, env, client, { concurrency: 4 });
  q.start();
  const j1 = q.enqueue('/p', await spool(env.spoolDir, 'v1', 'old'), 3);
  await waitFor(() => client.calls.length === 1, 'the first upload');
  const j2 = q.enqueue('/p', await spool(env.spoolDir, 'v2', 'new'), 3);
  q.enqueue('/other', await spool(env.spoolDir, 'o', 'o'), 1);
  await waitFor(() => client.calls.length === 2, 'the other path to start');
  await ticks();
  t.deepEqual(client.calls.map((c) => c.path), ['/p', '/other'], 'the newer /p waits although slots are free');
  t.deepEqual(rows(env.db).map((r) => [r.id, r.state]), [[j1.id, 'uploading'], [j2.id, 'queued'], [j2.id + 1, 'uploading']]);
  t.is(q.pending('/p')?.id, j2.id, 'the mount shows the newest');
  gate.releaseAll();
  await q.drain();
  t.deepEqual(client.calls.filter((c) => c.path === '/p').map((c) => c.content), ['old', 'new']);
  t.is(client.samePathOverlaps, 0);
});

test('at most `concurrency` uploads run at once, oldest first', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const gate = new Gate();
  client.behavior = gate.behavior;
  const q = queue(t, env, client, { concurrency: 2 });
  for (let i = 0; i < 6; i++) q.enqueue(`/f${i}`, await spool(env.spoolDir, `s${i}`, `c${i}`), 2);
  q.start();
  await waitFor(() => gate.heldCount === 2, 'two uploads');
  await ticks();
  t.is(client.calls.length, 2);
  t.deepEqual(client.calls.map((c) => c.path), ['/f0', '/f1']);
  gate.release('/f1');
  await waitFor(() => client.calls.length === 3, 'a third upload after one ended');
  t.is(client.calls[2]?.path, '/f2');
  gate.releaseAll();
  await q.drain();
  t.is(client.maxRunning, 2);
  t.deepEqual(client.calls.map((c) => c.path), ['/f0', '/f1', '/f2', '/f3', '/f4', '/f5']);
});

test('a failed attempt is recorded (no token in it) and retried after retryDelayMs; other jobs go on meanwhile', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  let failuresLeft = 2;
  client.behavior = (c) => {
    if (c.path === '/bad' && failuresLeft-- > 0) throw new Error('HTTP 400 for Authorization: Bearer sekrit-token-value');
  };
  const delays: number[] = [];
  const q = queue(t, env, client, { retryDelayMs: (n) => (delays.push(n), 150) });
  const seen = record(q);
  q.enqueue('/bad', await spool(env.spoolDir, 'b', 'bad'), 3);
  q.enqueue('/good', await spool(env.spoolDir, 'g', 'good'), 4);
  q.start();
  await waitFor(() => seen.failed.length >= 1, 'the first failure');
  const row = rows(env.db).find((r) => r.path === '/bad');
  t.like(row, { state: 'failed', attempts: 1 });
  t.false(row?.last_error?.includes('sekrit') ?? true, row?.last_error ?? '');
  t.true(row?.last_error?.includes('HTTP 400') ?? false);
  await waitFor(() => seen.uploaded.length === 2, 'both uploaded');
  t.deepEqual(seen.uploaded.map(([j]) => j.path), ['/good', '/bad'], 'the good one did not wait for the failing one');
  t.deepEqual(delays, [1, 2]);
  t.deepEqual(seen.failed.map(([j]) => [j.state, j.attempts]), [['failed', 1], ['failed', 2]]);
  const bad = client.calls.filter((c) => c.path === '/bad');
  t.is(bad.length, 3);
  for (let i = 1; i < bad.length; i++) t.true(bad[i]!.startedAtMs - bad[i - 1]!.startedAtMs >= 140, 'waited its delay');
  t.like(q.status(), { files: 0, failing: [] });
});

test('status: failing jobs and bytes sent so far by uploads in flight', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const gate = new Gate();
  let reported = false; // the fake client records a call before it reads the file and reports bytes
  client.behavior = (c) => {
    if (c.path === '/no') throw new RemoteError('insufficient_space', 'files/upload', 'the Dropbox account is full');
    c.onBytes?.(3);
    reported = true;
    return gate.behavior(c);
  };
  const q = queue(t, env, client, { retryDelayMs: () => 60_000 });
  const seen = record(q);
  q.enqueue('/no', await spool(env.spoolDir, 'n', 'nn'), 2);
  q.enqueue('/yes', await spool(env.spoolDir, 'y', 'yyyyy'), 5);
  q.start();
  await waitFor(() => seen.failed.length === 1 && reported, 'one failure, one upload in flight that sent 3 bytes');
  t.deepEqual(q.status(), { files: 2, bytes: 7, uploadedBytesInFlight: 3, failing: [{ path: '/no', error: 'the Dropbox account is full' }] });
  t.is((seen.failed[0]![1] as RemoteError).code, 'insufficient_space');
  gate.releaseAll();
  await waitFor(() => seen.uploaded.length === 1, 'the upload');
  t.like(q.status(), { files: 1, bytes: 2, uploadedBytesInFlight: 0 });
});

test('retarget of a queued upload: renamed in the journal, supersedes what was queued at the destination', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const q = queue(t, env, client);
  const tmp = await spool(env.spoolDir, 'tmp', 'fresh');
  const old = await spool(env.spoolDir, 'old', 'stale');
  q.enqueue('/d/a', old, 5);
  q.enqueue('/d/.a.XyZ12', tmp, 5);
  t.false(q.retarget('/d/nothing', '/d/b'));
  t.true(q.retarget('/d/.a.xyz12', '/d/A'));
  t.is(q.pending('/d/.a.xyz12'), undefined);
  t.like(q.pending('/d/a'), { path: '/d/A', spoolFile: tmp, state: 'queued' });
  t.deepEqual(q.pendingChildren('/d').map((p) => p.path), ['/d/A']);
  t.deepEqual(rows(env.db).map((r) => [r.path, r.parent_lower]), [['/d/A', '/d']]);
  await waitFor(() => !existsSync(old), 'the superseded spool to go');
  t.true(existsSync(tmp));
  q.start();
  await q.drain();
  t.deepEqual(client.calls.map((c) => [c.path, c.content]), [['/d/A', 'fresh']]);
});

/** Bigger than one request: a session upload, which a cancel or retarget aborts. */
const SESSION_SIZE = SINGLE_REQUEST_MAX_BYTES + 1;

test('retarget of a session upload in flight aborts it and uploads under the new name', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const gate = new Gate();
  client.behavior = gate.behavior;
  const q = queue(t, env, client);
  const seen = record(q);
  const f = await spool(env.spoolDir, 'f', Buffer.alloc(SESSION_SIZE));
  q.enqueue('/d/.b.tmp', f, SESSION_SIZE);
  q.start();
  await waitFor(() => client.calls.length === 1, 'the upload to start');
  t.true(q.retarget('/d/.b.tmp', '/d/b'));
  t.is(q.pending('/d/.b.tmp'), undefined);
  t.is(q.pending('/d/b')?.spoolFile, f);
  await waitFor(() => client.calls[0]?.outcome === 'aborted', 'the abort');
  gate.releaseAll();
  await q.drain();
  t.deepEqual(client.calls.map((c) => [c.path, c.outcome]), [['/d/.b.tmp', 'aborted'], ['/d/b', 'ok']]);
  t.deepEqual(seen.uploaded.map(([j]) => j.path), ['/d/b']);
  t.deepEqual(seen.failed, [], 'an abort is not a failed attempt');
  t.false(existsSync(f));
});

test('retargetTree moves every pending upload below a renamed folder, each with the base revision the caller gives', async (t) => {
  const env = await setup(t);
  const q = queue(t, env, new FakeClient());
  q.enqueue('/Old/x', await spool(env.spoolDir, 'x', 'x'), 1, 'rx');
  q.enqueue('/Old/Sub/y', await spool(env.spoolDir, 'y', 'y'), 1, 'ry');
  q.enqueue('/Older/z', await spool(env.spoolDir, 'z', 'z'), 1);
  const asked: [string, string | undefined][] = [];
  const baseRevOf = (from: string, base: string | undefined): string | undefined => {
    asked.push([from, base]);
    return from === '/old/x' ? 'rx-moved' : base;
  };
  t.is(q.retargetTree('/old', '/New', baseRevOf), 2);
  t.deepEqual(asked.sort(), [['/old/sub/y', 'ry'], ['/old/x', 'rx']]);
  t.deepEqual(rows(env.db).map((r) => [r.path, r.base_rev]).sort(), [['/New/Sub/y', 'ry'], ['/New/x', 'rx-moved'], ['/Older/z', null]]);
  t.is(q.pending('/new/sub/y')?.path, '/New/Sub/y');
  t.is(q.retargetTree('/new', '/Third'), 2, 'without baseRevOf each keeps its base');
  t.deepEqual(rows(env.db).map((r) => [r.path, r.base_rev]).sort(), [['/Older/z', null], ['/Third/Sub/y', 'ry'], ['/Third/x', 'rx-moved']]);
});

test('cancel of a queued upload deletes row and spool; nothing is uploaded', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const q = queue(t, env, client);
  const f = await spool(env.spoolDir, 'f', 'data');
  q.enqueue('/gone', f, 4);
  t.true(q.cancel('/gone'));
  t.false(q.cancel('/gone'));
  t.is(q.pending('/gone'), undefined);
  t.deepEqual(rows(env.db), []);
  await waitFor(() => !existsSync(f), 'the spool file to go');
  q.start();
  await q.drain();
  t.deepEqual(client.calls, []);
});

test('cancel of a session upload in flight aborts it; its spool file goes once the upload has stopped', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const gate = new Gate();
  client.behavior = gate.behavior;
  const q = queue(t, env, client);
  const seen = record(q);
  const f = await spool(env.spoolDir, 'f', Buffer.alloc(SESSION_SIZE));
  q.enqueue('/gone', f, SESSION_SIZE);
  q.start();
  await q.whenStarted();
  await waitFor(() => gate.heldCount === 1, 'the upload to start');
  t.true(q.cancel('/gone'));
  t.is(q.pending('/gone'), undefined);
  t.deepEqual(rows(env.db), []);
  await waitFor(() => client.calls[0]?.outcome === 'aborted', 'the abort');
  await waitFor(() => !existsSync(f), 'the spool file to go');
  await q.drain();
  t.deepEqual([seen.uploaded, seen.failed, seen.stray], [[], [], []]);
});

test('an upload that reaches Dropbox despite a cancel is reported as stray, not uploaded', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  let finish: (() => void) | undefined;
  client.behavior = () => new Promise<void>((r) => (finish = r)); // ignores the abort
  const q = queue(t, env, client);
  const seen = record(q);
  const f = await spool(env.spoolDir, 'f', 'data');
  q.enqueue('/late', f, 4);
  q.start();
  await q.whenStarted();
  await waitFor(() => finish !== undefined, 'the upload to start');
  t.true(q.cancel('/late'));
  finish?.();
  await waitFor(() => seen.stray.length === 1, 'the stray event');
  t.is(seen.stray[0]?.path, '/late');
  t.deepEqual(seen.uploaded, []);
  await waitFor(() => !existsSync(f), 'the spool file to go');
});

test('stop aborts uploads in flight; they stay in the journal as queued, and nothing new starts', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const gate = new Gate();
  client.behavior = gate.behavior;
  const q = queue(t, env, client, { concurrency: 1 });
  const a = await spool(env.spoolDir, 'a', 'a');
  const b = await spool(env.spoolDir, 'b', 'b');
  q.enqueue('/a', a, 1);
  q.enqueue('/b', b, 1);
  q.start();
  await waitFor(() => client.calls.length === 1, 'the first upload');
  await q.stop();
  t.is(client.calls[0]?.outcome, 'aborted');
  t.deepEqual(rows(env.db).map((r) => [r.path, r.state, r.attempts]), [['/a', 'queued', 0], ['/b', 'queued', 0]]);
  t.true(existsSync(a) && existsSync(b));
  await ticks();
  t.is(client.calls.length, 1);
  t.is((await t.throwsAsync(q.drain(), { instanceOf: UploadError }))?.code, 'stopped');
});

test('defaultRetryDelayMs: about 2 s first, doubling, never above 5 min', (t) => {
  for (let i = 0; i < 50; i++) {
    const first = defaultRetryDelayMs(1);
    t.true(first >= 1000 && first <= 2000, String(first));
    const third = defaultRetryDelayMs(3);
    t.true(third >= 4000 && third <= 8000, String(third));
    const late = defaultRetryDelayMs(40);
    t.true(late >= 150_000 && late <= 300_000, String(late));
  }
});

test('orphan spool files are removed at start, never a live one or one newer than the start', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const gate = new Gate();
  client.behavior = gate.behavior;
  const past = new Date(Date.now() - 3600_000);
  const orphan = await spool(env.spoolDir, 'orphan.spool', 'lost');
  const live = await spool(env.spoolDir, 'live.spool', 'kept');
  const young = await spool(env.spoolDir, 'young.spool', 'open handle');
  await mkdir(path.join(env.spoolDir, 'sub'));
  await utimes(orphan, past, past);
  await utimes(live, past, past);
  const future = new Date(Date.now() + 3600_000);
  await utimes(young, future, future);
  const q = queue(t, env, client, { concurrency: 1 });
  q.enqueue('/live', live, 4);
  q.start();
  await q.whenStarted();
  t.false(existsSync(orphan));
  t.true(existsSync(live));
  t.true(existsSync(young));
  t.true(existsSync(path.join(env.spoolDir, 'sub')));
  gate.releaseAll();
  await q.drain();
  t.deepEqual(client.calls.map((c) => c.content), ['kept']);
});

test('cancel of a single-request upload in flight lets it finish (its outcome stays known) and reports it as stray', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const gate = new Gate();
  client.behavior = gate.behavior;
  const q = queue(t, env, client);
  const seen = record(q);
  const f = await spool(env.spoolDir, 'f', 'data');
  q.enqueue('/small', f, 4);
  q.start();
  await q.whenStarted();
  await waitFor(() => gate.heldCount === 1, 'the upload to start');
  t.true(q.cancel('/small'));
  t.is(q.pending('/small'), undefined);
  gate.releaseAll();
  await q.whenSettled('/small');
  t.deepEqual(client.calls.map((c) => [c.path, c.outcome]), [['/small', 'ok']], 'not aborted');
  t.deepEqual(seen.stray.map((j) => j.path), ['/small']);
  t.deepEqual(seen.uploaded, []);
  await waitFor(() => !existsSync(f), 'the spool file to go');
});

test('hold: nothing starts at the held path or below until release; a single-request upload in flight finishes, a session one goes back to the queue', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const gate = new Gate();
  client.behavior = gate.behavior;
  const q = queue(t, env, client, { concurrency: 3 });
  const seen = record(q);
  q.enqueue('/d/small', await spool(env.spoolDir, 's', 'data'), 4);
  q.enqueue('/d/big', await spool(env.spoolDir, 'b', Buffer.alloc(SESSION_SIZE)), SESSION_SIZE);
  q.start();
  await waitFor(() => gate.heldCount === 2, 'both uploads to start');
  const hold = q.hold('/d');
  let settled = false;
  void hold.settled.then(() => (settled = true));
  await waitFor(() => client.calls.some((c) => c.path === '/d/big' && c.outcome === 'aborted'), 'the session upload to be aborted');
  await ticks(5);
  t.false(settled, 'the single-request upload is still in flight');
  q.enqueue('/d/later', await spool(env.spoolDir, 'l', 'later'), 5);
  q.enqueue('/e/free', await spool(env.spoolDir, 'e', 'free'), 4);
  gate.releaseAll();
  await hold.settled;
  t.deepEqual(seen.uploaded.map(([j]) => j.path), ['/d/small'], 'landed as usual, not a stray');
  t.is(q.pending('/d/big')?.state, 'queued', 'the aborted session upload is queued again');
  t.deepEqual(seen.failed, [], 'an abort for a hold is not a failed attempt');
  await waitFor(() => seen.uploaded.some(([j]) => j.path === '/e/free'), 'an upload outside the held folder');
  await ticks(5);
  t.deepEqual(client.calls.filter((c) => c.path !== '/d/small' && c.path !== '/e/free').map((c) => [c.path, c.outcome]), [['/d/big', 'aborted']], 'nothing held started');
  hold.release();
  hold.release();
  await q.drain();
  t.deepEqual(seen.uploaded.map(([j]) => j.path).sort(), ['/d/big', '/d/later', '/d/small', '/e/free']);
});

test('a file opened from a revision uploads as an update of it; newer versions of the path follow from the revision ours got', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const gate = new Gate();
  client.behavior = gate.behavior;
  const q = queue(t, env, client);
  q.enqueue('/d/f', await spool(env.spoolDir, 'v1', 'one'), 3, 'r0');
  q.enqueue('/d/new', await spool(env.spoolDir, 'n', 'new'), 3);
  q.start();
  await waitFor(() => gate.heldCount === 2, 'both uploads to start');
  t.is(q.enqueue('/d/f', await spool(env.spoolDir, 'v2', 'two'), 3, 'r0').baseRev, 'r0');
  gate.releaseAll();
  await q.drain();
  const first = client.calls[0]!;
  t.deepEqual(client.calls.map((c) => [c.path, c.mode]), [['/d/f', { update: 'r0' }], ['/d/new', 'overwrite'], ['/d/f', { update: `0151${String(first.n).padStart(5, '0')}` }]]);
});

test('an update that Dropbox saved as a conflicted copy is logged as such; the next version still conflicts', async (t) => {
  const env = await setup(t);
  const client = new FakeClient();
  const lines: string[] = [];
  // Dropbox renames ours (mode update, autorename): the remote file changed since r0.
  const upload = client.upload.bind(client);
  client.upload = async (file, size, commit, o) => {
    const m = await upload(file, size, commit, o);
    return typeof commit.mode === 'object' ? { ...m, pathLower: '/d/f (conflicted copy)', pathDisplay: '/d/f (conflicted copy)', name: 'f (conflicted copy)' } : m;
  };
  const q = queue(t, env, client, { log: (l) => lines.push(l) });
  q.enqueue('/d/f', await spool(env.spoolDir, 'v1', 'one'), 3, 'r0');
  q.start();
  await q.drain();
  t.true(lines.some((l) => l.includes('/d/f was changed in Dropbox since it was opened (rev r0): both are kept, ours as /d/f (conflicted copy)')), lines.join('\n'));
  t.is(q.enqueue('/d/f', await spool(env.spoolDir, 'v2', 'two'), 3, 'r0').baseRev, 'r0');
});

test("'uploaded' comes in the same step as the journal's rebase, before anything is awaited (a close meanwhile must not journal the old base)", async (t) => {
  const env = await setup(t);
  const q = queue(t, env, new FakeClient());
  const f = await spool(env.spoolDir, 'f', 'one');
  q.enqueue('/f', f, 3, 'r0');
  let seen: { spool: boolean; rows: number } | undefined;
  q.on('uploaded', (j: PendingUpload) => (seen = { spool: existsSync(j.spoolFile), rows: rows(env.db).length }));
  q.start();
  await q.drain();
  t.deepEqual(seen, { spool: true, rows: 0 }, 'the row is gone, its spool file not yet');
});
