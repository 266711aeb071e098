/**
 * SDK conformance: bearer tokens, expiry, refresh, the OAuth 2 endpoints (dropbox-api.md §2, §7, §8)
 * and persistence of everything across a restart, through SDK 10.34.
 */
import { createHash, randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { Dropbox, DropboxAuth } from 'dropbox';
import { endpointFetch } from '../../src/dropbox/endpoint.js';
import { startEmulator, sdk, sdkError, type Emulator } from '../helpers/emulator.js';
import { apiError, checkFile, down, drain, expect400, expect409, sleep, up } from './sdk-common.js';

const REDIRECT = 'http://localhost/cb';

interface TokenResponse {
  status: number;
  contentType: string;
  body: any;
}

async function tokenEndpoint(emu: Emulator, params: Record<string, string>, headers: Record<string, string> = {}): Promise<TokenResponse> {
  const res = await fetch(`${emu.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* plain text stays a string */
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body };
}

/** GET /oauth2/authorize; returns the `code` from the 302's Location (checked against REDIRECT). */
async function authorize(t: ExecutionContext, emu: Emulator, query: Record<string, string>): Promise<string> {
  const res = await fetch(`${emu.url}/oauth2/authorize?${new URLSearchParams(query).toString()}`, { redirect: 'manual' });
  t.is(res.status, 302);
  const loc = new URL(res.headers.get('location') ?? 'http://invalid/');
  t.is(`${loc.origin}${loc.pathname}`, REDIRECT);
  if (query.state !== undefined) t.is(loc.searchParams.get('state'), query.state);
  const code = loc.searchParams.get('code');
  t.truthy(code, `no code in ${loc.href}`);
  return code ?? '';
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(48).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The whole PKCE flow with plain HTTP; returns the token response body. */
async function pkceTokens(t: ExecutionContext, emu: Emulator, clientId = 'k'): Promise<any> {
  const { verifier, challenge } = pkce();
  const code = await authorize(t, emu, {
    client_id: clientId,
    response_type: 'code',
    token_access_type: 'offline',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    redirect_uri: REDIRECT,
  });
  const r = await tokenEndpoint(emu, { grant_type: 'authorization_code', code, client_id: clientId, code_verifier: verifier, redirect_uri: REDIRECT });
  t.is(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

function expectGrantError(t: ExecutionContext, r: TokenResponse, error: string): void {
  t.is(r.status, 400, JSON.stringify(r.body));
  t.regex(r.contentType, /^application\/json\b/);
  t.is(typeof r.body, 'object');
  t.is(r.body?.error, error);
  t.is(typeof r.body?.error_description, 'string');
}

test('bearer tokens: wrong → 401 invalid_access_token; malformed or missing → 400 plain text', async (t) => {
  const emu = await startEmulator(t);
  t.is(typeof (await sdk(emu).usersGetCurrentAccount()).result.account_id, 'string');
  const wrong = await apiError(t, sdk(emu, { accessToken: 'test-0000000000000000deadbeef' }).usersGetCurrentAccount(), 401, 'invalid_access_token');
  t.deepEqual(wrong.error, { '.tag': 'invalid_access_token' });
  await expect409(t, sdk(emu).filesGetMetadata({ path: '/x' }), { '.tag': 'path', path: { '.tag': 'not_found' } }, 'path/not_found');
  const wrongRpc = await apiError(t, sdk(emu, { accessToken: 'nope' }).filesGetMetadata({ path: '/x' }), 401, 'invalid_access_token');
  t.deepEqual(wrongRpc.error, { '.tag': 'invalid_access_token' });
  const wrongUpload = await apiError(t, up(sdk(emu, { accessToken: 'nope' }), '/x', 'x'), 401, 'invalid_access_token');
  t.deepEqual(wrongUpload.error, { '.tag': 'invalid_access_token' });

  await expect400(t, sdk(emu, { accessToken: 'has a space' }).usersGetCurrentAccount());
  await expect400(t, sdk(emu, { accessToken: 'tok\u00e9n' }).usersGetCurrentAccount());
  await expect400(t, new Dropbox({ fetch: endpointFetch(emu.url) }).usersGetCurrentAccount());
});

test('--token-ttl: the token works, then after the TTL gets 401 expired_access_token', async (t) => {
  const emu = await startEmulator(t, { args: ['--token-ttl', '3'] });
  const dbx = sdk(emu);
  await dbx.usersGetCurrentAccount();
  await sleep(3300);
  const env = await apiError(t, dbx.usersGetCurrentAccount(), 401, 'expired_access_token');
  t.deepEqual(env.error, { '.tag': 'expired_access_token' });
  const env2 = await apiError(t, dbx.filesListFolder({ path: '' }), 401, 'expired_access_token');
  t.deepEqual(env2.error, { '.tag': 'expired_access_token' });
});

test('admin expire-tokens: 401 expired_access_token; an SDK with a refresh token recovers by refreshing', async (t) => {
  const emu = await startEmulator(t, { args: ['--app-key', 'k', '--refresh-token', 'r'] });
  const auth = new DropboxAuth({ refreshToken: 'r', clientId: 'k', fetch: endpointFetch(emu.url) });
  const dbx = new Dropbox({ auth });
  await dbx.usersGetCurrentAccount();
  const first = auth.getAccessToken();
  t.truthy(first);
  t.not(first, emu.token);
  const expiresAt = auth.getAccessTokenExpiresAt().getTime();
  t.true(Math.abs(expiresAt - (Date.now() + 14400 * 1000)) < 120_000, 'issued tokens last 14400 s by default');

  await emu.admin('POST', '/expire-tokens');
  const env = await apiError(t, dbx.usersGetCurrentAccount(), 401, 'expired_access_token');
  t.deepEqual(env.error, { '.tag': 'expired_access_token' });
  const envFixed = await apiError(t, sdk(emu).usersGetCurrentAccount(), 401, 'expired_access_token');
  t.deepEqual(envFixed.error, { '.tag': 'expired_access_token' });

  // Typed as void in 10.34, but it returns the refresh promise.
  await (auth.refreshAccessToken() as unknown as Promise<void>);
  t.not(auth.getAccessToken(), first);
  t.is(typeof (await dbx.usersGetCurrentAccount()).result.account_id, 'string');
});

test('clockOffsetSec moves token expiry: an issued token expires after 14400 s; --token without a TTL does not', async (t) => {
  const emu = await startEmulator(t, { args: ['--app-key', 'k', '--refresh-token', 'r'] });
  const r = await tokenEndpoint(emu, { grant_type: 'refresh_token', refresh_token: 'r', client_id: 'k' });
  t.is(r.status, 200);
  const issued = sdk(emu, { accessToken: r.body.access_token });
  await issued.usersGetCurrentAccount();
  await emu.admin('POST', '/config', { clockOffsetSec: 14400 - 120 });
  await issued.usersGetCurrentAccount();
  await emu.admin('POST', '/config', { clockOffsetSec: 14400 + 120 });
  const env = await apiError(t, issued.usersGetCurrentAccount(), 401, 'expired_access_token');
  t.deepEqual(env.error, { '.tag': 'expired_access_token' });
  t.regex((await sdk(emu).usersGetCurrentAccount()).result.account_id, /^dbid:/);
});

test('refresh (PKCE app): the SDK refreshes via oauth2/token with --refresh-token; bad refresh token → 400 invalid_grant', async (t) => {
  const emu = await startEmulator(t, { args: ['--app-key', 'k', '--refresh-token', 'r'] });
  const dbx = new Dropbox({ refreshToken: 'r', clientId: 'k', fetch: endpointFetch(emu.url) });
  const acct = (await dbx.usersGetCurrentAccount()).result;
  t.regex(acct.account_id, /^dbid:/);
  await up(dbx, '/via-refresh.txt', 'ok');
  t.is((await dbx.filesGetMetadata({ path: '/via-refresh.txt' })).result['.tag'], 'file');

  const r = await tokenEndpoint(emu, { grant_type: 'refresh_token', refresh_token: 'r', client_id: 'k' });
  t.is(r.status, 200, JSON.stringify(r.body));
  t.regex(r.contentType, /^application\/json\b/);
  t.is(typeof r.body.access_token, 'string');
  t.is(r.body.token_type, 'bearer');
  t.is(r.body.expires_in, 14400);
  t.false('refresh_token' in r.body, 'a refresh grant issues no new refresh token');
  t.is((await sdk(emu, { accessToken: r.body.access_token }).usersGetCurrentAccount()).result.account_id, acct.account_id);

  // Query-string parameters (what the SDK sends) on a plain request too.
  const q = await fetch(`${emu.url}/oauth2/token?grant_type=refresh_token&refresh_token=r&client_id=k`, { method: 'POST' });
  t.is(q.status, 200);
  t.is(((await q.json()) as any).token_type, 'bearer');

  const bad = await sdkError(new Dropbox({ refreshToken: 'bogus', clientId: 'k', fetch: endpointFetch(emu.url) }).usersGetCurrentAccount());
  t.is(bad.status, 400);
  t.is(typeof bad.error, 'object', JSON.stringify(bad.error));
  t.is(bad.error?.error, 'invalid_grant');
  t.is(typeof bad.error?.error_description, 'string');
  expectGrantError(t, await tokenEndpoint(emu, { grant_type: 'refresh_token', refresh_token: 'bogus', client_id: 'k' }), 'invalid_grant');
});

test('--token-ttl applies to issued tokens: expires_in and real expiry', async (t) => {
  const emu = await startEmulator(t, { args: ['--app-key', 'k', '--refresh-token', 'r', '--token-ttl', '2'] });
  const r = await tokenEndpoint(emu, { grant_type: 'refresh_token', refresh_token: 'r', client_id: 'k' });
  t.is(r.status, 200);
  t.is(r.body.expires_in, 2);
  const dbx = sdk(emu, { accessToken: r.body.access_token });
  await dbx.usersGetSpaceUsage();
  await sleep(2300);
  const env = await apiError(t, dbx.usersGetSpaceUsage(), 401, 'expired_access_token');
  t.deepEqual(env.error, { '.tag': 'expired_access_token' });
  // An SDK that knows the expiry refreshes on its own before every call.
  const auto = new Dropbox({ refreshToken: 'r', clientId: 'k', fetch: endpointFetch(emu.url) });
  await auto.usersGetSpaceUsage();
  await sleep(2300);
  t.is(typeof (await auto.usersGetSpaceUsage()).result.used, 'number');
});

test('refresh with --app-secret: secret as param or HTTP Basic; wrong secret → invalid_client', async (t) => {
  const emu = await startEmulator(t, { args: ['--app-key', 'k', '--app-secret', 's', '--refresh-token', 'r'] });
  const dbx = new Dropbox({ refreshToken: 'r', clientId: 'k', clientSecret: 's', fetch: endpointFetch(emu.url) });
  t.regex((await dbx.usersGetCurrentAccount()).result.account_id, /^dbid:/);

  const basic = await tokenEndpoint(
    emu,
    { grant_type: 'refresh_token', refresh_token: 'r' },
    { authorization: `Basic ${Buffer.from('k:s').toString('base64')}` },
  );
  t.is(basic.status, 200, JSON.stringify(basic.body));
  t.is(basic.body.token_type, 'bearer');

  const wrong = await tokenEndpoint(emu, { grant_type: 'refresh_token', refresh_token: 'r', client_id: 'k', client_secret: 'nope' });
  t.true([400, 401].includes(wrong.status), `status ${wrong.status}`);
  t.is(wrong.body?.error, 'invalid_client');

  const sdkWrong = await sdkError(new Dropbox({ refreshToken: 'r', clientId: 'k', clientSecret: 'nope', fetch: endpointFetch(emu.url) }).usersGetCurrentAccount());
  t.true([400, 401].includes(sdkWrong.status));
  t.is(sdkWrong.error?.error, 'invalid_client');

  // authorization_code with the secret instead of PKCE.
  const code = await authorize(t, emu, { client_id: 'k', response_type: 'code', token_access_type: 'offline', redirect_uri: REDIRECT, state: 's1' });
  const tok = await tokenEndpoint(emu, { grant_type: 'authorization_code', code, client_id: 'k', client_secret: 's', redirect_uri: REDIRECT });
  t.is(tok.status, 200, JSON.stringify(tok.body));
  t.is(typeof tok.body.refresh_token, 'string');
  t.is(typeof (await sdk(emu, { accessToken: tok.body.access_token }).usersGetSpaceUsage()).result.used, 'number');
});

test('oauth2 PKCE: authorize redirects with a code; exchange gives bearer + refresh tokens that work', async (t) => {
  const emu = await startEmulator(t, { args: ['--app-key', 'k'] });
  const { verifier, challenge } = pkce();
  const code = await authorize(t, emu, {
    client_id: 'k',
    response_type: 'code',
    token_access_type: 'offline',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    redirect_uri: REDIRECT,
    state: 'xyz',
  });
  const r = await tokenEndpoint(emu, { grant_type: 'authorization_code', code, client_id: 'k', code_verifier: verifier, redirect_uri: REDIRECT });
  t.is(r.status, 200, JSON.stringify(r.body));
  t.regex(r.contentType, /^application\/json\b/);
  t.is(typeof r.body.access_token, 'string');
  t.is(r.body.token_type, 'bearer');
  t.is(r.body.expires_in, 14400);
  t.is(typeof r.body.refresh_token, 'string');
  t.not(r.body.access_token, emu.token);

  const acct = (await sdk(emu, { accessToken: r.body.access_token }).usersGetCurrentAccount()).result;
  if (r.body.account_id !== undefined) t.is(r.body.account_id, acct.account_id);

  const refreshed = new Dropbox({ refreshToken: r.body.refresh_token, clientId: 'k', fetch: endpointFetch(emu.url) });
  t.is((await refreshed.usersGetCurrentAccount()).result.account_id, acct.account_id);

  // A wrong verifier is refused.
  const second = pkce();
  const code2 = await authorize(t, emu, {
    client_id: 'k',
    response_type: 'code',
    token_access_type: 'offline',
    code_challenge: second.challenge,
    code_challenge_method: 'S256',
    redirect_uri: REDIRECT,
  });
  expectGrantError(
    t,
    await tokenEndpoint(emu, { grant_type: 'authorization_code', code: code2, client_id: 'k', code_verifier: pkce().verifier, redirect_uri: REDIRECT }),
    'invalid_grant',
  );
  expectGrantError(
    t,
    await tokenEndpoint(emu, { grant_type: 'authorization_code', code: 'made-up-code', client_id: 'k', code_verifier: verifier, redirect_uri: REDIRECT }),
    'invalid_grant',
  );
});

test('oauth2 PKCE driven by the SDK (getAuthenticationUrl + getAccessTokenFromCode, query-string params)', async (t) => {
  const emu = await startEmulator(t, { args: ['--app-key', 'k'] });
  const auth = new DropboxAuth({ clientId: 'k', fetch: endpointFetch(emu.url) });
  const url = new URL(String(await auth.getAuthenticationUrl(REDIRECT, 'st', 'code', 'offline', undefined, 'none', true)));
  const code = await authorize(t, emu, Object.fromEntries(url.searchParams));
  const res = (await auth.getAccessTokenFromCode(REDIRECT, code)).result as any;
  t.is(res.token_type, 'bearer');
  t.is(typeof res.refresh_token, 'string');
  auth.setAccessToken(res.access_token);
  auth.setRefreshToken(res.refresh_token);
  auth.setAccessTokenExpiresAt(new Date(Date.now() + res.expires_in * 1000));
  const dbx = new Dropbox({ auth });
  t.regex((await dbx.usersGetCurrentAccount()).result.account_id, /^dbid:/);
});

test('auth/token/revoke: the access token and its refresh token stop working', async (t) => {
  const emu = await startEmulator(t, { args: ['--app-key', 'k'] });
  const tokens = await pkceTokens(t, emu);
  const dbx = sdk(emu, { accessToken: tokens.access_token });
  await dbx.usersGetCurrentAccount();
  const revoked: unknown = (await dbx.authTokenRevoke()).result;
  t.is(revoked, null);
  const env = await apiError(t, dbx.usersGetCurrentAccount(), 401, 'invalid_access_token');
  t.deepEqual(env.error, { '.tag': 'invalid_access_token' });
  expectGrantError(t, await tokenEndpoint(emu, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'k' }), 'invalid_grant');
  // Other tokens are unaffected.
  await sdk(emu).usersGetCurrentAccount();
});

test('restart: files, cursors, shared links, sessions and issued tokens all survive', async (t) => {
  const emu = await startEmulator(t, { args: ['--app-key', 'k'] });
  const dbx = sdk(emu);
  const content = Buffer.from('persistent bytes');
  const f = await up(dbx, '/Keep/A.txt', content);
  const folder = (await dbx.filesCreateFolderV2({ path: '/Empty' })).result.metadata;
  const link = (await dbx.sharingCreateSharedLinkWithSettings({ path: '/keep/a.txt' })).result;
  const { cursor } = (await dbx.filesListFolderGetLatestCursor({ path: '', recursive: true })).result;
  const part1 = Buffer.from('first half, ');
  const part2 = Buffer.from('second half');
  const sid = ((await dbx.filesUploadSessionStart({ contents: part1 })).result as any).session_id as string;
  const tokens = await pkceTokens(t, emu);

  await emu.restart();

  const m = (await dbx.filesGetMetadata({ path: '/keep/a.txt' })).result as any;
  checkFile(t, m, { tagged: true, path: '/Keep/A.txt', content });
  t.is(m.id, f.id);
  t.is(m.rev, f.rev);
  t.true((await down(dbx, '/Keep/A.txt')).bytes.equals(content));
  t.is(((await dbx.filesGetMetadata({ path: '/empty' })).result as any).id, folder.id);

  t.deepEqual((await drain(dbx, cursor)).entries, [], 'a pre-restart cursor is still valid, with nothing new');
  await up(dbx, '/after.txt', 'after');
  t.deepEqual((await drain(dbx, cursor)).entries.map((e) => e.path_lower), ['/after.txt']);

  const links = (await dbx.sharingListSharedLinks({ path: '/keep/a.txt', direct_only: true })).result.links;
  t.deepEqual(links.map((l) => l.url), [link.url]);
  const exists = await apiError(t, dbx.sharingCreateSharedLinkWithSettings({ path: '/keep/a.txt' }), 409, /^shared_link_already_exists\//);
  t.is(exists.error['.tag'], 'shared_link_already_exists');

  await dbx.filesUploadSessionAppendV2({ cursor: { session_id: sid, offset: part1.length }, contents: part2 });
  const fin = (await dbx.filesUploadSessionFinish({ cursor: { session_id: sid, offset: part1.length + part2.length }, commit: { path: '/sess.txt' } })).result;
  checkFile(t, fin, { tagged: false, path: '/sess.txt', content: Buffer.concat([part1, part2]) });

  t.regex((await sdk(emu, { accessToken: tokens.access_token }).usersGetCurrentAccount()).result.account_id, /^dbid:/);
  const r = await tokenEndpoint(emu, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'k' });
  t.is(r.status, 200, JSON.stringify(r.body));
  t.is((await sdk(emu, { accessToken: r.body.access_token }).usersGetSpaceUsage()).result.used, content.length + 5 + part1.length + part2.length);
});
