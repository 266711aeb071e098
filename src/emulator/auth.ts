/**
 * Access tokens, refresh tokens and the OAuth 2 endpoints (dropbox-api.md §7).
 * Tokens are stored as SHA-256 digests: the database never holds a usable secret, and no
 * token is ever written to a log or an error message.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import { authError, HttpError } from './errors.js';

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const SYNTAX = /^[A-Za-z0-9._~+/=-]+$/;

export interface AuthOptions {
  appKey: string;
  appSecret?: string;
  nowMs: () => number;
  tokenTtlSec: () => number;
}

interface TokenRow {
  token_sha256: string;
  kind: 'access' | 'refresh';
  expires_at: number | null;
  revoked: 0 | 1;
  parent_sha256: string | null;
  pkce: 0 | 1;
}

export class Auth {
  private readonly st;

  constructor(
    private readonly db: Database.Database,
    private readonly opts: AuthOptions,
  ) {
    this.st = {
      get: db.prepare('SELECT * FROM tokens WHERE token_sha256 = ?'),
      put: db.prepare(`INSERT INTO tokens (token_sha256, kind, expires_at, parent_sha256, pkce) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (token_sha256) DO UPDATE SET kind = excluded.kind, expires_at = excluded.expires_at, revoked = 0`),
      revoke: db.prepare('UPDATE tokens SET revoked = 1 WHERE token_sha256 = ? OR parent_sha256 = ?'),
      expireAll: db.prepare("UPDATE tokens SET expires_at = ? WHERE kind = 'access'"),
      putCode: db.prepare(`INSERT INTO auth_codes (code, client_id, challenge, redirect_uri, offline, expires_at)
        VALUES (?, ?, ?, ?, ?, ?)`),
      takeCode: db.prepare('DELETE FROM auth_codes WHERE code = ? RETURNING *'),
    };
  }

  /** Registers a long-lived access token (`--token`), optionally expiring after ttl. */
  addAccessToken(token: string, ttlSec?: number): void {
    this.st.put.run(sha256(token), 'access', ttlSec ? this.opts.nowMs() + ttlSec * 1000 : null, null, 0);
  }

  addRefreshToken(token: string): void {
    this.st.put.run(sha256(token), 'refresh', null, null, 0);
  }

  expireAllAccessTokens(): void {
    this.st.expireAll.run(this.opts.nowMs() - 1000);
  }

  /**
   * Checks an `Authorization` value for an API route. Missing or malformed → 400 plain text;
   * unknown or revoked → 401 invalid_access_token; expired → 401 expired_access_token.
   */
  check(route: string, authorization: string | undefined): string {
    const where = `Error in call to API function "${route}": `;
    if (authorization === undefined || authorization === '') {
      throw new HttpError(400, `${where}Must provide HTTP header "Authorization" or URL parameter "authorization".`);
    }
    const m = /^Bearer (.*)$/.exec(authorization);
    if (!m?.[1] || !SYNTAX.test(m[1])) {
      throw new HttpError(
        400,
        `${where}Invalid authorization value in HTTP header "Authorization". Expecting "Bearer <oauth2-access-token>".`,
      );
    }
    const row = this.st.get.get(sha256(m[1])) as TokenRow | undefined;
    if (!row || row.kind !== 'access' || row.revoked) throw authError('invalid_access_token');
    if (row.expires_at !== null && row.expires_at <= this.opts.nowMs()) throw authError('expired_access_token');
    return row.token_sha256;
  }

  /**
   * Checks HTTP Basic app authentication (`check/app`): the app key and secret. Missing or not
   * Basic → 400 plain text; a wrong key or secret, or a PKCE app (no secret) → 401.
   */
  checkApp(route: string, authorization: string | undefined): void {
    const where = `Error in call to API function "${route}": `;
    if (authorization === undefined || authorization === '') {
      throw new HttpError(400, `${where}Must provide HTTP header "Authorization" or URL parameter "authorization".`);
    }
    const m = /^Basic ([A-Za-z0-9+/=]+)$/.exec(authorization);
    if (!m?.[1]) {
      throw new HttpError(400, `${where}Invalid authorization value in HTTP header "Authorization". Expecting "Basic <app key and secret>".`);
    }
    const [key, ...secret] = Buffer.from(m[1], 'base64').toString().split(':');
    if (this.opts.appSecret === undefined || key !== this.opts.appKey || secret.join(':') !== this.opts.appSecret) {
      throw authError('invalid_access_token');
    }
  }

  revoke(tokenSha: string): void {
    const row = this.st.get.get(tokenSha) as TokenRow | undefined;
    this.st.revoke.run(tokenSha, tokenSha);
    if (row?.parent_sha256) this.st.revoke.run(row.parent_sha256, row.parent_sha256);
  }

  private issueAccess(parentSha: string | null): { access_token: string; expires_in: number } {
    const token = `sl.${randomBytes(48).toString('base64url')}`;
    const ttl = this.opts.tokenTtlSec();
    this.st.put.run(sha256(token), 'access', this.opts.nowMs() + ttl * 1000, parentSha, 0);
    return { access_token: token, expires_in: ttl };
  }

  /** GET /oauth2/authorize: auto-approves, as a logged-in user clicking "Allow" would. */
  authorize(q: URLSearchParams): { redirect?: string; code: string } {
    const clientId = q.get('client_id');
    if (clientId !== this.opts.appKey) throw oauthError('invalid_client', 'unknown client_id');
    if (q.get('response_type') !== 'code') throw oauthError('unsupported_response_type', 'response_type must be code');
    const challenge = q.get('code_challenge');
    const method = q.get('code_challenge_method');
    if (challenge && method !== 'S256' && method !== 'plain') throw oauthError('invalid_request', 'code_challenge_method must be S256 or plain');
    if (!challenge && !this.opts.appSecret) throw oauthError('invalid_request', 'this app has no secret: PKCE (code_challenge) is required');
    const code = randomBytes(24).toString('base64url');
    const stored = challenge ? (method === 'plain' ? sha256b64(challenge) : challenge) : null;
    this.st.putCode.run(code, clientId, stored, q.get('redirect_uri'), q.get('token_access_type') === 'offline' ? 1 : 0, this.opts.nowMs() + 600_000);
    const redirectUri = q.get('redirect_uri');
    if (!redirectUri) return { code };
    const target = new URL(redirectUri);
    target.searchParams.set('code', code);
    const state = q.get('state');
    if (state) target.searchParams.set('state', state);
    return { redirect: target.toString(), code };
  }

  /** POST /oauth2/token: params from the query string, a form body, or HTTP Basic. */
  token(params: URLSearchParams, basic: { user: string; pass: string } | undefined): Record<string, unknown> {
    const clientId = params.get('client_id') ?? basic?.user;
    const clientSecret = params.get('client_secret') ?? basic?.pass ?? undefined;
    if (clientId !== this.opts.appKey) throw oauthError('invalid_client', 'Invalid client_id or client_secret');
    if (clientSecret !== undefined && !(this.opts.appSecret && safeEqual(clientSecret, this.opts.appSecret))) {
      throw oauthError('invalid_client', 'Invalid client_id or client_secret');
    }
    const grant = params.get('grant_type');
    if (grant === 'refresh_token') {
      const refresh = params.get('refresh_token');
      if (!refresh) throw oauthError('invalid_request', 'No refresh_token given');
      if (!SYNTAX.test(refresh)) throw oauthError('invalid_grant', 'refresh token is malformed');
      const row = this.st.get.get(sha256(refresh)) as TokenRow | undefined;
      if (!row || row.kind !== 'refresh' || row.revoked) throw oauthError('invalid_grant', 'refresh token is invalid or revoked');
      if (this.opts.appSecret && !row.pkce && clientSecret === undefined) throw oauthError('invalid_client', 'No client_secret given');
      return { ...this.issueAccess(row.token_sha256), token_type: 'bearer' };
    }
    if (grant === 'authorization_code') {
      const code = params.get('code');
      const row = code
        ? (this.st.takeCode.get(code) as { client_id: string; challenge: string | null; redirect_uri: string | null; offline: number; expires_at: number } | undefined)
        : undefined;
      if (!row || row.expires_at < this.opts.nowMs()) throw oauthError('invalid_grant', 'code doesn\'t exist or has expired');
      if ((row.redirect_uri ?? null) !== (params.get('redirect_uri') ?? null)) throw oauthError('invalid_grant', 'redirect_uri mismatch');
      const verifier = params.get('code_verifier');
      if (row.challenge) {
        if (!verifier || !safeEqual(sha256b64(verifier), row.challenge)) throw oauthError('invalid_grant', 'invalid code verifier');
      } else if (clientSecret === undefined) {
        throw oauthError('invalid_client', 'No client_secret given');
      }
      const result: Record<string, unknown> = { token_type: 'bearer', scope: SCOPES, account_id: '', uid: '1' };
      let parent: string | null = null;
      if (row.offline) {
        const refresh = randomBytes(48).toString('base64url');
        parent = sha256(refresh);
        this.st.put.run(parent, 'refresh', null, null, row.challenge ? 1 : 0);
        result.refresh_token = refresh;
      }
      return { ...result, ...this.issueAccess(parent) };
    }
    throw oauthError('unsupported_grant_type', `grant_type must be refresh_token or authorization_code`);
  }
}

export const SCOPES = 'account_info.read files.content.read files.content.write files.metadata.read sharing.read sharing.write';

function sha256b64(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function oauthError(error: string, description: string): HttpError {
  return new HttpError(400, { error, error_description: description });
}
