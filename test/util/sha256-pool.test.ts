/**
 * Sha256Pool: digests equal node:crypto's for shared and plain buffers, many jobs at once,
 * a worker that dies fails only its job with a clear error and is replaced, close().
 */
import { createHash, randomBytes } from 'node:crypto';
import test from 'ava';
import { Sha256Pool, Sha256PoolError } from '../../src/util/sha256-pool.js';

const sha = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();
const crashWorker = new URL('./sha256-crash-worker.js', import.meta.url);

test('digests match node:crypto, for SharedArrayBuffer-backed and plain buffers, 40 at once', async (t) => {
  const pool = new Sha256Pool({ size: 2 });
  t.teardown(() => pool.close());
  const bufs: Buffer[] = [];
  for (let i = 0; i < 40; i++) {
    const n = [0, 1, 4 * 1024 * 1024, 12345 + i][i % 4]!;
    const b = i % 2 === 0 ? Buffer.from(new SharedArrayBuffer(n)) : Buffer.allocUnsafe(n);
    randomBytes(n).copy(b);
    // A view that does not start at its buffer's start.
    bufs.push(i % 5 === 0 && n > 10 ? b.subarray(7, n - 3) : b);
  }
  const got = await Promise.all(bufs.map((b) => pool.digest(b)));
  for (let i = 0; i < bufs.length; i++) t.true(got[i]!.equals(sha(bufs[i]!)), `buffer ${i}`);
  t.true(pool.workers <= 2);
  t.is(pool.crashes, 0);
});

for (const [how, marker, message] of [
  ['exits', 0xee, /exit code 7/],
  ['throws', 0xef, /told to throw/],
] as const) {
  test(`a worker that ${how} fails its job with a clear error; the pool replaces it and goes on`, async (t) => {
    const pool = new Sha256Pool({ size: 1, workerUrl: crashWorker });
    t.teardown(() => pool.close());
    const good = Buffer.from('hello');
    const bad = Buffer.from([marker, 1, 2, 3]);
    const before = pool.digest(good);
    const dying = pool.digest(bad);
    const after = pool.digest(Buffer.from('world'));
    t.true((await before).equals(sha(good)));
    const e = await t.throwsAsync(dying, { instanceOf: Sha256PoolError });
    t.regex(e.message, /a SHA-256 worker stopped/);
    t.regex(e.message, message);
    t.regex(e.message, /while hashing 4 bytes/);
    t.true((await after).equals(sha(Buffer.from('world'))), 'the job queued behind the dead one is served by a new worker');
    t.is(pool.crashes, 1);
    t.is(pool.workers, 1);
  });
}

test('close fails waiting and running jobs and later calls; the real worker file is found', async (t) => {
  const pool = new Sha256Pool({ size: 1 });
  const big = Buffer.alloc(32 * 1024 * 1024, 1);
  const jobs = [pool.digest(big), pool.digest(big), pool.digest(big)];
  await pool.close();
  for (const j of jobs) await t.throwsAsync(j, { instanceOf: Sha256PoolError, message: /closed/ });
  await t.throwsAsync(pool.digest(big), { instanceOf: Sha256PoolError, message: /closed/ });
  t.is(pool.workers, 0);
});

test('an idle pool does not keep the process alive: its workers are unref\'d', async (t) => {
  // A child process that hashes once and then has nothing left to do must exit by itself.
  const { execFile } = await import('node:child_process');
  const url = new URL('../../src/util/sha256-pool.js', import.meta.url).href;
  const code = `import { Sha256Pool } from '${url}'; const p = new Sha256Pool(); const d = await p.digest(Buffer.from('x')); console.log(d.toString('hex'));`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', code], { timeout: 60_000 }, (e, stdout) => (e ? reject(new Error(e.message)) : resolve(stdout)));
  });
  t.is(out.trim(), sha(Buffer.from('x')).toString('hex'));
});

test('warm starts the workers before any job, once (idle, unref\'d: a warmed pool alone does not keep a process alive); close ends them', async (t) => {
  const pool = new Sha256Pool({ size: 2 });
  t.is(pool.workers, 0, 'workers start lazily');
  pool.warm();
  t.is(pool.workers, 2);
  pool.warm();
  t.is(pool.workers, 2, 'a second warm starts none');
  const data = randomBytes(1000);
  t.deepEqual(await pool.digest(data), sha(data));
  t.is(pool.workers, 2, 'the job ran on a warmed worker');
  await pool.close();
  t.is(pool.workers, 0);
  pool.warm();
  t.is(pool.workers, 0, 'a closed pool starts nothing');

  const { execFile } = await import('node:child_process');
  const url = new URL('../../src/util/sha256-pool.js', import.meta.url).href;
  const code = `import { Sha256Pool } from '${url}'; const p = new Sha256Pool(); p.warm(); console.log(p.workers);`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', code], { timeout: 60_000 }, (e, stdout) => (e ? reject(new Error(e.message)) : resolve(stdout)));
  });
  t.is(out.trim(), '1', 'the process exited by itself with a warmed, idle worker');
});
