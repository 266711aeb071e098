/**
 * The retry policy (src/dropbox/retry.ts, docs/design.md "Client core") seen through a real
 * emulator's fault rules and request counters. Timing checks are lower bounds only.
 */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DropboxClient } from '../../src/dropbox/client.js';
import { startEmulator } from '../helpers/emulator.js';
import { client, fault, remoteError, resetStats, stats, tempDir } from './helpers.js';

const FAST = { maxAttempts: 8, baseDelayMs: 10, maxDelayMs: 200 };

test('5xx count 3 → the call succeeds on the 4th request', async (t) => {
  const emu = await startEmulator(t);
  const retries: string[] = [];
  const c = client(t, emu, { retry: FAST, log: (l) => retries.push(l) });
  await fault(emu, { kind: '5xx', routes: ['users/get_current_account'], count: 3 });
  const acct = await c.currentAccount();
  t.truthy(acct.accountId);
  const s = await stats(emu);
  t.is(s.requests['users/get_current_account'], 4);
  t.is(s.statuses['503'], 3);
  t.is(retries.length, 3, retries.join('\n'));
  t.true(retries.every((l) => l.includes('users/get_current_account')));
  // Each status of 500/502/504 too
  for (const status of [500, 502, 504]) {
    await fault(emu, { kind: '5xx', status, routes: ['users/get_space_usage'], count: 1 });
    await t.notThrowsAsync(c.spaceUsage());
  }
  t.is((await stats(emu)).requests['users/get_space_usage'], 6);
});

test('429 with Retry-After 1 → waits at least a second, then succeeds', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu, { retry: FAST });
  await fault(emu, { kind: '429', routes: ['files/list_folder'], count: 1, retryAfterSec: 1 });
  const t0 = performance.now();
  const page = await c.listFolder('', false);
  const took = performance.now() - t0;
  t.deepEqual(page.entries, []);
  t.true(took >= 1000, `took ${took} ms`);
  t.is((await stats(emu)).requests['files/list_folder'], 2);
});

test('429 plain text and 429 too_many_write_operations are retried too', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu, { retry: FAST });
  await fault(emu, { kind: '429', routes: ['files/create_folder_v2'], count: 1, plainText: true, retryAfterSec: 1 });
  const t0 = performance.now();
  await c.createFolder('/a');
  t.true(performance.now() - t0 >= 1000);
  await fault(emu, { kind: '429', reason: 'too_many_write_operations', routes: ['files/create_folder_v2'], count: 1, retryAfterSec: 1 });
  await c.createFolder('/b');
  t.is((await stats(emu)).requests['files/create_folder_v2'], 4);
});

test('409 too_many_write_operations on upload → retried after Retry-After, succeeds', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const file = path.join(dir, 'f');
  await writeFile(file, 'hello');
  const c = client(t, emu, { retry: FAST });
  await fault(emu, { kind: 'write_lock_409', routes: ['files/upload'], count: 2, retryAfterSec: 1 });
  const t0 = performance.now();
  const md = await c.upload(file, 5, { path: '/f.txt', mode: 'add' });
  t.true(performance.now() - t0 >= 2000);
  t.is(md.size, 5);
  const s = await stats(emu);
  t.is(s.requests['files/upload'], 3);
  t.is(s.statuses['409'], 2);
});

test('409 too_many_write_operations on a namespace write (delete) → retried', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu, { retry: FAST });
  await c.createFolder('/x');
  await fault(emu, { kind: 'write_lock_409', routes: ['files/delete_v2'], count: 1, retryAfterSec: 1 });
  const md = await c.delete('/x');
  t.is(md.kind, 'folder');
  t.is((await stats(emu)).requests['files/delete_v2'], 2);
});

test('a 400 is not retried (1 request)', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu, { retry: FAST });
  await resetStats(emu);
  const e = await remoteError(t, c.listFolder('/', false), 'bad_request');
  t.is(e.route, 'files/list_folder');
  t.regex(e.message, /400/);
  t.is((await stats(emu)).requests['files/list_folder'], 1);
});

test('not_found is not retried (1 request)', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu, { retry: FAST });
  await resetStats(emu);
  await remoteError(t, c.listFolder('/nope', false), 'not_found');
  t.is((await stats(emu)).requests['files/list_folder'], 1);
  t.is(await c.getMetadata('/nope'), undefined);
  t.is((await stats(emu)).requests['files/get_metadata'], 1);
  await remoteError(t, c.delete('/nope'), 'not_found');
  t.is((await stats(emu)).requests['files/delete_v2'], 1);
});

test('a conflict is not retried (1 request)', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu, { retry: FAST });
  await c.createFolder('/a');
  await resetStats(emu);
  await remoteError(t, c.createFolder('/a'), 'conflict');
  t.is((await stats(emu)).requests['files/create_folder_v2'], 1);
});

test('5xx rate 1 → RemoteError server after maxAttempts, exactly that many requests', async (t) => {
  const emu = await startEmulator(t);
  const c = client(t, emu, { retry: { maxAttempts: 3, baseDelayMs: 10 } });
  await fault(emu, { kind: '5xx', routes: ['files/list_folder'], rate: 1 });
  const e = await remoteError(t, c.listFolder('', false), 'server');
  t.is(e.route, 'files/list_folder');
  t.is(e.opts.status, 503);
  t.is((await stats(emu)).requests['files/list_folder'], 3);
});

test('5xx rate 1 on a content route (upload) → server error after maxAttempts', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const file = path.join(dir, 'f');
  await writeFile(file, 'hello');
  const c = client(t, emu, { retry: { maxAttempts: 3, baseDelayMs: 10 } });
  await fault(emu, { kind: '5xx', status: 502, routes: ['files/upload'], rate: 1 });
  const e = await remoteError(t, c.upload(file, 5, { path: '/f', mode: 'add' }), 'server');
  t.is(e.route, 'files/upload');
  t.is((await stats(emu)).requests['files/upload'], 3);
});

test('endpoint down → RemoteError network naming the endpoint (RPC and content routes)', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'f');
  await writeFile(file, 'hello');
  const c = new DropboxClient({ endpoint: 'http://127.0.0.1:1', accessToken: 'tok-abc', workers: 2, retry: { maxAttempts: 2, baseDelayMs: 10 } });
  t.teardown(() => c.close());
  const a = await remoteError(t, c.currentAccount(), 'network');
  t.true(a.message.includes('http://127.0.0.1:1'), a.message);
  t.true(a.message.includes('users/get_current_account'), a.message);
  const b = await remoteError(t, c.upload(file, 5, { path: '/f', mode: 'add' }), 'network');
  t.true(b.message.includes('http://127.0.0.1:1'), b.message);
  const d = await remoteError(t, c.download('/f', path.join(dir, 'out')), 'network');
  t.true(d.message.includes('http://127.0.0.1:1'), d.message);
  for (const e of [a, b, d]) t.false(String(e).includes('tok-abc'));
});

test('retries stop when the signal aborts', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const file = path.join(dir, 'f');
  await writeFile(file, 'hello');
  const c = client(t, emu, { retry: { maxAttempts: 50, baseDelayMs: 5_000, maxDelayMs: 5_000 } });
  await fault(emu, { kind: '5xx', routes: ['files/upload'], rate: 1 });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 300);
  await t.throwsAsync(c.upload(file, 5, { path: '/f', mode: 'add' }, { signal: ac.signal }));
  t.is((await stats(emu)).requests['files/upload'], 1);
});
