/**
 * Fault injection and shaping through the admin API (docs/emulator.md "Admin API"), seen over
 * plain HTTP. Every fault is shown to appear when asked and to stop when turned off.
 * Timing assertions are lower bounds only.
 */
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { startEmulator, type Emulator } from '../helpers/emulator.js';

interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
  text: string;
}

interface CallOpts {
  auth?: string | null;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

async function call(emu: Emulator, route: string, opts: CallOpts = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (opts.auth !== null) headers.authorization = opts.auth ?? `Bearer ${emu.token}`;
  Object.assign(headers, opts.headers ?? {});
  const res = await fetch(`${emu.url}/2/${route}`, { method: 'POST', headers, body: opts.body });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, text: body.toString('utf8') };
}

function rpc(emu: Emulator, route: string, arg: unknown, opts: CallOpts = {}): Promise<Reply> {
  return call(emu, route, {
    ...opts,
    headers: { 'content-type': 'application/json', ...(opts.headers ?? {}) },
    body: JSON.stringify(arg),
  });
}

const account = (emu: Emulator): Promise<Reply> => call(emu, 'users/get_current_account');

function upload(emu: Emulator, path: string, data: Buffer | string): Promise<Reply> {
  return call(emu, 'files/upload', {
    headers: { 'content-type': 'application/octet-stream', 'dropbox-api-arg': JSON.stringify({ path, mode: 'overwrite' }) },
    body: typeof data === 'string' ? Buffer.from(data) : data,
  });
}

function download(emu: Emulator, path: string): Promise<Reply> {
  return call(emu, 'files/download', { headers: { 'dropbox-api-arg': JSON.stringify({ path }) } });
}

const json = (r: Reply): any => JSON.parse(r.text);
const JSON_CT = /^application\/json(;|$)/;

async function exists(emu: Emulator, path: string): Promise<boolean> {
  const r = await rpc(emu, 'files/get_metadata', { path });
  if (r.status === 200) return true;
  if (r.status === 409 && json(r).error?.path?.['.tag'] === 'not_found') return false;
  throw new Error(`get_metadata ${path}: ${r.status} ${r.text}`);
}

/** GET /__emulator/faults, tolerant of `[...]` or `{faults|rules: [...]}`. */
async function faultRules(emu: Emulator): Promise<any[]> {
  const r = await emu.admin('GET', '/faults');
  const list = Array.isArray(r) ? r : (r?.faults ?? r?.rules);
  if (!Array.isArray(list)) throw new Error(`GET /__emulator/faults: unexpected ${JSON.stringify(r)}`);
  return list;
}

async function addFault(emu: Emulator, rule: Record<string, unknown>): Promise<string> {
  const r = await emu.admin<{ id: string | number }>('POST', '/faults', rule);
  if (r?.id === undefined) throw new Error(`POST /faults returned ${JSON.stringify(r)}`);
  return String(r.id);
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, performance.now() - t0];
}

// ---------------------------------------------------------------- 5xx

test('5xx: default 503 on every request until DELETE /__emulator/faults; nothing done', async (t) => {
  const emu = await startEmulator(t);
  await addFault(emu, { kind: '5xx' });
  for (let i = 0; i < 3; i++) t.is((await account(emu)).status, 503);
  t.is((await upload(emu, '/five.txt', 'x')).status, 503);
  await emu.admin('DELETE', '/faults');
  t.deepEqual(await faultRules(emu), []);
  t.is((await account(emu)).status, 200);
  t.false(await exists(emu, '/five.txt'), 'an upload answered with 503 must not have written');
});

test('5xx: a chosen status 500 with count 2 fires exactly twice', async (t) => {
  const emu = await startEmulator(t);
  await addFault(emu, { kind: '5xx', status: 500, count: 2 });
  t.is((await account(emu)).status, 500);
  t.is((await account(emu)).status, 500);
  t.is((await account(emu)).status, 200);
  t.is((await account(emu)).status, 200);
});

test('5xx: rate 1 fires always until the rules are deleted', async (t) => {
  const emu = await startEmulator(t);
  await addFault(emu, { kind: '5xx', status: 502, rate: 1 });
  for (let i = 0; i < 5; i++) t.is((await account(emu)).status, 502);
  await emu.admin('DELETE', '/faults');
  t.is((await account(emu)).status, 200);
});

test('5xx: routes restricts the fault to that route', async (t) => {
  const emu = await startEmulator(t);
  await addFault(emu, { kind: '5xx', status: 504, routes: ['files/list_folder'] });
  t.is((await rpc(emu, 'files/list_folder', { path: '' })).status, 504);
  t.is((await account(emu)).status, 200);
  t.is((await rpc(emu, 'files/get_metadata', { path: '/x' })).status, 409);
  t.is((await rpc(emu, 'files/list_folder', { path: '' })).status, 504);
});

test('DELETE /__emulator/faults/ID removes only that rule', async (t) => {
  const emu = await startEmulator(t);
  const a = await addFault(emu, { kind: '5xx', routes: ['users/get_current_account'] });
  await addFault(emu, { kind: '5xx', routes: ['users/get_space_usage'] });
  await emu.admin('DELETE', `/faults/${a}`);
  t.is((await account(emu)).status, 200);
  t.is((await call(emu, 'users/get_space_usage')).status, 503);
  t.is((await faultRules(emu)).length, 1);
});

// ---------------------------------------------------------------- 429

test('429 too_many_requests: JSON RateLimitError envelope + Retry-After, then stops', async (t) => {
  const emu = await startEmulator(t);
  await addFault(emu, { kind: '429', count: 1 });
  const r = await account(emu);
  t.is(r.status, 429, r.text);
  t.regex(r.headers.get('content-type') ?? '', JSON_CT);
  const body = json(r);
  t.regex(body.error_summary, /^too_many_requests\/\.{0,3}$/);
  t.deepEqual(body.error, { reason: { '.tag': 'too_many_requests' }, retry_after: 1 });
  t.is(r.headers.get('retry-after'), '1');
  t.is((await account(emu)).status, 200);
});

test('429 too_many_write_operations with retryAfterSec', async (t) => {
  const emu = await startEmulator(t);
  await addFault(emu, { kind: '429', reason: 'too_many_write_operations', retryAfterSec: 7, routes: ['files/upload'] });
  const r = await upload(emu, '/w.txt', 'x');
  t.is(r.status, 429, r.text);
  t.regex(r.headers.get('content-type') ?? '', JSON_CT);
  const body = json(r);
  t.regex(body.error_summary, /^[a-z_]+\/\.{0,3}$/);
  t.is(body.error.reason['.tag'], 'too_many_write_operations');
  t.is(body.error.retry_after, 7);
  t.is(r.headers.get('retry-after'), '7');
  t.false(await exists(emu, '/w.txt'));
  await emu.admin('DELETE', '/faults');
  t.is((await upload(emu, '/w.txt', 'x')).status, 200);
  t.true(await exists(emu, '/w.txt'));
});

test('429 plainText: a plain-text 429 that still carries Retry-After', async (t) => {
  const emu = await startEmulator(t);
  await addFault(emu, { kind: '429', plainText: true, retryAfterSec: 2, count: 1 });
  const r = await account(emu);
  t.is(r.status, 429, r.text);
  t.regex(r.headers.get('content-type') ?? '', /^text\/plain/);
  t.is(r.headers.get('retry-after'), '2');
  t.true(r.text.length > 0);
  t.is((await account(emu)).status, 200);
});

// ---------------------------------------------------------------- write_lock_409

test('write_lock_409 on files/upload: path/reason too_many_write_operations, nothing written', async (t) => {
  const emu = await startEmulator(t);
  await addFault(emu, { kind: 'write_lock_409', routes: ['files/upload'], count: 1 });
  const r = await upload(emu, '/locked.txt', 'data');
  t.is(r.status, 409, r.text);
  t.regex(r.headers.get('content-type') ?? '', JSON_CT);
  const body = json(r);
  t.is(body.error['.tag'], 'path');
  t.is(body.error.reason['.tag'], 'too_many_write_operations');
  t.regex(body.error_summary, /^path\/too_many_write_operations\/\.{0,3}$/);
  t.false(await exists(emu, '/locked.txt'));
  const ok = await upload(emu, '/locked.txt', 'data');
  t.is(ok.status, 200, ok.text);
  t.true(await exists(emu, '/locked.txt'));
});

test('write_lock_409 on files/delete_v2: {".tag":"too_many_write_operations"}, nothing deleted', async (t) => {
  const emu = await startEmulator(t);
  t.is((await upload(emu, '/keep.txt', 'data')).status, 200);
  await addFault(emu, { kind: 'write_lock_409', routes: ['files/delete_v2'] });
  const r = await rpc(emu, 'files/delete_v2', { path: '/keep.txt' });
  t.is(r.status, 409, r.text);
  const body = json(r);
  t.deepEqual(body.error, { '.tag': 'too_many_write_operations' });
  t.regex(body.error_summary, /^too_many_write_operations\/\.{0,3}$/);
  t.true(await exists(emu, '/keep.txt'));
  await emu.admin('DELETE', '/faults');
  t.is((await rpc(emu, 'files/delete_v2', { path: '/keep.txt' })).status, 200);
  t.false(await exists(emu, '/keep.txt'));
});

test('write_lock_409 without routes hits write routes only', async (t) => {
  const emu = await startEmulator(t);
  t.is((await upload(emu, '/r.txt', 'data')).status, 200);
  await addFault(emu, { kind: 'write_lock_409' });
  t.is((await rpc(emu, 'files/get_metadata', { path: '/r.txt' })).status, 200);
  t.is((await download(emu, '/r.txt')).status, 200);
  t.is((await rpc(emu, 'files/list_folder', { path: '' })).status, 200);
  const mk = await rpc(emu, 'files/create_folder_v2', { path: '/d' });
  t.is(mk.status, 409, mk.text);
  t.deepEqual(json(mk).error, { '.tag': 'path', path: { '.tag': 'too_many_write_operations' } });
  t.is((await upload(emu, '/s.txt', 'x')).status, 409);
  await emu.admin('DELETE', '/faults');
  t.false(await exists(emu, '/d'));
  t.false(await exists(emu, '/s.txt'));
});

// ---------------------------------------------------------------- cut

interface RawResult {
  status: number;
  bytes: Buffer;
  complete: boolean;
  error?: string;
}

/** A download over node:http, counting body bytes and noting how it ended. */
function rawDownload(emu: Emulator, path: string): Promise<RawResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let status = 0;
    let complete = false;
    let error: string | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      resolve({ status, bytes: Buffer.concat(chunks), complete, ...(error === undefined ? {} : { error }) });
    };
    const req = http.request(`${emu.url}/2/files/download`, {
      method: 'POST',
      headers: { authorization: `Bearer ${emu.token}`, 'dropbox-api-arg': JSON.stringify({ path }) },
    });
    req.on('response', (res) => {
      status = res.statusCode ?? 0;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        complete = res.complete;
      });
      res.on('aborted', () => {
        error ??= 'aborted';
      });
      res.on('error', (e: NodeJS.ErrnoException) => {
        error ??= e.code ?? e.message;
      });
      res.on('close', finish);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message;
      finish();
    });
    req.end();
  });
}

test('cut: a 1 MiB download dies after ~afterBytes; after removing the rule it is whole', async (t) => {
  const emu = await startEmulator(t);
  const data = randomBytes(1 << 20);
  t.is((await upload(emu, '/big.bin', data)).status, 200);
  const id = await addFault(emu, { kind: 'cut', routes: ['files/download'], afterBytes: 1000 });

  const cut = await rawDownload(emu, '/big.bin');
  t.is(cut.status, 200);
  t.false(cut.complete, 'the response must not end cleanly');
  t.truthy(cut.error, 'expected a network error (aborted / ECONNRESET)');
  t.true(cut.bytes.length > 0 && cut.bytes.length <= 1000, `received ${cut.bytes.length} body bytes`);
  t.true(cut.bytes.equals(data.subarray(0, cut.bytes.length)), 'what did arrive is the start of the file');

  // fetch sees it as a failure too
  await t.throwsAsync(download(emu, '/big.bin'));

  const rules = await faultRules(emu);
  const rule = rules.find((r) => String(r.id) === id);
  t.truthy(rule);
  t.is(rule?.fired, 2);

  await emu.admin('DELETE', `/faults/${id}`);
  const whole = await rawDownload(emu, '/big.bin');
  t.is(whole.status, 200);
  t.true(whole.complete);
  t.is(whole.error, undefined);
  t.is(whole.bytes.length, data.length);
  t.true(whole.bytes.equals(data));
});

test('cut on upload: the answer is lost but the upload was committed', async (t) => {
  const emu = await startEmulator(t);
  await addFault(emu, { kind: 'cut', routes: ['files/upload'], count: 1 });
  await t.throwsAsync(upload(emu, '/committed.txt', 'payload'));
  t.true(await exists(emu, '/committed.txt'));
  const dl = await download(emu, '/committed.txt');
  t.is(dl.status, 200);
  t.is(dl.text, 'payload');
});

// ---------------------------------------------------------------- tokens

test('expire_token: 401 expired_access_token while the rule lasts', async (t) => {
  const emu = await startEmulator(t);
  await addFault(emu, { kind: 'expire_token', count: 1 });
  const r = await account(emu);
  t.is(r.status, 401, r.text);
  t.regex(r.headers.get('content-type') ?? '', JSON_CT);
  const body = json(r);
  t.is(body.error['.tag'], 'expired_access_token');
  t.regex(body.error_summary, /^expired_access_token\/\.{0,3}$/);
  t.is((await account(emu)).status, 200);
});

test('POST /__emulator/expire-tokens expires the token for good', async (t) => {
  const emu = await startEmulator(t);
  t.is((await account(emu)).status, 200);
  await emu.admin('POST', '/expire-tokens');
  for (let i = 0; i < 2; i++) {
    const r = await account(emu);
    t.is(r.status, 401, r.text);
    t.is(json(r).error['.tag'], 'expired_access_token');
  }
  await emu.admin('DELETE', '/faults');
  const after = await rpc(emu, 'files/list_folder', { path: '' });
  t.is(after.status, 401);
  t.is(json(after).error['.tag'], 'expired_access_token');
});

// ---------------------------------------------------------------- bookkeeping

test('GET /__emulator/faults lists the rules with fired counts', async (t) => {
  const emu = await startEmulator(t);
  const a = await addFault(emu, { kind: '5xx', routes: ['files/list_folder'] });
  const b = await addFault(emu, { kind: '429', routes: ['files/copy_v2'] });
  t.not(a, b);
  await rpc(emu, 'files/list_folder', { path: '' });
  await rpc(emu, 'files/list_folder', { path: '' });
  await account(emu);
  const rules = await faultRules(emu);
  t.is(rules.length, 2);
  const ra = rules.find((r) => String(r.id) === a);
  const rb = rules.find((r) => String(r.id) === b);
  t.is(ra?.kind, '5xx');
  t.is(ra?.fired, 2);
  t.is(rb?.kind, '429');
  t.is(rb?.fired, 0);
});

test('stats: bytes, per-route requests and statuses; reset zeros them', async (t) => {
  const emu = await startEmulator(t);
  await emu.admin('POST', '/stats/reset');
  const data = randomBytes(300_000);
  t.is((await upload(emu, '/s.bin', data)).status, 200);
  const dl = await download(emu, '/s.bin');
  t.is(dl.status, 200);
  t.is(dl.body.length, data.length);
  t.is((await rpc(emu, 'files/get_metadata', { path: '/nope' })).status, 409);
  await emu.admin('GET', '/config'); // admin calls are not counted

  const s = await emu.admin('GET', '/stats');
  t.true(s.bytesSent >= data.length, `bytesSent ${s.bytesSent}`);
  t.true(s.bytesReceived >= data.length, `bytesReceived ${s.bytesReceived}`);
  t.is(s.requests['files/upload'], 1);
  t.is(s.requests['files/download'], 1);
  t.is(s.requests['files/get_metadata'], 1);
  t.is(Object.values(s.requests as Record<string, number>).reduce((x, y) => x + y, 0), 3);
  t.is(s.statuses['200'], 2);
  t.is(s.statuses['409'], 1);

  await download(emu, '/s.bin');
  const s2 = await emu.admin('GET', '/stats');
  t.true(s2.bytesSent >= s.bytesSent + data.length);
  t.is(s2.requests['files/download'], 2);

  await emu.admin('POST', '/stats/reset');
  const z = await emu.admin('GET', '/stats');
  t.is(z.bytesSent, 0);
  t.is(z.bytesReceived, 0);
  t.true(Object.values(z.requests as Record<string, number>).every((n) => n === 0));
  t.true(Object.values(z.statuses as Record<string, number>).every((n) => n === 0));
});

// ---------------------------------------------------------------- shaping

test('config latencyMs delays responses (lower bound); 0 restores the setting', async (t) => {
  const emu = await startEmulator(t);
  const cfg = await emu.admin('POST', '/config', { latencyMs: 200 });
  t.is(cfg.latencyMs, 200);
  t.is(typeof cfg.bandwidthBytesPerSec, 'number', 'POST /config returns the full config');
  const [r, ms] = await timed(() => account(emu));
  t.is(r.status, 200);
  t.true(ms >= 190, `took ${ms.toFixed(0)} ms`);
  const [r2, ms2] = await timed(() => rpc(emu, 'files/list_folder', { path: '' }));
  t.is(r2.status, 200);
  t.true(ms2 >= 190, `took ${ms2.toFixed(0)} ms`);
  await emu.admin('POST', '/config', { latencyMs: 0 });
  t.is((await emu.admin('GET', '/config')).latencyMs, 0);
  t.is((await account(emu)).status, 200);
});

test('config bandwidthBytesPerSec throttles a 2 MB download (lower bound)', async (t) => {
  const emu = await startEmulator(t);
  const data = randomBytes(2_000_000);
  t.is((await upload(emu, '/bw.bin', data)).status, 200);
  t.is((await emu.admin('POST', '/config', { bandwidthBytesPerSec: 2_000_000 })).bandwidthBytesPerSec, 2_000_000);
  const [r, ms] = await timed(() => download(emu, '/bw.bin'));
  t.is(r.status, 200);
  t.true(r.body.equals(data));
  t.true(ms >= 900, `2 MB at 2 MB/s took ${ms.toFixed(0)} ms`);
  await emu.admin('POST', '/config', { bandwidthBytesPerSec: 0 });
  t.is((await emu.admin('GET', '/config')).bandwidthBytesPerSec, 0);
});

test('config bandwidthBytesPerSec also throttles uploads (lower bound)', async (t) => {
  const emu = await startEmulator(t);
  await emu.admin('POST', '/config', { bandwidthBytesPerSec: 1_000_000 });
  const data = randomBytes(1_000_000);
  const [r, ms] = await timed(() => upload(emu, '/up.bin', data));
  t.is(r.status, 200, r.text);
  t.true(ms >= 900, `1 MB at 1 MB/s took ${ms.toFixed(0)} ms`);
});

test('--latency-ms and --bandwidth 2M flags set the config and take effect', async (t) => {
  const emu = await startEmulator(t, { args: ['--latency-ms', '150', '--bandwidth', '2M'] });
  const cfg = await emu.admin('GET', '/config');
  t.is(cfg.latencyMs, 150);
  t.is(cfg.bandwidthBytesPerSec, 2_000_000);
  const [r, ms] = await timed(() => account(emu));
  t.is(r.status, 200);
  t.true(ms >= 140, `took ${ms.toFixed(0)} ms`);
});

test('--bandwidth 2Mi is binary (2·2^20)', async (t) => {
  const emu = await startEmulator(t, { args: ['--bandwidth', '2Mi'] });
  t.is((await emu.admin('GET', '/config')).bandwidthBytesPerSec, 2 * 2 ** 20);
});

async function longpoll(emu: Emulator, cursor: string): Promise<any> {
  const r = await rpc(emu, 'files/list_folder/longpoll', { cursor, timeout: 30 }, { auth: null });
  if (r.status !== 200) throw new Error(`longpoll: ${r.status} ${r.text}`);
  return json(r);
}

test('longpollBackoffSec adds backoff to longpoll answers', async (t: ExecutionContext) => {
  const emu = await startEmulator(t);
  await emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  const cur = await rpc(emu, 'files/list_folder/get_latest_cursor', { path: '' });
  t.is(cur.status, 200, cur.text);
  const cursor = json(cur).cursor as string;

  const before = await longpoll(emu, cursor);
  t.is(before.changes, false);
  t.falsy(before.backoff, JSON.stringify(before));

  const cfg = await emu.admin('POST', '/config', { longpollBackoffSec: 5 });
  t.is(cfg.longpollBackoffSec, 5);
  const quiet = await longpoll(emu, cursor);
  t.is(quiet.changes, false);
  t.is(quiet.backoff, 5);

  t.is((await upload(emu, '/change.txt', 'x')).status, 200);
  const changed = await longpoll(emu, cursor);
  t.is(changed.changes, true);
  t.is(changed.backoff, 5);

  await emu.admin('POST', '/config', { longpollBackoffSec: 0 });
  const after = await longpoll(emu, cursor);
  t.falsy(after.backoff, JSON.stringify(after));
});
