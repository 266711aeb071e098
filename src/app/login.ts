/**
 * `sreg backend login dropbox`: the OAuth 2 PKCE flow for a long-lived refresh token. Prints
 * the authorize URL, reads the code the user pastes, exchanges it (code_verifier, no secret),
 * and stores the refresh token and app key in the secrets file (mode 0600).
 */
import { createHash, randomBytes } from 'node:crypto';
import { endpointFetch } from '../dropbox/endpoint.js';
import { RemoteError } from '../dropbox/errors.js';
import { updateSecrets } from '../config/secrets.js';
import { ConfigError, type Config } from '../config/index.js';

export interface LoginIo {
  say(line: string): void;
  ask(prompt: string): Promise<string>;
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(48).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export async function login(config: Config, appKeyArg: string | undefined, io: LoginIo): Promise<{ refreshToken: string; accessToken: string }> {
  const appKey = appKeyArg ?? config.appKey;
  if (!appKey) throw new ConfigError('login needs the Dropbox app key: pass --app-key KEY or set SREGISTRY_DROPBOX_APP_KEY');
  const { verifier, challenge } = pkcePair();
  const authorize = new URL('/oauth2/authorize', config.endpoint ?? 'https://www.dropbox.com');
  authorize.search = new URLSearchParams({
    client_id: appKey,
    response_type: 'code',
    token_access_type: 'offline',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  io.say('1. Open this address in a browser and allow access:');
  io.say(`   ${authorize.toString()}`);
  const code = (await io.ask('2. Paste the code Dropbox shows you: ')).trim();
  if (!code) throw new ConfigError('no code was entered: run `sreg backend login dropbox` again');
  const fetch = endpointFetch(config.endpoint, config.timeoutMs);
  let res;
  try {
    res = await fetch('https://api.dropboxapi.com/oauth2/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, client_id: appKey, code_verifier: verifier }).toString(),
    });
  } catch (e) {
    throw new RemoteError('network', 'oauth2/token', `cannot reach Dropbox to finish the login (${(e as Error).message})`);
  }
  const body = (await res.json().catch(() => ({}))) as { refresh_token?: string; access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !body.refresh_token || !body.access_token) {
    throw new RemoteError('auth', 'oauth2/token', `Dropbox refused the code (${body.error ?? `HTTP ${res.status}`}${body.error_description ? `: ${body.error_description}` : ''}): run the login again and paste a fresh code`);
  }
  const refreshToken = body.refresh_token;
  await updateSecrets(config.secretsFile, (s) => {
    const dropbox = (s.dropbox && typeof s.dropbox === 'object' ? s.dropbox : {}) as Record<string, unknown>;
    dropbox.SREGISTRY_DROPBOX_REFRESH_TOKEN = refreshToken;
    dropbox.SREGISTRY_DROPBOX_APP_KEY = appKey;
    // An old access token would be used before the refresh token; it is replaced by it.
    delete dropbox.SREGISTRY_DROPBOX_TOKEN;
    s.dropbox = dropbox;
  });
  return { refreshToken, accessToken: body.access_token };
}
