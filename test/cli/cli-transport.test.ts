/**
 * Issue 8, the transport rows, as a user meets them: a stalled endpoint (the emulator's `stall`
 * fault, a server that accepts and never answers) ends `sreg search`, `pull` and `push` with one
 * ERROR line and exit 5 after STALLED_ATTEMPTS tries of SREGISTRY_DROPBOX_TIMEOUT each (short
 * here, through the variable or the `--dropbox-timeout` flag); uploads go through token
 * refreshes; a token read from a CRLF file works, one with an inner control character is
 * refused without being shown; an endpoint answering something that is not the API says so.
 * No timing thresholds: runs are bounded only by runCli's hang guard, far above the deadline.
 */
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import net from 'node:net';
import { copyFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DropboxClient } from '../../src/dropbox/client.js';
import { STALLED_ATTEMPTS } from '../../src/dropbox/retry.js';
import { sdk, startEmulator, type Emulator } from '../helpers/emulator.js';
import {
  assertError,
  assertOk,
  assertTree,
  suiteSifs,
  CONNECTED,
  DISPLAY_NAME,
  runCli,
  sha256File,
  startCliEmulator,
  stats,
  storageOf,
  tempHome,
  type Sif,
} from '../helpers/cli.js';

const img = suiteSifs(test, {
    red: { uri: 'pusheen/asaurus:red' },
    // ~10 MB: an upload session of several requests.
    large: { uri: 'pusheen/large:x', dataMib: 8 },
  });

/** Short deadline for the stalled runs; the hang guard of runCli is far above 3 × it. */
const SHORT = { SREGISTRY_DROPBOX_TIMEOUT: '1' };
const GUARD_MS = 60_000;

async function push(emu: Emulator, home: string, sif: Sif): Promise<void> {
  const r = await runCli(['push', '--name', sif.uri, sif.file], { home, emu });
  if (r.code !== 0) throw new Error(`push ${sif.uri} failed (${r.code}): ${r.stderr}`);
}

/** A local HTTP server answering every request with `status` and `body`; closed at teardown. */
async function fakeEndpoint(t: ExecutionContext, status: number, contentType: string, body: string): Promise<string> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(status, { 'content-type': contentType }).end(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

test('sreg search against a stalled emulator: exit 5 after 3 tries of the timeout, says it did not answer', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await emu.admin('POST', '/faults', { kind: 'stall' });
  const r = await runCli(['search'], { home, emu, env: SHORT, timeoutMs: GUARD_MS });
  assertError(t, r, 5, /did not start answering within 1 s during users\/get_current_account: check your network/);
  t.false(r.stderr.includes(emu.token));
  t.is((await stats(emu)).requests['users/get_current_account'], STALLED_ATTEMPTS);
});

test('--dropbox-timeout sets the same deadline as SREGISTRY_DROPBOX_TIMEOUT (and wins over it)', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await emu.admin('POST', '/faults', { kind: 'stall', routes: ['files/list_folder'] });
  const r = await runCli(['search', '--dropbox-timeout', '1'], { home, emu, env: { SREGISTRY_DROPBOX_TIMEOUT: '3000' }, timeoutMs: GUARD_MS });
  assertError(t, r, 5, /did not start answering within 1 s during files\/list_folder/);
});

test('sreg search against a server that accepts TCP connections and never answers: exit 5', async (t) => {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const home = await tempHome(t);
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const r = await runCli(['search'], { home, token: 'tok-abc', env: { ...SHORT, SREGISTRY_DROPBOX_ENDPOINT: url }, timeoutMs: GUARD_MS });
  assertError(t, r, 5, /did not start answering.*users\/get_current_account/);
  t.false(r.stderr.includes('tok-abc'));
});

test('sreg pull whose download stalls mid-body: exit 5, nothing left in storage', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await push(emu, home, img.large);
  await emu.admin('POST', '/faults', { kind: 'stall', routes: ['files/download'], afterBytes: 100_000 });
  // 2 s: long enough for the headers on a loaded machine (the phase is what is checked).
  const r = await runCli(['pull', '--force', img.large.uri], { home, emu, env: { SREGISTRY_DROPBOX_TIMEOUT: '2' }, timeoutMs: GUARD_MS });
  assertError(t, r, 5, /stopped sending its answer within 2 s during files\/download/);
  await assertTree(t, storageOf(home), []);
});

test('sreg push whose upload is never answered: exit 5, no file in Dropbox', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await emu.admin('POST', '/faults', { kind: 'stall', routes: ['files/upload', 'files/upload_session/append_v2'] });
  const r = await runCli(['push', '--name', img.large.uri, img.large.file], { home, emu, env: SHORT, timeoutMs: GUARD_MS });
  assertError(t, r, 5, /did not start answering within 1 s during files\/upload/);
  const listed = (await sdk(emu).filesListFolder({ path: '', recursive: true })).result.entries.filter((e) => e['.tag'] === 'file');
  t.deepEqual(listed, []);
});

test('a bad timeout setting: exit 2 before any request, naming the variable', async (t) => {
  const home = await tempHome(t);
  const r = await runCli(['search'], { home, env: { SREGISTRY_DROPBOX_TIMEOUT: 'soon' } });
  assertError(t, r, 2, /SREGISTRY_DROPBOX_TIMEOUT must be a number of seconds/);
  const f = await runCli(['search', '--dropbox-timeout', '0'], { home });
  assertError(t, f, 2, /SREGISTRY_DROPBOX_TIMEOUT must be a number of seconds from 0\.1/);
});

test('push of a multi-chunk image with a refresh token, no access token and a short token life: the upload goes through the refreshes', async (t) => {
  const refresh = 'r1-refresh-token-value-for-push';
  // Tokens live 2 s and every answer takes 0.6 s: upload requests start after a refresh (the
  // token is replaced once half its life is gone), which is where the body used to be lost.
  const emu = await startEmulator(t, { args: ['--display-name', DISPLAY_NAME, '--refresh-token', refresh, '--app-key', 'k', '--token-ttl', '2', '--latency-ms', '600'] });
  const home = await tempHome(t);
  const env = { SREGISTRY_DROPBOX_REFRESH_TOKEN: refresh, SREGISTRY_DROPBOX_APP_KEY: 'k', SREGISTRY_PYTHON_THREADS: '2' };
  const r = await runCli(['push', '--name', img.large.uri, img.large.file], { home, emu, token: null, env, timeoutMs: GUARD_MS });
  assertOk(t, r);
  // The emulator's own token expires too: look with a client that refreshes.
  const c = new DropboxClient({ endpoint: emu.url, refreshToken: refresh, appKey: 'k', workers: 1 });
  t.teardown(() => c.close());
  const md = await c.getMetadata('/pusheen/large:x.simg');
  t.is(md?.kind === 'file' ? md.contentHash : undefined, img.large.contentHash);
  t.is(md?.kind === 'file' ? md.size : undefined, img.large.size);
  const s = await stats(emu);
  t.true((s.requests['files/upload_session/append_v2'] ?? 0) >= 2, 'several append requests');
  t.true((s.requests['oauth2/token'] ?? 0) >= 2, 'tokens were refreshed during the upload');
  // And back: the pulled bytes are the image's.
  const p = await runCli(['pull', img.large.uri], { home, emu, token: null, env, timeoutMs: GUARD_MS });
  assertOk(t, p);
  t.is(await sha256File(path.join(storageOf(home), 'pusheen-large:x.simg')), img.large.sha256);
});

test('a token read from a CRLF file (tok\\r), or with spaces around it: trimmed, and it works', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  for (const token of [`${emu.token}\r`, ` ${emu.token}\r\n`, `\t${emu.token} `]) {
    const r = await runCli(['search'], { home, emu, token });
    t.is(r.code, 0, r.stderr);
    t.true(r.stdout.includes(CONNECTED) || r.stderr === '', r.stdout);
  }
  // The same from the secrets file.
  const secrets = path.join(home, '.sregistry');
  await writeFile(secrets, JSON.stringify({ SREGISTRY_CLIENT: 'dropbox', dropbox: { SREGISTRY_DROPBOX_TOKEN: `${emu.token}\r\n` } }));
  assertOk(t, await runCli(['search'], { home, emu, token: null }));
});

test('a token with an inner control character: exit 2, says which character and where, never shows the token', async (t) => {
  const home = await tempHome(t);
  const secret = 'sl.secretpart-abcdef';
  for (const token of [`${secret.slice(0, 6)}\r${secret.slice(6)}`, `${secret.slice(0, 6)}\u0001${secret.slice(6)}`, `${secret.slice(0, 6)} ${secret.slice(6)}`]) {
    const r = await runCli(['search'], { home, token });
    assertError(t, r, 2, /SREGISTRY_DROPBOX_TOKEN contains (a control character \(U\+00(0D|01)\)|a space) at position 7 of 21/);
    t.false(r.stderr.includes(secret.slice(0, 6)) || r.stderr.includes(secret.slice(6)), r.stderr);
  }
});

for (const [what, status, type, body] of [
  ['{garbage]', 200, 'application/json', '{garbage]'],
  ['an HTML page', 200, 'text/html', '<!DOCTYPE html><html><body>Log in to the Wi-Fi</body></html>'],
  ['JSON without the expected fields', 200, 'application/json', '{"hello": "world"}'],
] as const) {
  test(`an endpoint that answers ${what}: exit 5, "answered something that is not the API"`, async (t) => {
    const url = await fakeEndpoint(t, status, type, body);
    const home = await tempHome(t);
    const r = await runCli(['search'], { home, token: 'tok-abc', env: { SREGISTRY_DROPBOX_ENDPOINT: url } });
    assertError(t, r, 5, /Dropbox \(http:\/\/127\.0\.0\.1:\d+\) answered something that is not the API \(users\/get_current_account: /);
    t.notRegex(r.stderr, /TypeError|Cannot read properties/);
    t.false(r.stderr.includes('tok-abc'));
  });
}

test('push of a 3 GiB (sparse) image with 1 GB of quota left: exit 5 at once, says how much is needed and free', async (t) => {
  const emu = await startCliEmulator(t, ['--quota', '1G']);
  const home = await tempHome(t);
  const big = path.join(home, 'big.sif');
  await copyFile(img.red.file, big);
  await truncate(big, 3 * 1024 ** 3);
  const r = await runCli(['push', '--name', 'pusheen/big:x', big], { home, emu, timeoutMs: GUARD_MS });
  assertError(t, r, 5, /not enough space in Dropbox for \/pusheen\/big:x\.simg: it needs 3\.22 GB, 1\.00 GB of 1\.00 GB is free \(nothing was sent\): free some space in your Dropbox/);
  const s = await stats(emu);
  t.is(s.requests['files/upload_session/start'], undefined, 'no upload started');
  t.true(s.bytesReceived < 100_000, `received ${s.bytesReceived} bytes`);
});
