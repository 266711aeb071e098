/**
 * The emulator's error responses, shaped as the real service shapes them (dropbox-api.md §2):
 * 400 plain text, 401/409/429 JSON envelopes with an `error_summary` of tags joined by `/`,
 * a trailing `/` and 0–3 random dots (clients must never string-compare it).
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json | undefined };
export type Tagged = { '.tag': string; [k: string]: Json | undefined };

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string | Json,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body === 'string' ? body : JSON.stringify(body));
  }
}

/** 400 plain text: `Error in call to API function "<route>": <message>`. */
export function badRequest(route: string, message: string): HttpError {
  return new HttpError(400, `Error in call to API function "${route}": ${message}`);
}

/** The tag chain of a union value: nested (`{".tag":"path","path":{…}}`) or inlined struct. */
/** Metadata structs (file/folder/link) carry `.tag` too, but are not part of an error's tag chain. */
function isMetadata(v: object): boolean {
  return 'path_lower' in v || 'url' in v || 'id' in v;
}

function tagChain(value: Json | undefined): string[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [];
  const tag = value['.tag'];
  if (typeof tag !== 'string') {
    // RateLimitError: {reason: {.tag}, retry_after}
    for (const v of Object.values(value)) {
      const inner = tagChain(v);
      if (inner.length) return inner;
    }
    return [];
  }
  const nested = value[tag];
  if (nested && typeof nested === 'object') return [tag, ...(isMetadata(nested) ? [] : tagChain(nested))];
  for (const [k, v] of Object.entries(value)) {
    if (k === '.tag' || k === tag) continue;
    const inner = tagChain(v);
    if (inner.length) return [tag, ...inner];
  }
  return [tag];
}

export function errorSummary(error: Json): string {
  return `${tagChain(error).join('/')}/${'.'.repeat(Math.floor(Math.random() * 4))}`;
}

function envelope(error: Json): Json {
  return { error_summary: errorSummary(error), error };
}

/** 409: the route's error union. */
export function apiError(error: Tagged): HttpError {
  return new HttpError(409, envelope(error));
}

export type AuthErrorTag = 'invalid_access_token' | 'expired_access_token' | 'missing_scope' | 'route_access_denied';

export function authError(tag: AuthErrorTag): HttpError {
  return new HttpError(401, envelope({ '.tag': tag }));
}

export type RateLimitReason = 'too_many_requests' | 'too_many_write_operations';

export function rateLimited(reason: RateLimitReason, retryAfterSec: number, plainText = false): HttpError {
  const headers = { 'retry-after': String(retryAfterSec) };
  if (plainText) return new HttpError(429, 'Too Many Requests', headers);
  return new HttpError(429, envelope({ reason: { '.tag': reason }, retry_after: retryAfterSec }), headers);
}

/** LookupError / WriteError helpers, the building blocks of most 409s. */
export const lookup = (tag: 'not_found' | 'not_file' | 'not_folder' | 'malformed_path'): Tagged => ({ '.tag': tag });
export const conflict = (kind: 'file' | 'folder' | 'file_ancestor'): Tagged => ({
  '.tag': 'conflict',
  conflict: { '.tag': kind },
});
export const writeErr = (tag: 'malformed_path' | 'disallowed_name' | 'insufficient_space' | 'too_many_write_operations'): Tagged => ({
  '.tag': tag,
});

/**
 * A failure inside the namespace, raised before the route decides how to wrap it
 * (a LookupError under `path`, `path_lookup`, `from_lookup`, …; a WriteError under `path`, `to`, …).
 */
export class NamespaceError extends Error {
  constructor(
    readonly kind: 'lookup' | 'write',
    readonly error: Tagged,
  ) {
    super(`${kind}: ${error['.tag']}`);
  }
}
export const lookupFailed = (tag: Parameters<typeof lookup>[0]): NamespaceError => new NamespaceError('lookup', lookup(tag));
export const writeFailed = (error: Tagged): NamespaceError => new NamespaceError('write', error);

/** move_v2 / copy_v2 failures of their own (RelocationError): the route nests them under its tag. */
export class RelocationError extends Error {
  constructor(
    readonly tag: string,
    readonly inner?: Tagged,
  ) {
    super(tag);
  }
}
