/**
 * What `sreg mount` and `sreg unmount` may touch, and how a dead mount is recognised (issue 8),
 * end to end with real kernel mounts: a tmpfs on the folder is never touched; a mount killed
 * with -9 is recognised as dead at once — also while it is a zombie (which kill(pid, 0) counts
 * as alive) and when its pid now names another process (by the recorded start time) — and
 * cleared by `sreg unmount` or `sreg mount`; a second mount of the same state and a wrong
 * token are one line each, exit 6 and exit 4.
 */
import test, { type ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI, startEmulator, type Emulator } from '../helpers/emulator.js';
import { e2e, FUSE, isMounted, mountFor, ok, sh, waitFor, privateHome, type PrivateHome } from './helpers.js';

const e2eTest = e2e('lifecycle-guard.test');
const exec = promisify(execFile);

let workDir = '';
test.before(async () => {
  if (FUSE.ok) workDir = await mkdtemp(path.join(tmpdir(), 'sreg-e2e-guard-'));
});
test.after.always(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

type Home = PrivateHome;
const home = (t: ExecutionContext, emu: Emulator | undefined, name: string): Promise<Home> => privateHome(t, workDir, emu, name);

const sreg = (h: Home, args: string[], env: Record<string, string> = {}): ReturnType<typeof sh> =>
  sh(process.execPath, [CLI, ...args], { env: { ...h.env, ...env }, timeoutMs: 120_000 });

const oneErrorLine = (t: ExecutionContext, stderr: string, re: RegExp): void => {
  t.regex(stderr, /^ERROR [^\n]+\n$/, `exactly one ERROR line, got: ${stderr}`);
  t.regex(stderr, re);
};

/** `/proc/PID/stat`'s state letter ('Z' for a zombie), or undefined. */
async function procState(pid: number): Promise<string | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return text?.slice(text.lastIndexOf(')') + 2).split(' ')[0];
}

/**
 * `sreg mount DIR --foreground` as the child of a shell that then execs `sleep`: a parent that
 * never waits, so the mount, once killed, stays a zombie until the test ends the sleep.
 */
async function zombieParentMount(t: ExecutionContext, h: Home): Promise<{ pid: number; parent: ChildProcess }> {
  const parent = spawn('sh', ['-c', '"$0" "$1" mount "$2" --foreground & echo "pid $!"; exec sleep 600', process.execPath, CLI, h.dir], {
    env: h.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (parent.exitCode === null && parent.signalCode === null) parent.kill('SIGKILL');
  });
  let out = '';
  parent.stdout.on('data', (d: Buffer) => (out += d.toString()));
  parent.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(`the mount to be ready: ${out}`, () => Promise.resolve(/ready: mounted on/.test(out) ? true : undefined), 60_000, 50);
  const pid = Number(/^pid (\d+)$/m.exec(out)?.[1]);
  t.true(pid > 0);
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  return { pid, parent };
}

e2eTest('sreg unmount and sreg mount refuse a folder with a tmpfs on it and touch nothing', async (t) => {
  const h = await home(t, undefined, 'tmpfs');
  await ok('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', h.dir]);
  t.teardown(() => exec('umount', [h.dir]).then(() => undefined, () => undefined));
  await writeFile(path.join(h.dir, 'f'), 'precious\n');

  const u = await sreg(h, ['unmount', h.dir]);
  t.is(u.code, 2);
  oneErrorLine(t, u.stderr, new RegExp(`^ERROR ${h.dir.replace(/[/.]/g, '\\$&')} is not an sreg mount \\(it is tmpfs from tmpfs\\): not touched\\n$`));
  const m = await sreg(h, ['mount', h.dir]);
  t.is(m.code, 6);
  oneErrorLine(t, m.stderr, /is already mounted \(tmpfs, not an sreg mount\)/);
  t.true(await isMounted(h.dir), 'the tmpfs is still mounted');
  t.is(await readFile(path.join(h.dir, 'f'), 'utf8'), 'precious\n', 'and its file is untouched');
});

e2eTest('kill -9 leaves a zombie (kill(pid, 0) says alive): sreg unmount recognises the dead mount at once and clears it', async (t) => {
  const emu = await startEmulator(t);
  const h = await home(t, emu, 'zombie-u');
  const { pid } = await zombieParentMount(t, h);
  process.kill(pid, 'SIGKILL');
  await waitFor('the mount to be a zombie', async () => ((await procState(pid)) === 'Z' ? true : undefined), 10_000, 20);
  t.notThrows(() => process.kill(pid, 0), 'kill(pid, 0) still succeeds on the zombie');
  const u = await sreg(h, ['unmount', h.dir]);
  t.is(u.code, 0, u.stderr);
  t.regex(u.stdout, /^cleared a dead mount on /m);
  t.false(await isMounted(h.dir));
  t.is((await sreg(h, ['status'])).stdout.trim(), 'no sreg mounts');
});

e2eTest('kill -9 leaves a zombie: sreg mount at once clears the dead mount and mounts again', async (t) => {
  const emu = await startEmulator(t);
  const h = await home(t, emu, 'zombie-m');
  const { pid } = await zombieParentMount(t, h);
  process.kill(pid, 'SIGKILL');
  await waitFor('the mount to be a zombie', async () => ((await procState(pid)) === 'Z' ? true : undefined), 10_000, 20);
  const m = await sreg(h, ['mount', h.dir]);
  t.is(m.code, 0, m.stderr);
  t.regex(m.stdout, /^mounted Dropbox on /m);
  t.true(await isMounted(h.dir));
  t.deepEqual(await readFile(`/proc/mounts`, 'utf8').then((s) => s.split('\n').filter((l) => l.split(' ')[1] === h.dir).map((l) => l.split(' ').slice(0, 3).join(' '))), [`sreg ${h.dir} fuse.sreg`]);
  const u = await sreg(h, ['unmount', h.dir]);
  t.is(u.code, 0, u.stderr);
  t.regex(u.stdout, /^unmounted /m);
  t.false(await isMounted(h.dir));
});

e2eTest('a dead mount whose pid now names another running process (reused pid) is recognised by its start time and cleared', async (t) => {
  const m = await mountFor(t);
  const child = m.child()!;
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  // The pid now belongs to a live process (this test worker) that started at another time.
  const state = new Database(path.join(m.home, '.singularity', 'sreg', 'state.db'));
  const before = state.prepare('SELECT pid, pid_start FROM sreg_mounts').all() as { pid: number; pid_start: string }[];
  t.is(before.length, 1);
  t.truthy(before[0]?.pid_start);
  state.prepare('UPDATE sreg_mounts SET pid = ?').run(process.pid);
  state.close();
  const again = await m.sreg(['mount', m.dir]);
  t.is(again.code, 0, again.stderr);
  t.true(await isMounted(m.dir));
  const u = await m.sreg(['unmount', m.dir]);
  t.is(u.code, 0, u.stderr);
  t.false(await isMounted(m.dir));
});

e2eTest('a second sreg mount of the same state is one line, exit 6; sreg mount with a wrong token is one line, exit 4; nothing is left mounted', async (t) => {
  const m = await mountFor(t);
  const second = path.join(m.home, 'second');
  await mkdir(second);
  const r = await m.sreg(['mount', second]);
  t.is(r.code, 6);
  oneErrorLine(t, r.stderr, /^ERROR this cache folder's state is already mounted on .* \(pid \d+\): one mount per cache folder/);
  t.false(await isMounted(second));

  const other = await home(t, m.emu, 'badtoken');
  for (const args of [['mount', other.dir], ['mount', other.dir, '--foreground']]) {
    const w = await sreg(other, args, { SREGISTRY_DROPBOX_TOKEN: 'not-a-valid-token' });
    t.is(w.code, 4, w.stderr);
    oneErrorLine(t, w.stderr, /^ERROR .*SREGISTRY_DROPBOX_TOKEN/);
    t.notRegex(w.stderr + w.stdout, /not-a-valid-token/, 'the token is never printed');
    t.false(await isMounted(other.dir));
  }
});

e2eTest('a stopped mount (SIGSTOP) is never waited on: sreg status and sreg unmount answer within their probe deadline, and touch nothing', async (t) => {
  t.timeout(110_000);
  const m = await mountFor(t);
  const pid = m.child()!.pid!;
  process.kill(pid, 'SIGSTOP');
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  });
  const s = await m.sreg(['status'], { timeoutMs: 60_000 });
  t.is(s.code, 0, s.stderr);
  t.regex(s.stdout, /: not answering \(the mount process did not answer on its control socket within 10 s\)/);
  const u = await m.sreg(['unmount', m.dir], { timeoutMs: 60_000 });
  t.is(u.code, 5, u.stderr);
  oneErrorLine(t, u.stderr, /^ERROR the sreg mount on .* \(pid \d+\) does not answer: end it \(kill -9\), then run sreg unmount again\n$/);
  t.true(await isMounted(m.dir), 'left mounted');
  process.kill(pid, 'SIGCONT');
  const again = await m.sreg(['unmount', m.dir]);
  t.is(again.code, 0, again.stderr);
  t.false(await isMounted(m.dir));
});
