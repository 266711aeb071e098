/**
 * Access tokens through a real emulator (src/dropbox/auth.ts): one refresh for all concurrent
 * callers, refresh after a 401 expired_access_token, and errors that say what to do without
 * ever showing a token.
 */
import test, { type ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DropboxClient } from '../../src/dropbox/client.js';
import type { RemoteError } from '../../src/dropbox/errors.js';
import { sdk, startEmulator, type Emulator } from '../helpers/emulator.js';
import { fault, remoteError, sha256File, stats, tempDir } from './helpers.js';

const REFRESH = 'r1-refresh-token-value';
const REFRESH_ARGS = ['--refresh-token', REFRESH, '--app-key', 'k'];

function refreshClient(t: ExecutionContext, emu: Emulator, refreshToken = REFRESH): DropboxClient {
  const c = new DropboxClient({ endpoint: emu.url, refreshToken, appKey: 'k', workers: 4, retry: { baseDelayMs: 10 } });
  t.teardown(() => c.close());
  return c;
}

const tokenRequests = async (emu: Emulator): Promise<number> => (await stats(emu)).requests['oauth2/token'] ?? 0;

function noSecrets(t: ExecutionContext, e: RemoteError, secrets: string[]): void {
  for (const s of secrets) {
    t.false(e.message.includes(s), `message shows a token: ${e.message}`);
    t.false(String(e).includes(s), `String(e) shows a token: ${String(e)}`);
    t.false((e.stack ?? '').includes(s), 'stack shows a token');
    t.false(JSON.stringify(e.opts.detail ?? null).includes(s));
  }
}

test('10 concurrent calls with a refresh token → exactly one oauth2/token request', async (t) => {
  const emu = await startEmulator(t, { args: REFRESH_ARGS });
  const c = refreshClient(t, emu);
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? c.currentAccount() : c.listFolder('', false))));
  t.is(results.length, 10);
  t.is(await tokenRequests(emu), 1);
  // And later calls reuse it
  await c.spaceUsage();
  t.is(await tokenRequests(emu), 1);
});

test('after /expire-tokens the next call gets 401 expired, refreshes once and succeeds (RPC)', async (t) => {
  const emu = await startEmulator(t, { args: REFRESH_ARGS });
  const c = refreshClient(t, emu);
  await c.currentAccount();
  t.is(await tokenRequests(emu), 1);
  await emu.admin('POST', '/expire-tokens');
  const acct = await c.currentAccount();
  t.truthy(acct.accountId);
  const s = await stats(emu);
  t.is(s.requests['oauth2/token'], 2);
  t.is(s.statuses['401'], 1);
  t.is(s.requests['users/get_current_account'], 3);
  await c.currentAccount();
  t.is(await tokenRequests(emu), 2);
});

test('10 concurrent calls after /expire-tokens → exactly one refresh (design: once for all concurrent callers)', async (t) => {
  const emu = await startEmulator(t, { args: REFRESH_ARGS });
  const c = refreshClient(t, emu);
  await c.currentAccount();
  await emu.admin('POST', '/expire-tokens');
  await emu.admin('POST', '/stats/reset');
  await Promise.all(Array.from({ length: 10 }, () => c.currentAccount()));
  const s = await stats(emu);
  t.is(s.statuses['401'], 10);
  t.is(s.requests['oauth2/token'], 1, 'one refresh for the ten 401s');
});

test('after /expire-tokens uploads and downloads (content routes) refresh once and succeed', async (t) => {
  const emu = await startEmulator(t, { args: REFRESH_ARGS });
  const dir = await tempDir(t);
  const file = path.join(dir, 'src');
  await writeFile(file, 'some bytes');
  const c = refreshClient(t, emu);
  await c.currentAccount();
  await emu.admin('POST', '/expire-tokens');
  await c.upload(file, 10, { path: '/a.txt', mode: 'add' });
  t.is(await tokenRequests(emu), 2);
  await emu.admin('POST', '/expire-tokens');
  // The download's first call is get_metadata (RPC); expire again between it and files/download
  await fault(emu, { kind: 'expire_token', routes: ['files/download'], count: 1 });
  await c.download('/a.txt', path.join(dir, 'out'));
  t.is(await sha256File(path.join(dir, 'out')), await sha256File(file));
  t.is(await tokenRequests(emu), 4);
});

test('server-side expiry (emulator clock moved past the TTL) → refresh and succeed', async (t) => {
  const emu = await startEmulator(t, { args: [...REFRESH_ARGS, '--token-ttl', '3600'] });
  const c = refreshClient(t, emu);
  await c.currentAccount();
  await emu.admin('POST', '/config', { clockOffsetSec: 7200 });
  await c.currentAccount();
  const s = await stats(emu);
  t.is(s.requests['oauth2/token'], 2);
  t.is(s.statuses['401'], 1);
});

test('a refused refresh token → RemoteError auth telling to run `sreg backend login dropbox`; no token in it', async (t) => {
  const emu = await startEmulator(t, { args: REFRESH_ARGS });
  const bad = 'bad-refresh-token-zq81';
  const c = refreshClient(t, emu, bad);
  const e = await remoteError(t, c.currentAccount(), 'auth');
  t.regex(e.message, /sreg backend login dropbox/);
  noSecrets(t, e, [bad]);
  t.is(await tokenRequests(emu), 1, 'not retried');
  t.is((await stats(emu)).requests['users/get_current_account'] ?? 0, 0);
});

test('a plain access token that expires → auth error telling to set a new SREGISTRY_DROPBOX_TOKEN; no token in it', async (t) => {
  const emu = await startEmulator(t);
  const c = new DropboxClient({ endpoint: emu.url, accessToken: emu.token, workers: 2, retry: { baseDelayMs: 10 } });
  t.teardown(() => c.close());
  await c.currentAccount();
  await emu.admin('POST', '/expire-tokens');
  const e = await remoteError(t, c.currentAccount(), 'auth');
  t.regex(e.message, /SREGISTRY_DROPBOX_TOKEN/);
  noSecrets(t, e, [emu.token]);
  t.is((await stats(emu)).requests['oauth2/token'] ?? 0, 0);
  // Content routes say the same
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'f'), 'x');
  const e2 = await remoteError(t, c.upload(path.join(dir, 'f'), 1, { path: '/f', mode: 'add' }), 'auth');
  t.regex(e2.message, /SREGISTRY_DROPBOX_TOKEN/);
  noSecrets(t, e2, [emu.token]);
});

test('--token-ttl: a plain token past its TTL is refused as expired', async (t) => {
  const emu = await startEmulator(t, { args: ['--token-ttl', '1'] });
  const c = new DropboxClient({ endpoint: emu.url, accessToken: emu.token, workers: 2 });
  t.teardown(() => c.close());
  await new Promise((r) => setTimeout(r, 2100));
  const e = await remoteError(t, c.currentAccount(), 'auth');
  t.regex(e.message, /SREGISTRY_DROPBOX_TOKEN/);
  noSecrets(t, e, [emu.token]);
});

test('a wrong access token → auth error, not retried, token not shown', async (t) => {
  const emu = await startEmulator(t);
  const wrong = 'wrong-token-0123456789abcdef';
  const c = new DropboxClient({ endpoint: emu.url, accessToken: wrong, workers: 2, retry: { baseDelayMs: 10 } });
  t.teardown(() => c.close());
  const e = await remoteError(t, c.listFolder('', false), 'auth');
  noSecrets(t, e, [wrong, emu.token]);
  t.is((await stats(emu)).requests['files/list_folder'], 1);
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'f'), 'x');
  const e2 = await remoteError(t, c.upload(path.join(dir, 'f'), 1, { path: '/f', mode: 'add' }), 'auth');
  noSecrets(t, e2, [wrong, emu.token]);
});

test('a token refreshed by the client works with the SDK too (sanity: it is a real emulator token)', async (t) => {
  const emu = await startEmulator(t, { args: REFRESH_ARGS });
  const c = refreshClient(t, emu);
  const token = await c.tokens.get();
  const acct = await sdk(emu, { accessToken: token }).usersGetCurrentAccount();
  t.is(acct.status, 200);
});
