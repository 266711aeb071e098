/**
 * `sreg backend …` (activate, status, deactivate, login with PKCE) and `sreg shell`, as a user
 * runs them: the secrets file they write (~/.sregistry, mode 0600), the seed's status lines,
 * the login's authorize URL followed with fetch and its code typed into stdin, and a REPL fed
 * from a pipe.
 */
import test from 'ava';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  assertError,
  assertOk,
  banner,
  CONNECTED,
  lines,
  runCli,
  spawnCli,
  startCliEmulator,
  tempHome,
} from '../helpers/cli.js';

const secretsOf = (home: string): string => path.join(home, '.sregistry');
const readSecrets = async (home: string): Promise<Record<string, any>> => JSON.parse(await readFile(secretsOf(home), 'utf8')) as Record<string, any>;
const modeOf = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;

test('backend activate dropbox writes ~/.sregistry (0600); status shows the seed lines; deactivate undoes it', async (t) => {
  const home = await tempHome(t);
  // Something already in the file must survive both commands.
  await writeFile(secretsOf(home), JSON.stringify({ dropbox: { SREGISTRY_DROPBOX_APP_KEY: 'kept' } }), { mode: 0o644 });

  const act = await runCli(['backend', 'activate', 'dropbox'], { home });
  assertOk(t, act);
  t.is(act.stdout, '[activate] dropbox\n');
  t.is(await modeOf(secretsOf(home)), 0o600);
  const after = await readSecrets(home);
  t.deepEqual(after, { dropbox: { SREGISTRY_DROPBOX_APP_KEY: 'kept' }, SREGISTRY_CLIENT: 'dropbox' });

  const status = await runCli(['backend', 'status'], { home });
  assertOk(t, status);
  t.deepEqual(lines(status.stdout).slice(0, 3), [
    '[backend status]',
    `There are ${Object.keys(after).length} clients found in secrets.`,
    'active: dropbox',
  ]);

  const de = await runCli(['backend', 'deactivate'], { home });
  assertOk(t, de);
  t.deepEqual(await readSecrets(home), { dropbox: { SREGISTRY_DROPBOX_APP_KEY: 'kept' } });
  t.is(await modeOf(secretsOf(home)), 0o600);
  const status2 = await runCli(['backend', 'status'], { home });
  assertOk(t, status2);
  t.false(lines(status2.stdout).includes('active: dropbox'));
});

test('backend activate on a fresh HOME creates ~/.sregistry with mode 0600', async (t) => {
  const home = await tempHome(t);
  assertOk(t, await runCli(['backend', 'activate', 'dropbox'], { home }));
  t.is(await modeOf(secretsOf(home)), 0o600);
  t.deepEqual(await readSecrets(home), { SREGISTRY_CLIENT: 'dropbox' });
});

test('backend activate s3: exit 2, says sreg is the Dropbox client, writes nothing', async (t) => {
  const home = await tempHome(t);
  const r = await runCli(['backend', 'activate', 's3'], { home });
  assertError(t, r, 2, /'s3'.*dropbox/);
  await t.throwsAsync(stat(secretsOf(home)), { code: 'ENOENT' });
});

test('backend login dropbox (PKCE): URL on stderr, code on stdin; then search works with no SREGISTRY_DROPBOX_TOKEN', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const login = spawnCli(['backend', 'login', 'dropbox', '--app-key', 'sreg-emulator'], { home, emu, token: null, timeoutMs: 30_000 });

  const authorizeUrl = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /(https?:\/\/\S+\/oauth2\/authorize\?\S+)/.exec(login.stderr());
      if (m?.[1]) {
        clearInterval(timer);
        resolve(m[1]);
      }
    }, 50);
    void login.done.then(
      (r) => {
        clearInterval(timer);
        reject(new Error(`login exited (${r.code}) before printing a URL: ${r.stderr}`));
      },
      (e: Error) => {
        clearInterval(timer);
        reject(e);
      },
    );
  });
  const url = new URL(authorizeUrl);
  t.is(url.origin, emu.url, 'the authorize page is on the endpoint');
  t.is(url.searchParams.get('code_challenge_method'), 'S256');
  t.is(url.searchParams.get('token_access_type'), 'offline');

  const page = await (await fetch(authorizeUrl)).text();
  const code = /code into your app: ([A-Za-z0-9_-]+)/.exec(page)?.[1];
  t.truthy(code, page);
  login.child.stdin.end(`${code}\n`);
  const r = await login.done;
  t.is(r.code, 0, r.stderr);

  t.is(await modeOf(secretsOf(home)), 0o600);
  const secrets = await readSecrets(home);
  t.is(typeof secrets.dropbox?.SREGISTRY_DROPBOX_REFRESH_TOKEN, 'string');
  t.true((secrets.dropbox?.SREGISTRY_DROPBOX_REFRESH_TOKEN as string).length > 0);
  t.is(secrets.dropbox?.SREGISTRY_DROPBOX_APP_KEY, 'sreg-emulator');
  t.false(page.includes(secrets.dropbox?.SREGISTRY_DROPBOX_REFRESH_TOKEN as string), 'the refresh token came from the exchange');

  const search = await runCli(['search'], { home, emu, token: null });
  assertOk(t, search);
  t.deepEqual(lines(search.stdout).slice(0, 2), [banner(home), CONNECTED]);
  const s = await emu.admin<{ requests: Record<string, number> }>('GET', '/stats');
  t.true((s.requests['oauth2/token'] ?? 0) >= 2, `the code exchange and a refresh: ${JSON.stringify(s.requests)}`);
});

test('shell: a REPL with a connected client, fed from a pipe', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const r = await runCli(['shell'], { home, emu, stdin: "client.currentAccount().then(a => console.log('NAME=' + a.displayName))\n", timeoutMs: 30_000 });
  t.is(r.code, 0, r.stderr);
  t.is(lines(r.stdout)[0], banner(home));
  t.regex(r.stdout, /^(sreg> )*NAME=Vanessa S$/m, 'the line the REPL printed (after its prompt)');
});

test('shell s3: exit 2', async (t) => {
  const home = await tempHome(t);
  assertError(t, await runCli(['shell', 's3'], { home }), 2, /'s3'.*dropbox/i);
});
