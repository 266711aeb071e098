/**
 * Access tokens for every call. A fixed token is used as it is. With a refresh token (and app
 * key, and secret for non-PKCE apps) a new access token is fetched before the old one is
 * within 5 minutes of expiry and after a 401 `expired_access_token` — once for all concurrent
 * callers (single flight), never in parallel. Tokens never appear in errors or logs.
 */
import { RemoteError } from './errors.js';
import type { FetchLike } from './endpoint.js';

export interface Credentials {
  accessToken?: string;
  refreshToken?: string;
  appKey?: string;
  appSecret?: string;
}

const EARLY_REFRESH_MS = 5 * 60 * 1000;
const TOKEN_URL = 'https://api.dropboxapi.com/oauth2/token';

export class TokenSource {
  private token: string | undefined;
  private expiresAtMs = Infinity;
  private inflight: Promise<string> | undefined;
  /** How long before expiry a token is replaced: 5 minutes, or half of a short-lived token's life. */
  private earlyMs = EARLY_REFRESH_MS;

  constructor(
    private readonly creds: Credentials,
    private readonly fetch: FetchLike,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.token = creds.accessToken;
    if (!creds.accessToken && !creds.refreshToken) {
      throw new RemoteError('auth', 'auth', 'no Dropbox token: set SREGISTRY_DROPBOX_TOKEN, or run `sreg backend login dropbox`');
    }
    if (creds.refreshToken && !creds.appKey) {
      throw new RemoteError('auth', 'auth', 'a refresh token needs the app key: set SREGISTRY_DROPBOX_APP_KEY');
    }
    // A given access token with a refresh token: its expiry is unknown, so refresh on first use.
    if (creds.refreshToken) this.expiresAtMs = creds.accessToken ? this.nowMs() + EARLY_REFRESH_MS + 1 : 0;
  }

  get canRefresh(): boolean {
    return this.creds.refreshToken !== undefined;
  }

  async get(): Promise<string> {
    if (this.token && (!this.canRefresh || this.nowMs() < this.expiresAtMs - this.earlyMs)) return this.token;
    return this.refresh();
  }

  /**
   * After a 401 expired_access_token on a call that sent `usedToken`. Concurrent callers that
   * all saw the same token expire share one refresh; one that sent a token already replaced
   * just retries with the new one.
   */
  async expired(usedToken?: string): Promise<void> {
    if (!this.canRefresh) {
      throw new RemoteError('auth', 'auth', 'the Dropbox access token has expired: set a new SREGISTRY_DROPBOX_TOKEN, or use a refresh token (`sreg backend login dropbox`)');
    }
    if (this.inflight) {
      await this.inflight;
      return;
    }
    if (usedToken !== undefined && this.token !== undefined && usedToken !== this.token) return;
    this.expiresAtMs = 0;
    await this.refresh();
  }

  private refresh(): Promise<string> {
    this.inflight ??= this.doRefresh().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async doRefresh(): Promise<string> {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.creds.refreshToken!, client_id: this.creds.appKey! });
    if (this.creds.appSecret) form.set('client_secret', this.creds.appSecret);
    let res;
    try {
      res = await this.fetch(TOKEN_URL, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
    } catch (e) {
      throw new RemoteError('network', 'oauth2/token', `cannot reach Dropbox to refresh the access token (${(e as Error).message})`, { cause: e });
    }
    const text = await res.text();
    let body: { access_token?: string; expires_in?: number; error?: string; error_description?: string } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      /* not JSON: reported below */
    }
    if (!res.ok || !body.access_token) {
      if (res.status >= 500) throw new RemoteError('server', 'oauth2/token', `Dropbox could not refresh the access token (HTTP ${res.status})`);
      const why = body.error ? `${body.error}${body.error_description ? `: ${body.error_description}` : ''}` : `HTTP ${res.status}`;
      throw new RemoteError('auth', 'oauth2/token', `the refresh token was refused (${why}): run \`sreg backend login dropbox\` again`, { status: res.status });
    }
    this.token = body.access_token;
    const lifeMs = (body.expires_in ?? 14400) * 1000;
    this.earlyMs = Math.min(EARLY_REFRESH_MS, lifeMs / 2);
    this.expiresAtMs = this.nowMs() + lifeMs;
    return this.token;
  }
}
