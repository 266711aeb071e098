/**
 * A transport that cannot hang (issue 8): against the emulator's `stall` fault (accept and never
 * answer; answer the headers and stop mid-body) and a bare TCP server that never answers,
 * every kind of request (the SDK's RPC calls, ranged downloads, uploads) fails with a
 * RemoteError('network') that names the stall, after exactly STALLED_ATTEMPTS tries, and a
 * stall that clears is ridden through. Timeouts are short (the `timeoutMs` setting); no test
 * measures time: the emulator's request counters say how many tries were made.
 */
import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import path from 'node:path';
import { DEFAULT_RETRY, STALLED_ATTEMPTS, withRetries } from '../../src/dropbox/retry.js';
import { StallError } from '../../src/dropbox/errors.js';
import { DropboxClient } from '../../src/dropbox/client.js';
import { startEmulator } from '../helpers/emulator.js';
import { client, fault, MiB, partials, randomFile, remoteError, resetStats, sha256File, stats, tempDir } from './helpers.js';

const TIMEOUT_MS = 300;
/** For calls that stall: a short timeout. */
const fast = { timeoutMs: TIMEOUT_MS, retry: { baseDelayMs: 10 } };
/** For calls that must also succeed on a loaded machine (2 cores, parallel tests). */
const patient = { timeoutMs: 3000, retry: { baseDelayMs: 10 } };

/** A TCP server that accepts connections and never sends a byte; closed at teardown. */
async function silentServer(t: ExecutionContext): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

test('an endpoint that accepts and never answers: the RPC call fails as a stall, not a hang', async (t) => {
  const url = await silentServer(t);
  const c = new DropboxClient({ endpoint: url, accessToken: 'tok-abc', workers: 2, ...fast });
  t.teardown(() => c.close());
  const e = await remoteError(t, c.currentAccount(), 'network');
  t.regex(e.message, /did not start answering/);
  t.regex(e.message, /users\/get_current_account/);
  t.false(e.message.includes('tok-abc'));
});

test('an endpoint that accepts and never answers: a ranged download fails as a stall', async (t) => {
  const url = await silentServer(t);
  const c = new DropboxClient({ endpoint: url, accessToken: 'tok-abc', workers: 2, ...fast });
  t.teardown(() => c.close());
  const e = await remoteError(t, c.readRange('rev:0123456789abcdef', 0, 100), 'network');
  t.regex(e.message, /did not start answering within 0\.3 s during files\/download/);
});

test('stall fault on every RPC: the call is tried STALLED_ATTEMPTS times, then fails', async (t) => {
  const emu = await startEmulator(t);
  await fault(emu, { kind: 'stall', routes: ['files/list_folder'] });
  const c = client(t, emu, fast);
  const e = await remoteError(t, c.listFolder('', false), 'network');
  t.regex(e.message, /did not start answering/);
  t.is((await stats(emu)).requests['files/list_folder'], STALLED_ATTEMPTS);
});

test('a stall that clears: the RPC call is retried and succeeds', async (t) => {
  const emu = await startEmulator(t);
  await fault(emu, { kind: 'stall', routes: ['users/get_current_account'], count: 1 });
  const c = client(t, emu, patient);
  t.truthy((await c.currentAccount()).accountId);
  t.is((await stats(emu)).requests['users/get_current_account'], 2);
});

test('headers, then the body stops: a block fetch fails as a stall mid-body', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const src = path.join(dir, 'src');
  await randomFile(src, MiB);
  const meta = await client(t, emu).upload(src, MiB, { path: '/f.bin', mode: 'add' });
  // Long enough for the headers to come on a loaded machine: the phase is what is checked.
  const c = client(t, emu, { ...patient, timeoutMs: 2000 });
  await fault(emu, { kind: 'stall', routes: ['files/download'], afterBytes: 1000 });
  await resetStats(emu);
  const e = await remoteError(t, c.readRange(`rev:${meta.rev}`, 0, MiB), 'network');
  t.regex(e.message, /stopped sending its answer within 2 s during files\/download/);
  t.is((await stats(emu)).requests['files/download'], STALLED_ATTEMPTS);
});

test('a download stalled mid-body once resumes where it stopped and checks out', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const src = path.join(dir, 'src');
  const sha = await randomFile(src, 3 * MiB);
  const c = client(t, emu, { ...patient, workers: 1 });
  await c.upload(src, 3 * MiB, { path: '/f.bin', mode: 'add' });
  await fault(emu, { kind: 'stall', routes: ['files/download'], afterBytes: 100_000, count: 1 });
  const dest = path.join(dir, 'out', 'f.bin');
  await c.download('/f.bin', dest);
  t.is(await sha256File(dest), sha);
  t.deepEqual(await partials(path.dirname(dest)), []);
  t.is((await stats(emu)).requests['files/download'], 2);
});

test('a stalled download (pull) fails and leaves no partial file', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const src = path.join(dir, 'src');
  await randomFile(src, MiB);
  await client(t, emu).upload(src, MiB, { path: '/f.bin', mode: 'add' });
  const c = client(t, emu, fast);
  await fault(emu, { kind: 'stall', routes: ['files/download'] });
  const dest = path.join(dir, 'out', 'f.bin');
  await remoteError(t, c.download('/f.bin', dest), 'network');
  t.deepEqual(await partials(path.dirname(dest)), []);
});

for (const [title, size, routes] of [
  ['a small upload (one request)', MiB, ['files/upload']],
  ['an upload session', 9 * MiB, ['files/upload_session/append_v2']],
] as const) {
  test(`the answer to ${title} never comes: it fails as a stall`, async (t) => {
    const emu = await startEmulator(t);
    const dir = await tempDir(t);
    const src = path.join(dir, 'src');
    await randomFile(src, size);
    await fault(emu, { kind: 'stall', routes: [...routes] });
    const c = client(t, emu, { ...patient, workers: 1 });
    const e = await remoteError(t, c.upload(src, size, { path: '/f.bin', mode: 'add' }), 'network');
    t.regex(e.message, /did not start answering/);
    t.is((await stats(emu)).requests[routes[0]], STALLED_ATTEMPTS);
  });
}

test('an upload whose answer stops mid-body: a stall, then the retry finds the file committed', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const src = path.join(dir, 'src');
  await randomFile(src, MiB);
  // The answer's JSON stops after 5 bytes, once: the upload did land; the retry of an `add`
  // of the same bytes succeeds (Dropbox keeps one copy of identical content).
  await fault(emu, { kind: 'stall', routes: ['files/upload'], afterBytes: 5, count: 1 });
  const c = client(t, emu, patient);
  const meta = await c.upload(src, MiB, { path: '/f.bin', mode: 'add' });
  t.is(meta.pathLower, '/f.bin');
  t.is((await stats(emu)).requests['files/upload'], 2);
});

// ---- the policy alone (no network): how many tries, with and without a read deadline ----

const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
const quick = { ...DEFAULT_RETRY, baseDelayMs: 1, maxDelayMs: 2 };

test('policy: without a deadline, a refused endpoint gets 3 tries and a stalled one STALLED_ATTEMPTS', async (t) => {
  let n = 0;
  await t.throwsAsync(withRetries('r', () => Promise.reject(Object.assign(refused(), { n: ++n })), quick));
  t.is(n, 3);
  let s = 0;
  await t.throwsAsync(withRetries('r', () => Promise.reject(new StallError('headers', 5, { cause: ++s })), quick));
  t.is(s, STALLED_ATTEMPTS);
});

test('policy: with a deadline, failures are retried past the quick tries until it passes (a fake clock)', async (t) => {
  let now = 0;
  let n = 0;
  // Recovers at the 10th try: well past 3, within the deadline.
  const v = await withRetries('r', async () => (++n < 10 ? Promise.reject(refused()) : 'ok'), { ...quick, deadlineMs: 60_000, nowMs: () => (now += 1000) });
  t.is(v, 'ok');
  t.is(n, 10);
  // Never recovers: each try "takes" 1 s on the fake clock; it stops once the next one would start past 10 s.
  now = 0;
  n = 0;
  const e = await t.throwsAsync(withRetries('r', () => (n++, Promise.reject(new StallError('body', 5))), { ...quick, deadlineMs: 10_000, nowMs: () => (now += 1000) }));
  t.regex(e.message, /stopped sending its answer/);
  t.true(n > STALLED_ATTEMPTS && n <= 10, `${n} tries`);
});
