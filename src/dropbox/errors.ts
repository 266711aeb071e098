/**
 * Every failure of a Dropbox call ends as a RemoteError with a stable `code`, the route it
 * happened on, and whether trying again can help. The CLI maps codes to messages and exit
 * codes; the mount maps them to errno. Nothing here includes a token.
 */
export type RemoteErrorCode =
  | 'not_found'
  | 'conflict'
  | 'auth'
  | 'auth_expired'
  | 'rate_limited'
  | 'network'
  | 'server'
  | 'insufficient_space'
  | 'content_hash_mismatch'
  | 'reset'
  | 'bad_request'
  | 'api';

export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  constructor(
    readonly code: RemoteErrorCode,
    readonly route: string,
    message: string,
    readonly opts: { status?: number; retryAfterMs?: number; tags?: string[]; detail?: unknown; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
  }

  get retryable(): boolean {
    return this.code === 'rate_limited' || this.code === 'network' || this.code === 'server' || this.code === 'auth_expired';
  }

  get tags(): string[] {
    return this.opts.tags ?? [];
  }

  /** `correct_offset` of an `incorrect_offset` error, flat or under `lookup_failed`. */
  get correctOffset(): number | undefined {
    const d = this.opts.detail as { correct_offset?: unknown; lookup_failed?: { correct_offset?: unknown } } | undefined;
    const v = d?.correct_offset ?? d?.lookup_failed?.correct_offset;
    return typeof v === 'number' ? v : undefined;
  }
}

/** The tag chain of a Dropbox error union, nested or inlined (`path/conflict/file`). */
/** Metadata structs (file/folder/link) carry `.tag` too, but are not part of an error's tag chain. */
function isMetadata(v: object): boolean {
  return 'path_lower' in v || 'url' in v || 'id' in v;
}

export function tagChain(value: unknown): string[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [];
  const obj = value as Record<string, unknown>;
  const tag = obj['.tag'];
  if (typeof tag !== 'string') {
    for (const v of Object.values(obj)) {
      const inner = tagChain(v);
      if (inner.length) return inner;
    }
    return [];
  }
  const nested = obj[tag];
  if (nested && typeof nested === 'object') return [tag, ...(isMetadata(nested) ? [] : tagChain(nested))];
  for (const [k, v] of Object.entries(obj)) {
    if (k === '.tag') continue;
    const inner = tagChain(v);
    if (inner.length) return [tag, ...inner];
  }
  return [tag];
}

/** Where a request stalled: no connection, no answer (headers), or a pause inside the answer body. */
export type StallPhase = 'connect' | 'headers' | 'body';

const PHASE_WORDS: Record<StallPhase, string> = {
  connect: 'did not accept the connection',
  headers: 'did not start answering',
  body: 'stopped sending its answer',
};

/** A request that stalled past the timeout (SREGISTRY_DROPBOX_TIMEOUT): a network error, retried a few times. */
export class StallError extends Error {
  override readonly name = 'StallError';
  readonly code = 'SREG_STALLED';
  constructor(
    readonly phase: StallPhase,
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(`${PHASE_WORDS[phase]} within ${timeoutMs / 1000} s`, options);
  }
}

export function isStall(e: unknown): boolean {
  const err = e as { code?: string; type?: string; cause?: unknown };
  if (!err || typeof err !== 'object') return false;
  if (err.code === 'SREG_STALLED' || err.type === 'request-timeout' || err.type === 'body-timeout') return true;
  return err.cause !== undefined && err.cause !== e && isStall(err.cause);
}

/** An answer that is not Dropbox's API (a captive portal's HTML, a proxy's page, broken JSON, missing fields). */
export function notTheApi(route: string, what: string, endpointLabel = 'Dropbox'): RemoteError {
  const who = endpointLabel === 'Dropbox' ? 'Dropbox' : `Dropbox (${endpointLabel})`;
  return new RemoteError('api', route, `${who} answered something that is not the API (${route}: ${what})`);
}

/** A short, printable description of an unexpected answer body. */
export function describeBody(body: unknown): string {
  if (typeof body === 'string') {
    const t = body.trim();
    if (t === '') return 'an empty answer';
    if (/^<(!doctype|html)/i.test(t)) return 'an HTML page';
    return `'${t.slice(0, 40).replace(/[^\x20-\x7e]/g, '?')}${t.length > 40 ? '…' : ''}' is not JSON`;
  }
  if (body === null || typeof body !== 'object') return `${JSON.stringify(body)} is not a JSON object`;
  return 'JSON without the expected fields';
}

const NETWORK_CODES = new Set([
  'SREG_STALLED',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'ECONNABORTED',
]);

/** A transport failure (no HTTP answer, or an answer cut short)? */
/** OpenSSL's and Node's codes for a server certificate that is not trusted or not for that host. */
const CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH',
]);

/** "what is wrong, CODE" when `e` (or its cause) is a refused server certificate, else undefined. */
export function untrustedCertificate(e: unknown, depth = 0): string | undefined {
  const err = e as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
  if (!err || typeof err !== 'object' || depth > 4) return undefined;
  if (typeof err.code === 'string' && CERTIFICATE_CODES.has(err.code)) {
    // node-fetch's message is "request to URL failed, reason: WHY"; the socket's is WHY.
    const why = typeof err.message === 'string' ? err.message.replace(/^.*reason: /, '') : '';
    return `${why || 'refused'}, ${err.code}`;
  }
  return err.cause !== e ? untrustedCertificate(err.cause, depth + 1) : undefined;
}

export function isNetworkError(e: unknown): boolean {
  const err = e as { code?: string; type?: string; message?: string; cause?: unknown };
  if (!err || typeof err !== 'object') return false;
  if (err.code && NETWORK_CODES.has(err.code)) return true;
  if (err.type === 'system' || err.type === 'request-timeout' || err.type === 'body-timeout') return true;
  if (err.message === 'aborted' || err.message === 'socket hang up' || /premature close/i.test(err.message ?? '')) return true;
  return err.cause !== undefined && err.cause !== e && isNetworkError(err.cause);
}

/** Seconds from a Retry-After header, or from a RateLimitError body. */
function retryAfterMs(header: string | null | undefined, body: unknown): number | undefined {
  const h = header ? Number(header) : NaN;
  if (Number.isFinite(h) && h >= 0) return h * 1000;
  const b = (body as { error?: { retry_after?: unknown } } | undefined)?.error?.retry_after;
  return typeof b === 'number' ? b * 1000 : undefined;
}

/**
 * Classifies an HTTP answer that was not a success. `body` is the parsed JSON envelope when
 * there was one, or the text.
 */
export function fromHttp(route: string, status: number, body: unknown, retryAfterHeader?: string | null): RemoteError {
  const envelopeError = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
  const tags = tagChain(envelopeError);
  const summary = tags.join('/');
  const where = `Dropbox ${route}`;
  const retryAfter = retryAfterMs(retryAfterHeader, body);
  if (status === 400) {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    return new RemoteError('bad_request', route, `${where} refused the request (400): ${text.slice(0, 300)}`, { status });
  }
  if (status === 401) {
    if (tags[0] === 'expired_access_token') {
      return new RemoteError('auth_expired', route, `${where}: the access token has expired`, { status, tags });
    }
    return new RemoteError('auth', route, `${where}: the token was refused (${summary || 'unauthorized'})`, { status, tags });
  }
  if (status === 429) {
    return new RemoteError('rate_limited', route, `${where}: rate limited (${summary || 'too_many_requests'})`, {
      status,
      tags,
      retryAfterMs: retryAfter,
    });
  }
  if (status >= 500) return new RemoteError('server', route, `${where}: server error ${status}`, { status });
  if (status === 409) {
    if (tags.includes('too_many_write_operations')) {
      return new RemoteError('rate_limited', route, `${where}: too many write operations (${summary})`, { status, tags, retryAfterMs: retryAfter });
    }
    if (tags[0] === 'reset') return new RemoteError('reset', route, `${where}: the cursor was reset`, { status, tags });
    if (tags.includes('not_found')) return new RemoteError('not_found', route, `${where}: not found (${summary})`, { status, tags });
    if (tags.includes('conflict')) return new RemoteError('conflict', route, `${where}: something is already there (${summary})`, { status, tags });
    if (tags.includes('insufficient_space') || tags.includes('insufficient_quota')) {
      return new RemoteError('insufficient_space', route, `${where}: the Dropbox account is full (${summary})`, { status, tags });
    }
    if (tags.includes('content_hash_mismatch')) {
      return new RemoteError('content_hash_mismatch', route, `${where}: content hash mismatch`, { status, tags });
    }
    return new RemoteError('api', route, `${where} failed: ${summary || 'conflict'}`, { status, tags, detail: envelopeError });
  }
  return new RemoteError('api', route, `${where} failed with HTTP ${status}`, { status, tags });
}

/** Turns anything thrown by a call (SDK error, fetch error, RemoteError) into a RemoteError. */
export function classify(route: string, e: unknown, endpointLabel = 'Dropbox'): RemoteError {
  if (e instanceof RemoteError) return e;
  const sdk = e as { status?: unknown; error?: unknown; headers?: { get?: (k: string) => string | null } };
  if (typeof sdk?.status === 'number') {
    return fromHttp(route, sdk.status, sdk.error, sdk.headers?.get?.('retry-after'));
  }
  if (isStall(e)) {
    const type = (e as { type?: string }).type ?? (e as { cause?: { type?: string } }).cause?.type;
    const why = e instanceof StallError ? e.message : type === 'body-timeout' ? 'stopped sending its answer in time' : 'did not start answering in time';
    const who = endpointLabel === 'Dropbox' ? 'Dropbox' : `Dropbox (${endpointLabel})`;
    return new RemoteError('network', route, `${who} ${why} during ${route}`, { cause: e });
  }
  const cert = untrustedCertificate(e);
  if (cert) {
    // Not retried: it will not trust the certificate any better in a second.
    return new RemoteError('api', route, `cannot trust the TLS certificate of ${endpointLabel} (${cert}) during ${route}: if a proxy or your site signs it, point NODE_EXTRA_CA_CERTS at that CA's certificate (a PEM file)`, { cause: e });
  }
  if (isNetworkError(e)) {
    const code = (e as { code?: string }).code ?? (e as { cause?: { code?: string } }).cause?.code;
    const why = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'host not found' : (code ?? (e as Error).message);
    return new RemoteError('network', route, `cannot reach ${endpointLabel} (${why}) during ${route}`, { cause: e });
  }
  return new RemoteError('api', route, `Dropbox ${route} failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

/** A local failure (disk full, read-only folder) during a transfer: never retried, never relabelled. */
export class LocalError extends Error {
  override readonly name = 'LocalError';
  constructor(
    message: string,
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Wraps an fs error with the path and what we were doing, in words a person understands. */
export function localError(doing: string, file: string, e: unknown): LocalError {
  const code = (e as { code?: string }).code;
  const why =
    code === 'ENOSPC' ? 'no space left on the device'
    : code === 'EDQUOT' ? 'disk quota exceeded'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EROFS' ? 'the file system is read-only'
    : code === 'ENOENT' ? 'no such file or folder'
    : code === 'EISDIR' ? 'it is a folder'
    : (e as Error).message;
  return new LocalError(`cannot ${doing} ${file}: ${why}`, code, { cause: e });
}
