/**
 * Client core, pure parts: chunk planning, backoff bounds, error classification and tag
 * chains, and the token source (construction errors, early refresh, single flight) with a
 * stub fetch. No emulator here.
 */
import test from 'ava';
import { Response } from 'node-fetch';
import { TokenSource } from '../../src/dropbox/auth.js';
import { DropboxClient } from '../../src/dropbox/client.js';
import { planChunks } from '../../src/dropbox/download.js';
import type { FetchLike } from '../../src/dropbox/endpoint.js';
import { classify, fromHttp, RemoteError, tagChain } from '../../src/dropbox/errors.js';
import { backoffMs, DEFAULT_RETRY } from '../../src/dropbox/retry.js';
import { BLOCK, MiB } from './helpers.js';

// ---------------------------------------------------------------- planChunks

const SIZES = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK, 8 * BLOCK + 1, 37 * MiB, 16 * MiB + 1, 100 * MiB + 3, 1000 * MiB + 7];

for (const workers of [1, 3, 4, 9]) {
  for (const perWorker of [undefined, 1, 2, 4]) {
    test(`planChunks: ${workers} workers × ${perWorker ?? 'default'} per worker — block-aligned, covers [0,size) once, balanced`, (t) => {
      for (const size of SIZES) {
        const chunks = planChunks(size, workers, perWorker);
        const blocks = Math.ceil(size / BLOCK);
        const want = Math.min(blocks, workers * (perWorker ?? 4));
        t.is(chunks.length, want, `size ${size}: chunk count`);
        let at = 0;
        for (const c of chunks) {
          t.is(c.start, at, `size ${size}: contiguous, no overlap, no gap`);
          t.is(c.start % BLOCK, 0, `size ${size}: start ${c.start} is block-aligned`);
          t.true(c.end > c.start, `size ${size}: non-empty chunk`);
          at = c.end;
        }
        t.is(at, size, `size ${size}: ends at the file's end`);
        // Every chunk but the last ends on a block boundary.
        for (const c of chunks.slice(0, -1)) t.is(c.end % BLOCK, 0);
        if (chunks.length) {
          const counts = chunks.map((c) => Math.ceil((c.end - c.start) / BLOCK));
          t.true(Math.max(...counts) - Math.min(...counts) <= 1, `size ${size}: block counts ${counts.join(',')} differ by at most one`);
        }
      }
    });
  }
}

test('planChunks: edge sizes give the exact chunks', (t) => {
  t.deepEqual(planChunks(0, 4), []);
  t.deepEqual(planChunks(1, 4), [{ start: 0, end: 1 }]);
  t.deepEqual(planChunks(BLOCK - 1, 4), [{ start: 0, end: BLOCK - 1 }]);
  t.deepEqual(planChunks(BLOCK, 4), [{ start: 0, end: BLOCK }]);
  t.deepEqual(planChunks(BLOCK + 1, 4), [
    { start: 0, end: BLOCK },
    { start: BLOCK, end: BLOCK + 1 },
  ]);
  t.deepEqual(planChunks(BLOCK + 1, 1, 1), [{ start: 0, end: BLOCK + 1 }]);
});

// ---------------------------------------------------------------- backoffMs

test('backoffMs: full jitter within [ceiling/2, ceiling], ceiling doubling up to maxDelayMs', (t) => {
  for (const o of [DEFAULT_RETRY, { baseDelayMs: 10, maxDelayMs: 1000 }, { baseDelayMs: 1, maxDelayMs: 1 }]) {
    for (let attempt = 1; attempt <= 30; attempt++) {
      const ceiling = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** (attempt - 1));
      for (let i = 0; i < 50; i++) {
        const d = backoffMs(attempt, o);
        t.true(Number.isInteger(d), `integer ms, got ${d}`);
        t.true(d >= Math.floor(ceiling / 2) && d <= ceiling, `attempt ${attempt}: ${d} not in [${ceiling / 2}, ${ceiling}]`);
        t.true(d <= o.maxDelayMs);
      }
    }
  }
});

test('backoffMs: jitter actually varies', (t) => {
  const seen = new Set(Array.from({ length: 100 }, () => backoffMs(5, { baseDelayMs: 100, maxDelayMs: 100_000 })));
  t.true(seen.size > 10);
});

// ---------------------------------------------------------------- fromHttp / classify

const env = (error: unknown, summary = 'x/..'): unknown => ({ error_summary: summary, error });

test('fromHttp: each status and tag maps to its code', (t) => {
  const R = 'files/upload';
  const cases: [number, unknown, string | undefined, RemoteError['code'], boolean][] = [
    [400, 'Error in call to API function "files/upload": bad', undefined, 'bad_request', false],
    [401, env({ '.tag': 'expired_access_token' }), undefined, 'auth_expired', true],
    [401, env({ '.tag': 'invalid_access_token' }), undefined, 'auth', false],
    [401, env({ '.tag': 'missing_scope', required_scope: 'files.content.write' }), undefined, 'auth', false],
    [403, env({ '.tag': 'no_permission' }), undefined, 'api', false],
    [422, env({ '.tag': 'invalid_root' }), undefined, 'api', false],
    [429, env({ reason: { '.tag': 'too_many_requests' }, retry_after: 1 }), '1', 'rate_limited', true],
    [429, 'too many requests', undefined, 'rate_limited', true],
    [500, 'oops', undefined, 'server', true],
    [502, '', undefined, 'server', true],
    [503, 'Injected 503', undefined, 'server', true],
    [504, '', undefined, 'server', true],
    [409, env({ '.tag': 'path', path: { '.tag': 'not_found' } }), undefined, 'not_found', false],
    [409, env({ '.tag': 'path_lookup', path_lookup: { '.tag': 'not_found' } }), undefined, 'not_found', false],
    [409, env({ '.tag': 'path', reason: { '.tag': 'conflict', conflict: { '.tag': 'file' } }, upload_session_id: 's' }), undefined, 'conflict', false],
    [409, env({ '.tag': 'to', to: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } }), undefined, 'conflict', false],
    [409, env({ '.tag': 'reset' }), undefined, 'reset', false],
    [409, env({ '.tag': 'path', reason: { '.tag': 'insufficient_space' }, upload_session_id: 's' }), undefined, 'insufficient_space', false],
    [409, env({ '.tag': 'insufficient_quota' }), undefined, 'insufficient_space', false],
    [409, env({ '.tag': 'content_hash_mismatch' }), undefined, 'content_hash_mismatch', false],
    [409, env({ '.tag': 'too_many_write_operations' }), '1', 'rate_limited', true],
    [409, env({ '.tag': 'path', reason: { '.tag': 'too_many_write_operations' }, upload_session_id: 's' }), undefined, 'rate_limited', true],
    [409, env({ '.tag': 'path_write', path_write: { '.tag': 'too_many_write_operations' } }), undefined, 'rate_limited', true],
    [409, env({ '.tag': 'incorrect_offset', correct_offset: 5 }), undefined, 'api', false],
    [409, env({ '.tag': 'other' }), undefined, 'api', false],
    [418, 'teapot', undefined, 'api', false],
  ];
  for (const [status, body, header, code, retryable] of cases) {
    const e = fromHttp(R, status, body, header);
    const what = `${status} ${JSON.stringify(body)}`;
    t.true(e instanceof RemoteError, what);
    t.is(e.code, code, what);
    t.is(e.retryable, retryable, what);
    t.is(e.route, R, what);
    t.is(e.opts.status, status, what);
    t.true(e.message.includes(R), `message names the route: ${e.message}`);
  }
});

test('fromHttp: retryAfterMs from the Retry-After header, else from the body, header first', (t) => {
  const body = env({ reason: { '.tag': 'too_many_requests' }, retry_after: 7 });
  t.is(fromHttp('r', 429, body, '3').opts.retryAfterMs, 3000);
  t.is(fromHttp('r', 429, body, undefined).opts.retryAfterMs, 7000);
  t.is(fromHttp('r', 429, body, null).opts.retryAfterMs, 7000);
  t.is(fromHttp('r', 429, body, 'garbage').opts.retryAfterMs, 7000);
  t.is(fromHttp('r', 429, 'plain text', '2').opts.retryAfterMs, 2000);
  t.is(fromHttp('r', 429, 'plain text', undefined).opts.retryAfterMs, undefined);
  t.is(fromHttp('r', 429, body, '0').opts.retryAfterMs, 0);
  t.is(fromHttp('r', 409, env({ '.tag': 'too_many_write_operations' }), '4').opts.retryAfterMs, 4000);
});

test('fromHttp: tags and correct_offset (flat and under lookup_failed)', (t) => {
  const flat = fromHttp('files/upload_session/append_v2', 409, env({ '.tag': 'incorrect_offset', correct_offset: 123 }));
  t.deepEqual(flat.tags, ['incorrect_offset']);
  t.is(flat.correctOffset, 123);
  const nested = fromHttp('files/upload_session/finish', 409, env({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'incorrect_offset', correct_offset: 456 } }));
  t.deepEqual(nested.tags, ['lookup_failed', 'incorrect_offset']);
  t.is(nested.correctOffset, 456);
  const lost = fromHttp('files/upload_session/finish', 409, env({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'not_found' } }));
  t.is(lost.code, 'not_found');
  t.is(lost.correctOffset, undefined);
});

test('classify: SDK errors, network errors, RemoteErrors and anything else', (t) => {
  const sdkErr = { status: 429, error: env({ reason: { '.tag': 'too_many_requests' } }), headers: { get: (k: string) => (k === 'retry-after' ? '2' : null) } };
  const a = classify('files/list_folder', sdkErr);
  t.is(a.code, 'rate_limited');
  t.is(a.opts.retryAfterMs, 2000);
  t.is(a.route, 'files/list_folder');

  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  const b = classify('files/download', refused, 'http://127.0.0.1:1');
  t.is(b.code, 'network');
  t.true(b.retryable);
  t.true(b.message.includes('http://127.0.0.1:1'), b.message);
  t.true(b.message.includes('files/download'), b.message);

  // node-fetch's FetchError: type 'system', the code on the error
  const fetchErr = Object.assign(new Error('request to http://x/ failed, reason: socket hang up'), { type: 'system', code: 'ECONNRESET' });
  t.is(classify('r', fetchErr).code, 'network');
  t.is(classify('r', Object.assign(new Error('premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })).code, 'network');
  t.is(classify('r', new Error('aborted')).code, 'network');
  t.is(classify('r', new Error('wrapped', { cause: Object.assign(new Error('x'), { code: 'ETIMEDOUT' }) })).code, 'network');

  const mine = new RemoteError('conflict', 'files/upload', 'x');
  t.is(classify('other', mine), mine);

  const odd = classify('files/get_metadata', new TypeError('boom'));
  t.is(odd.code, 'api');
  t.false(odd.retryable);
});

// ---------------------------------------------------------------- tagChain

test('tagChain: nested, inlined, RateLimitError, metadata not descended into', (t) => {
  t.deepEqual(tagChain({ '.tag': 'path', path: { '.tag': 'not_found' } }), ['path', 'not_found']);
  t.deepEqual(tagChain({ '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } }), ['path', 'conflict', 'folder']);
  t.deepEqual(tagChain({ '.tag': 'incorrect_offset', correct_offset: 7 }), ['incorrect_offset']);
  t.deepEqual(tagChain({ '.tag': 'path', reason: { '.tag': 'conflict', conflict: { '.tag': 'file' } }, upload_session_id: 'abc' }), ['path', 'conflict', 'file']);
  t.deepEqual(tagChain({ '.tag': 'missing_scope', required_scope: 'files.content.write' }), ['missing_scope']);
  t.deepEqual(tagChain({ reason: { '.tag': 'too_many_write_operations' }, retry_after: 1 }), ['too_many_write_operations']);
  t.deepEqual(tagChain({ '.tag': 'reset' }), ['reset']);
  t.deepEqual(
    tagChain({
      '.tag': 'shared_link_already_exists',
      shared_link_already_exists: { '.tag': 'metadata', metadata: { '.tag': 'file', url: 'https://x', name: 'a', path_lower: '/a', id: 'id:1' } },
    }),
    ['shared_link_already_exists', 'metadata'],
  );
  t.deepEqual(tagChain({ '.tag': 'shared_link_already_exists' }), ['shared_link_already_exists']);
  for (const v of [undefined, null, 'text', 42, [], [{ '.tag': 'x' }], {}]) t.deepEqual(tagChain(v), [], JSON.stringify(v));
});

// ---------------------------------------------------------------- TokenSource

const noFetch: FetchLike = () => Promise.reject(new Error('no network in this test'));

test('TokenSource: no token at all → auth error naming SREGISTRY_DROPBOX_TOKEN', (t) => {
  const e = t.throws(() => new TokenSource({}, noFetch));
  t.true(e instanceof RemoteError);
  t.is((e as RemoteError).code, 'auth');
  t.regex(e.message, /SREGISTRY_DROPBOX_TOKEN/);
  // Through the client too
  const e2 = t.throws(() => new DropboxClient({ endpoint: 'http://127.0.0.1:1', workers: 1 }));
  t.is((e2 as RemoteError).code, 'auth');
  t.regex(e2.message, /SREGISTRY_DROPBOX_TOKEN/);
});

test('TokenSource: a refresh token without the app key → auth error', (t) => {
  const e = t.throws(() => new TokenSource({ refreshToken: 'rt-secret-value' }, noFetch));
  t.true(e instanceof RemoteError);
  t.is((e as RemoteError).code, 'auth');
  t.regex(e.message, /app key|APP_KEY/i);
  t.false(e.message.includes('rt-secret-value'));
});

function stubTokenEndpoint(expiresIn: number): { fetch: FetchLike; calls: () => number; bodies: string[] } {
  let n = 0;
  const bodies: string[] = [];
  const fetch: FetchLike = async (_url, init) => {
    n++;
    bodies.push(typeof init?.body === 'string' ? init.body : '');
    await new Promise((r) => setTimeout(r, 20));
    return new Response(JSON.stringify({ access_token: `at-${n}`, token_type: 'bearer', expires_in: expiresIn }), {
      status: 200,
      headers: { 'content-type': 'application/json' },
    });
  };
  return { fetch, calls: () => n, bodies };
}

test('TokenSource: concurrent first calls share one refresh; refreshes 5 minutes before expiry', async (t) => {
  let now = 1_000_000;
  const stub = stubTokenEndpoint(600);
  const ts = new TokenSource({ refreshToken: 'r1', appKey: 'k' }, stub.fetch, () => now);
  const tokens = await Promise.all(Array.from({ length: 10 }, () => ts.get()));
  t.is(stub.calls(), 1);
  t.deepEqual(new Set(tokens), new Set(['at-1']));
  t.regex(stub.bodies[0] ?? '', /grant_type=refresh_token/);
  t.regex(stub.bodies[0] ?? '', /client_id=k/);
  now += 299_000; // 301 s before expiry: still fine
  t.is(await ts.get(), 'at-1');
  t.is(stub.calls(), 1);
  now += 2_000; // 299 s before expiry: refresh
  t.is(await ts.get(), 'at-2');
  t.is(stub.calls(), 2);
  await ts.expired();
  t.is(stub.calls(), 3);
  t.is(await ts.get(), 'at-3');
});

test('TokenSource: a plain access token is used as is; expired() asks for a new SREGISTRY_DROPBOX_TOKEN', async (t) => {
  const ts = new TokenSource({ accessToken: 'at-plain-secret' }, noFetch);
  t.is(await ts.get(), 'at-plain-secret');
  t.false(ts.canRefresh);
  const e = await t.throwsAsync(ts.expired());
  t.is((e as RemoteError).code, 'auth');
  t.regex(e.message, /SREGISTRY_DROPBOX_TOKEN/);
  t.false(String(e).includes('at-plain-secret'));
});
