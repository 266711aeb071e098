/**
 * The emulator at the HTTP level: what the SDK hides (status codes, Content-Types, plain-text
 * 400s, header encoding, Range, host checks). Contract: dropbox-api.md (§ numbers below) and
 * docs/emulator.md. Plain fetch, or node:http where fetch won't send what we need.
 */
import test from 'ava';
import http from 'node:http';
import { startEmulator, type Emulator } from '../helpers/emulator.js';

interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
}

interface CallOpts {
  method?: 'GET' | 'POST';
  /** Authorization header value; `null` = send none. Default: `Bearer <token>`. */
  auth?: string | null;
  headers?: Record<string, string>;
  body?: string | Buffer;
  query?: string;
}

async function call(emu: Emulator, route: string, opts: CallOpts = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (opts.auth !== null) headers.authorization = opts.auth ?? `Bearer ${emu.token}`;
  Object.assign(headers, opts.headers ?? {});
  const res = await fetch(`${emu.url}/2/${route}${opts.query ?? ''}`, {
    method: opts.method ?? 'POST',
    headers,
    body: opts.body,
  });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, text: body.toString('utf8') };
}

/** RPC call with a JSON body (application/json). */
function rpc(emu: Emulator, route: string, arg: unknown, opts: CallOpts = {}): Promise<Reply> {
  return call(emu, route, {
    ...opts,
    headers: { 'content-type': 'application/json', ...(opts.headers ?? {}) },
    body: JSON.stringify(arg),
  });
}

/** JSON with every char >= U+007F written as \uXXXX (what the SDK's httpHeaderSafeJson does). */
function headerSafe(arg: unknown): string {
  return JSON.stringify(arg).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function upload(emu: Emulator, arg: unknown, data: Buffer | string, opts: CallOpts = {}): Promise<Reply> {
  return call(emu, 'files/upload', {
    ...opts,
    headers: { 'content-type': 'application/octet-stream', 'dropbox-api-arg': headerSafe(arg), ...(opts.headers ?? {}) },
    body: typeof data === 'string' ? Buffer.from(data) : data,
  });
}

function download(emu: Emulator, arg: unknown, opts: CallOpts = {}): Promise<Reply> {
  return call(emu, 'files/download', {
    ...opts,
    headers: { 'dropbox-api-arg': headerSafe(arg), ...(opts.headers ?? {}) },
  });
}

function json(r: Reply): any {
  return JSON.parse(r.text);
}

const SUMMARY_DOTS = '\\/\\.{0,3}$';
function summaryRe(chain: string): RegExp {
  return new RegExp(`^${chain.replace(/\//g, '\\/')}${SUMMARY_DOTS}`);
}

/** §2: 400 = plain text, `Error in call to API function "<route>": …`. */
function assert400(t: import('ava').ExecutionContext, r: Reply, route: string, ...fragments: string[]): void {
  t.is(r.status, 400, r.text);
  t.regex(r.headers.get('content-type') ?? '', /^text\/plain/);
  t.true(r.text.startsWith(`Error in call to API function "${route}":`), r.text);
  for (const f of fragments) t.true(r.text.includes(f), `expected ${JSON.stringify(f)} in ${JSON.stringify(r.text)}`);
}

const JSON_CT = /^application\/json(;|$)/;

/** Sends a request with node:http so header bytes can be anything (fetch refuses non-ASCII). */
function rawRequest(
  emu: Emulator,
  route: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${emu.url}/2/${route}`, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------- 400: request validation (§1, §3)

test('RPC: unknown field in the body is a plain-text 400 naming the field', async (t) => {
  const emu = await startEmulator(t);
  const r = await rpc(emu, 'files/create_folder_v2', { path: '/a', root: 'x' });
  assert400(t, r, 'files/create_folder_v2', "request body: unknown field 'root'");
  // and nothing was created
  const m = await rpc(emu, 'files/get_metadata', { path: '/a' });
  t.is(m.status, 409);
});

test('RPC: wrong type and missing required field are plain-text 400s', async (t) => {
  const emu = await startEmulator(t);
  assert400(t, await rpc(emu, 'files/list_folder', { path: 5 }), 'files/list_folder');
  assert400(t, await rpc(emu, 'files/list_folder', { path: '', recursive: 'yes' }), 'files/list_folder');
  assert400(t, await rpc(emu, 'files/list_folder', {}), 'files/list_folder');
  assert400(t, await rpc(emu, 'files/get_metadata', { include_deleted: true }), 'files/get_metadata');
  // control: the well-formed call works
  t.is((await rpc(emu, 'files/list_folder', { path: '', recursive: false })).status, 200);
});

test('RPC: a non-root path without a leading slash fails the pattern (400)', async (t) => {
  const emu = await startEmulator(t);
  assert400(t, await rpc(emu, 'files/get_metadata', { path: 'foo' }), 'files/get_metadata', 'did not match pattern');
  assert400(t, await rpc(emu, 'files/create_folder_v2', { path: 'foo' }), 'files/create_folder_v2', 'did not match pattern');
});

test('"/" as the root of list_folder is a 400; "" works', async (t) => {
  const emu = await startEmulator(t);
  assert400(
    t,
    await rpc(emu, 'files/list_folder', { path: '/' }),
    'files/list_folder',
    'Specify the root folder as an empty string rather than as "/"',
  );
  const ok = await rpc(emu, 'files/list_folder', { path: '' });
  t.is(ok.status, 200, ok.text);
  const body = json(ok);
  t.true(Array.isArray(body.entries));
  t.is(typeof body.cursor, 'string');
  t.is(typeof body.has_more, 'boolean');
});

test('get_metadata of the root "" is a 400 "The root folder is unsupported."', async (t) => {
  const emu = await startEmulator(t);
  assert400(t, await rpc(emu, 'files/get_metadata', { path: '' }), 'files/get_metadata', 'The root folder is unsupported.');
});

test('RPC: malformed JSON is a plain-text 400', async (t) => {
  const emu = await startEmulator(t);
  const r = await call(emu, 'files/list_folder', { headers: { 'content-type': 'application/json' }, body: '{"path": ' });
  assert400(t, r, 'files/list_folder');
});

test('RPC: a wrong Content-Type is a 400 with Dropbox\'s message; the accepted variants work', async (t) => {
  const emu = await startEmulator(t);
  const r = await call(emu, 'files/list_folder', { headers: { 'content-type': 'text/plain' }, body: '{"path": ""}' });
  assert400(
    t,
    r,
    'files/list_folder',
    'Bad HTTP "Content-Type" header: "text/plain".',
    'Expecting one of "application/json", "application/json; charset=utf-8", "text/plain; charset=dropbox-cors-hack".',
  );
  const ok = await call(emu, 'files/list_folder', {
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: '{"path": ""}',
  });
  t.is(ok.status, 200, ok.text);
});

test('content routes: a bad Dropbox-API-Arg is a 400 prefixed with HTTP header "Dropbox-API-Arg":', async (t) => {
  const emu = await startEmulator(t);
  const prefix = 'Error in call to API function "files/upload": HTTP header "Dropbox-API-Arg":';
  const unknown = await upload(emu, { path: '/a.txt', bogus: 1 }, 'x');
  assert400(t, unknown, 'files/upload');
  t.true(unknown.text.startsWith(prefix), unknown.text);
  const badJson = await call(emu, 'files/upload', {
    headers: { 'content-type': 'application/octet-stream', 'dropbox-api-arg': '{"path": ' },
    body: Buffer.from('x'),
  });
  assert400(t, badJson, 'files/upload');
  t.true(badJson.text.startsWith(prefix), badJson.text);
  const dl = await download(emu, { path: 'nope' });
  assert400(t, dl, 'files/download');
  t.true(dl.text.startsWith('Error in call to API function "files/download": HTTP header "Dropbox-API-Arg":'), dl.text);
  // nothing was written by the refused upload
  t.is((await rpc(emu, 'files/get_metadata', { path: '/a.txt' })).status, 409);
});

test('download with a non-empty request body is a 400', async (t) => {
  const emu = await startEmulator(t);
  t.is((await upload(emu, { path: '/f.txt' }, 'hello')).status, 200);
  const r = await download(emu, { path: '/f.txt' }, { headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
  assert400(t, r, 'files/download');
  // control: the same download without a body works
  const ok = await download(emu, { path: '/f.txt' });
  t.is(ok.status, 200);
  t.is(ok.text, 'hello');
});

test('raw UTF-8 in Dropbox-API-Arg is a 400; the same name \\u-escaped works', async (t) => {
  const emu = await startEmulator(t);
  const argJson = JSON.stringify({ path: '/naïve.txt' });
  t.true([...argJson].some((c) => c.charCodeAt(0) > 0x7e));
  // Node writes header strings as latin1, so a latin1 view of the UTF-8 bytes puts those bytes on the wire.
  const raw = await rawRequest(
    emu,
    'files/upload',
    {
      authorization: `Bearer ${emu.token}`,
      'content-type': 'application/octet-stream',
      'dropbox-api-arg': Buffer.from(argJson, 'utf8').toString('latin1'),
    },
    Buffer.from('data'),
  );
  t.is(raw.status, 400, raw.text);
  t.regex(String(raw.headers['content-type']), /^text\/plain/);
  t.true(raw.text.startsWith('Error in call to API function "files/upload":'), raw.text);
  t.deepEqual(json(await rpc(emu, 'files/list_folder', { path: '' })).entries, []);

  const ok = await upload(emu, { path: '/naïve.txt' }, 'data');
  t.is(ok.status, 200, ok.text);
  t.is(json(ok).name, 'naïve.txt');
});

test('args may come in the `arg` query parameter (upload POST, download GET)', async (t) => {
  const emu = await startEmulator(t);
  const up = await call(emu, 'files/upload', {
    query: `?arg=${encodeURIComponent(JSON.stringify({ path: '/q/file.bin' }))}`,
    headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.from('via query'),
  });
  t.is(up.status, 200, up.text);
  t.is(json(up).path_display, '/q/file.bin');
  const dl = await call(emu, 'files/download', {
    method: 'GET',
    query: `?arg=${encodeURIComponent(JSON.stringify({ path: '/q/file.bin' }))}`,
  });
  t.is(dl.status, 200, dl.text);
  t.is(dl.text, 'via query');
  t.is(JSON.parse(dl.headers.get('dropbox-api-result') ?? 'null').size, 9);
  // POST download with the query arg too
  const dl2 = await call(emu, 'files/download', { query: `?arg=${encodeURIComponent(JSON.stringify({ path: '/q/file.bin' }))}` });
  t.is(dl2.status, 200, dl2.text);
  t.is(dl2.text, 'via query');
});

test('client_modified with milliseconds is a 400; whole seconds round-trip', async (t) => {
  const emu = await startEmulator(t);
  const bad = await upload(emu, { path: '/t.txt', client_modified: '2024-01-02T03:04:05.678Z' }, 'x');
  assert400(t, bad, 'files/upload');
  t.is((await rpc(emu, 'files/get_metadata', { path: '/t.txt' })).status, 409);
  const ok = await upload(emu, { path: '/t.txt', client_modified: '2024-01-02T03:04:05Z' }, 'x');
  t.is(ok.status, 200, ok.text);
  t.is(json(ok).client_modified, '2024-01-02T03:04:05Z');
  t.regex(json(ok).server_modified, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});

// ---------------------------------------------------------------- auth (§2)

test('missing Authorization is a plain-text 400', async (t) => {
  const emu = await startEmulator(t);
  const r = await call(emu, 'users/get_current_account', { auth: null });
  assert400(t, r, 'users/get_current_account');
  const r2 = await rpc(emu, 'files/list_folder', { path: '' }, { auth: null });
  assert400(t, r2, 'files/list_folder');
});

test('a malformed Authorization header is a plain-text 400, not a 401', async (t) => {
  const emu = await startEmulator(t);
  for (const auth of ['Bearer', 'garbage-without-scheme']) {
    const r = await call(emu, 'users/get_current_account', { auth });
    assert400(t, r, 'users/get_current_account');
  }
});

test('an unknown token is a 401 JSON invalid_access_token envelope', async (t) => {
  const emu = await startEmulator(t);
  const r = await call(emu, 'users/get_current_account', { auth: 'Bearer not-the-right-token-123' });
  t.is(r.status, 401, r.text);
  t.regex(r.headers.get('content-type') ?? '', JSON_CT);
  const body = json(r);
  t.is(body.error['.tag'], 'invalid_access_token');
  t.regex(body.error_summary, summaryRe('invalid_access_token'));
  // control: the right token works
  t.is((await call(emu, 'users/get_current_account')).status, 200);
});

// ---------------------------------------------------------------- void routes, Content-Types (§1, §9)

test('void routes accept no body/no Content-Type and `null` as application/json', async (t) => {
  const emu = await startEmulator(t);
  const a = await call(emu, 'users/get_current_account');
  t.is(a.status, 200, a.text);
  t.is(a.headers.get('content-type'), 'application/json');
  const acct = json(a);
  t.regex(acct.account_id, /^dbid:/);
  t.is(typeof acct.name.display_name, 'string');
  t.is(typeof acct.email, 'string');
  const b = await rpc(emu, 'users/get_current_account', null);
  t.is(b.status, 200, b.text);
  t.is(json(b).account_id, acct.account_id);

  const s = await call(emu, 'users/get_space_usage');
  t.is(s.status, 200, s.text);
  t.is(s.headers.get('content-type'), 'application/json');
  const usage = json(s);
  t.is(typeof usage.used, 'number');
  t.is(usage.allocation['.tag'], 'individual');
  t.is(typeof usage.allocation.allocated, 'number');
  const s2 = await rpc(emu, 'users/get_space_usage', null);
  t.is(s2.status, 200, s2.text);
});

test('RPC and upload successes have exactly Content-Type: application/json', async (t) => {
  const emu = await startEmulator(t);
  const up = await upload(emu, { path: '/ct/a.txt' }, 'abc');
  t.is(up.status, 200, up.text);
  t.is(up.headers.get('content-type'), 'application/json');
  for (const [route, arg] of [
    ['files/list_folder', { path: '' }],
    ['files/get_metadata', { path: '/ct/a.txt' }],
    ['files/create_folder_v2', { path: '/ct/sub' }],
    ['files/list_folder/get_latest_cursor', { path: '' }],
  ] as const) {
    const r = await rpc(emu, route, arg);
    t.is(r.status, 200, `${route}: ${r.text}`);
    t.is(r.headers.get('content-type'), 'application/json', route);
  }
});

test('409 and 401 responses have a JSON Content-Type', async (t) => {
  const emu = await startEmulator(t);
  const nf = await rpc(emu, 'files/get_metadata', { path: '/missing' });
  t.is(nf.status, 409);
  t.regex(nf.headers.get('content-type') ?? '', JSON_CT);
  const body = json(nf);
  t.deepEqual(body.error, { '.tag': 'path', path: { '.tag': 'not_found' } });
  t.regex(body.error_summary, summaryRe('path/not_found'));
  const unauth = await call(emu, 'users/get_space_usage', { auth: 'Bearer wrong-token' });
  t.is(unauth.status, 401);
  t.regex(unauth.headers.get('content-type') ?? '', JSON_CT);
});

test('429 responses have a JSON Content-Type and Retry-After', async (t) => {
  const emu = await startEmulator(t);
  await emu.admin('POST', '/faults', { kind: '429', count: 1 });
  const r = await call(emu, 'users/get_current_account');
  t.is(r.status, 429, r.text);
  t.regex(r.headers.get('content-type') ?? '', JSON_CT);
  t.regex(r.headers.get('retry-after') ?? '', /^\d+$/);
  t.regex(json(r).error_summary, summaryRe('too_many_requests'));
});

// ---------------------------------------------------------------- names and paths (§3)

test('non-ASCII names round-trip; Dropbox-API-Result is pure ASCII with \\u escapes', async (t) => {
  const emu = await startEmulator(t);
  const up = await upload(emu, { path: '/tëst/日本.txt' }, 'こんにちは');
  t.is(up.status, 200, up.text);
  const meta = json(up);
  t.is(meta.name, '日本.txt');
  t.is(meta.path_display, '/tëst/日本.txt');
  t.is(meta.path_lower, '/tëst/日本.txt');
  t.false('.tag' in meta, 'upload result is FileMetadata without .tag (§1)');

  const dl = await download(emu, { path: '/tëst/日本.txt' });
  t.is(dl.status, 200, dl.text);
  t.is(dl.text, 'こんにちは');
  const header = dl.headers.get('dropbox-api-result');
  t.truthy(header);
  const h = header ?? '';
  t.true([...h].every((c) => c.charCodeAt(0) < 0x7f), `non-ASCII in Dropbox-API-Result: ${JSON.stringify(h)}`);
  t.regex(h, /\\u65e5\\u672c/i); // 日本
  const result = JSON.parse(h);
  t.is(result.name, '日本.txt');
  t.is(result.path_display, '/tëst/日本.txt');
  t.is(result.size, Buffer.byteLength('こんにちは'));
  t.false('.tag' in result);

  const list = json(await rpc(emu, 'files/list_folder', { path: '/tëst' }));
  t.deepEqual(
    list.entries.map((e: { name: string }) => e.name),
    ['日本.txt'],
  );
});

test('list_folder of a file is 409 path/not_folder', async (t) => {
  const emu = await startEmulator(t);
  t.is((await upload(emu, { path: '/file.txt' }, 'x')).status, 200);
  const r = await rpc(emu, 'files/list_folder', { path: '/file.txt' });
  t.is(r.status, 409, r.text);
  t.regex(r.headers.get('content-type') ?? '', JSON_CT);
  const body = json(r);
  t.deepEqual(body.error, { '.tag': 'path', path: { '.tag': 'not_folder' } });
  t.regex(body.error_summary, summaryRe('path/not_folder'));
});

test('a trailing slash or an empty component inside a path is 409 malformed_path; a leading // is one /', async (t) => {
  const emu = await startEmulator(t);
  t.is((await rpc(emu, 'files/create_folder_v2', { path: '/a' })).status, 200);
  t.is((await upload(emu, { path: '/a/f.txt' }, 'x')).status, 200);
  // rclone lists a remote rooted at the app folder as "//a" (docs/emulator.md).
  for (const route of ['files/list_folder', 'files/list_folder/get_latest_cursor'] as const) {
    const r = await rpc(emu, route, { path: '//a' });
    t.is(r.status, 200, `${route} //a: ${r.text}`);
  }
  const listed = json(await rpc(emu, 'files/list_folder', { path: '//a' }));
  t.deepEqual(listed.entries.map((e: { path_display: string }) => e.path_display), ['/a/f.txt']);
  const meta = await rpc(emu, 'files/get_metadata', { path: '///a/f.txt' });
  t.is(meta.status, 200, meta.text);
  t.is(json(meta).path_display, '/a/f.txt');
  for (const [route, p] of [
    ['files/get_metadata', '/a/'],
    ['files/list_folder', '/a/'],
    ['files/get_metadata', '/a//b'],
    ['files/list_folder', '/a//'],
  ] as const) {
    const r = await rpc(emu, route, { path: p });
    t.is(r.status, 409, `${route} ${p}: ${r.text}`);
    const body = json(r);
    t.is(body.error['.tag'], 'path', `${route} ${p}`);
    t.is(body.error.path['.tag'], 'malformed_path', `${route} ${p}`);
    t.regex(body.error_summary, summaryRe('path/malformed_path'));
  }
  // WriteError on create_folder_v2 is nested under "path" as well
  const w = await rpc(emu, 'files/create_folder_v2', { path: '/x//y' });
  t.is(w.status, 409, w.text);
  t.is(json(w).error['.tag'], 'path');
  t.is(json(w).error.path['.tag'], 'malformed_path');
  // upload: UploadWriteFailed inlines the WriteError as `reason`
  const u = await upload(emu, { path: '/a//c.txt' }, 'x');
  t.is(u.status, 409, u.text);
  t.is(json(u).error['.tag'], 'path');
  t.is(json(u).error.reason['.tag'], 'malformed_path');
});

test('disallowed names are refused on upload with 409 path/disallowed_name', async (t) => {
  const emu = await startEmulator(t);
  for (const p of ['/desktop.ini', '/.DS_Store', '/sub/Thumbs.db']) {
    const r = await upload(emu, { path: p }, 'x');
    t.is(r.status, 409, `${p}: ${r.text}`);
    t.regex(r.headers.get('content-type') ?? '', JSON_CT);
    const body = json(r);
    t.is(body.error['.tag'], 'path', p);
    t.is(body.error.reason['.tag'], 'disallowed_name', p);
    t.regex(body.error_summary, summaryRe('path/disallowed_name'));
  }
  t.deepEqual(json(await rpc(emu, 'files/list_folder', { path: '', recursive: true })).entries.filter((e: any) => e['.tag'] === 'file'), []);
  // control: an ordinary name works
  t.is((await upload(emu, { path: '/desktop.txt' }, 'x')).status, 200);
});

test('a name longer than 255 characters is refused; 255 is fine', async (t) => {
  const emu = await startEmulator(t);
  const long = await upload(emu, { path: `/${'a'.repeat(256)}` }, 'x');
  t.true(long.status === 400 || long.status === 409, `${long.status} ${long.text}`);
  const listed = json(await rpc(emu, 'files/list_folder', { path: '' }));
  t.deepEqual(listed.entries, []);
  const ok = await upload(emu, { path: `/${'b'.repeat(255)}` }, 'x');
  t.is(ok.status, 200, ok.text);
  t.is(json(ok).name.length, 255);
});

// ---------------------------------------------------------------- Range (§5.3)

const SIZE = 100;
const DATA = Buffer.from(Array.from({ length: SIZE }, (_, i) => (i * 7 + 3) % 256));

async function withFile(t: import('ava').ExecutionContext): Promise<Emulator> {
  const emu = await startEmulator(t);
  const up = await upload(emu, { path: '/r.bin' }, DATA);
  t.is(up.status, 200, up.text);
  t.is(json(up).size, SIZE);
  return emu;
}

test('download without Range: 200, Content-Length, application/octet-stream', async (t) => {
  const emu = await withFile(t);
  const r = await download(emu, { path: '/r.bin' });
  t.is(r.status, 200);
  t.is(r.headers.get('content-type'), 'application/octet-stream');
  t.is(r.headers.get('content-length'), String(SIZE));
  t.true(r.body.equals(DATA));
  t.is(JSON.parse(r.headers.get('dropbox-api-result') ?? 'null').size, SIZE);
});

const RANGES: Array<[string, number, number]> = [
  ['bytes=0-0', 0, 0],
  ['bytes=10-', 10, SIZE - 1],
  ['bytes=-5', SIZE - 5, SIZE - 1],
  ['bytes=5-999999', 5, SIZE - 1],
  ['bytes=20-29', 20, 29],
];
for (const [range, start, end] of RANGES) {
  test(`download Range ${range} → 206 bytes ${start}-${end}/${SIZE}`, async (t) => {
    const emu = await withFile(t);
    const r = await download(emu, { path: '/r.bin' }, { headers: { range } });
    t.is(r.status, 206, r.text);
    t.is(r.headers.get('content-range'), `bytes ${start}-${end}/${SIZE}`);
    t.is(r.headers.get('content-length'), String(end - start + 1));
    t.true(r.body.equals(DATA.subarray(start, end + 1)), `got ${r.body.length} bytes`);
    // the result header still describes the whole file
    t.is(JSON.parse(r.headers.get('dropbox-api-result') ?? 'null').size, SIZE);
  });
}

test('download Range starting at or past EOF → 416 bytes */SIZE', async (t) => {
  const emu = await withFile(t);
  for (const range of [`bytes=${SIZE}-`, `bytes=${SIZE + 50}-${SIZE + 60}`]) {
    const r = await download(emu, { path: '/r.bin' }, { headers: { range } });
    t.is(r.status, 416, `${range}: ${r.text}`);
    t.is(r.headers.get('content-range'), `bytes */${SIZE}`, range);
  }
});

test('a Range on a zero-byte file → 416 bytes */0; without Range it is a 200 with 0 bytes', async (t) => {
  const emu = await startEmulator(t);
  t.is((await upload(emu, { path: '/empty' }, Buffer.alloc(0))).status, 200);
  const r = await download(emu, { path: '/empty' }, { headers: { range: 'bytes=0-0' } });
  t.is(r.status, 416, r.text);
  t.is(r.headers.get('content-range'), 'bytes */0');
  const full = await download(emu, { path: '/empty' });
  t.is(full.status, 200);
  t.is(full.body.length, 0);
  t.is(full.headers.get('content-length'), '0');
});

// ---------------------------------------------------------------- hosts (docs/emulator.md "Hosts")

test('X-Sreg-Dropbox-Host: routes are checked against their host', async (t) => {
  const emu = await withFile(t);
  const wrong = await download(emu, { path: '/r.bin' }, { headers: { 'x-sreg-dropbox-host': 'api.dropboxapi.com' } });
  t.is(wrong.status, 400, wrong.text);
  t.regex(wrong.headers.get('content-type') ?? '', /^text\/plain/);
  const right = await download(emu, { path: '/r.bin' }, { headers: { 'x-sreg-dropbox-host': 'content.dropboxapi.com' } });
  t.is(right.status, 200, right.text);
  t.true(right.body.equals(DATA));

  const rpcWrong = await rpc(emu, 'files/list_folder', { path: '' }, { headers: { 'x-sreg-dropbox-host': 'content.dropboxapi.com' } });
  t.is(rpcWrong.status, 400, rpcWrong.text);
  const rpcRight = await rpc(emu, 'files/list_folder', { path: '' }, { headers: { 'x-sreg-dropbox-host': 'api.dropboxapi.com' } });
  t.is(rpcRight.status, 200, rpcRight.text);
});

test('longpoll on notify.dropboxapi.com works without Authorization', async (t) => {
  const emu = await startEmulator(t);
  await emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  const cur = await rpc(emu, 'files/list_folder/get_latest_cursor', { path: '' }, { headers: { 'x-sreg-dropbox-host': 'api.dropboxapi.com' } });
  t.is(cur.status, 200, cur.text);
  const cursor = json(cur).cursor as string;
  t.is(typeof cursor, 'string');
  const lp = await rpc(
    emu,
    'files/list_folder/longpoll',
    { cursor, timeout: 30 },
    { auth: null, headers: { 'x-sreg-dropbox-host': 'notify.dropboxapi.com' } },
  );
  t.is(lp.status, 200, lp.text);
  t.is(lp.headers.get('content-type'), 'application/json');
  t.is(json(lp).changes, false);

  // after a change, the same cursor reports changes
  t.is((await upload(emu, { path: '/new.txt' }, 'x')).status, 200);
  const lp2 = await rpc(
    emu,
    'files/list_folder/longpoll',
    { cursor, timeout: 30 },
    { auth: null, headers: { 'x-sreg-dropbox-host': 'notify.dropboxapi.com' } },
  );
  t.is(lp2.status, 200, lp2.text);
  t.is(json(lp2).changes, true);
});
