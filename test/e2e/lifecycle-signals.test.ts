/**
 * The serving process's lifecycle (issue 8), end to end: a SIGTERM during start-up stops it
 * with nothing left behind; a failure after the kernel mount (a control-socket folder that
 * cannot be made) unmounts before exiting; SIGHUP reopens the log; the log has levels and
 * DEBUG lines only with --debug; the control socket is in a private folder of the user's
 * ($XDG_RUNTIME_DIR/sreg, else the cache folder's sreg/run) with an unpredictable name, and
 * another user cannot connect to it.
 */
import test, { type ExecutionContext } from 'ava';
import Database from 'better-sqlite3';
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI, startEmulator, type Emulator } from '../helpers/emulator.js';
import { e2e, FUSE, isMounted, mountFor, ok, sh, waitFor, privateHome, type PrivateHome } from './helpers.js';

const e2eTest = e2e('lifecycle-signals.test');
const exec = promisify(execFile);

let workDir = '';
test.before(async () => {
  if (FUSE.ok) {
    workDir = await mkdtemp(path.join(tmpdir(), 'sreg-e2e-signals-'));
    await chmod(workDir, 0o711); // others may pass through; what is private must say so itself
  }
});
test.after.always(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

type Home = PrivateHome;
const home = (t: ExecutionContext, emu: Emulator, name: string, extra: Record<string, string> = {}): Promise<Home> => privateHome(t, workDir, emu, name, extra);

const sreg = (h: Home, args: string[]): ReturnType<typeof sh> => sh(process.execPath, [CLI, ...args], { env: h.env, timeoutMs: 120_000 });

/** `sreg mount DIR --foreground …` as a child; its output collected. */
function foreground(t: ExecutionContext, h: Home, args: string[] = []): { out: () => string; exit: Promise<{ code: number | null; signal: string | null }>; pid: number } {
  const child = spawn(process.execPath, [CLI, 'mount', h.dir, '--foreground', ...args], { env: h.env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return { out: () => out, exit, pid: child.pid! };
}

const mountRows = (h: Home): { mountpoint: string; control_socket: string; log_file: string; pid: number }[] => {
  const db = new Database(path.join(h.home, '.singularity', 'sreg', 'state.db'), { readonly: true });
  try {
    return db.prepare('SELECT mountpoint, control_socket, log_file, pid FROM sreg_mounts').all() as never;
  } finally {
    db.close();
  }
};

e2eTest('SIGTERM during start-up: the mount stops at once, exit 0, nothing mounted and nothing recorded', async (t) => {
  const emu = await startEmulator(t);
  const h = await home(t, emu, 'early');
  // Every answer takes a while, so the catalog listing after "connected to" is still under way.
  await emu.admin('POST', '/config', { latencyMs: 1500 });
  const m = foreground(t, h);
  await waitFor('the mount to connect', () => Promise.resolve(/connected to /.test(m.out()) ? true : undefined), 60_000, 20);
  process.kill(m.pid, 'SIGTERM');
  t.deepEqual(await m.exit, { code: 0, signal: null }, m.out());
  t.regex(m.out(), / INFO SIGTERM during start-up: stopping\n/);
  t.regex(m.out(), /stopped by SIGTERM during start-up: nothing left mounted/);
  t.notRegex(m.out(), /ready: mounted on/);
  t.false(await isMounted(h.dir));
  t.deepEqual(mountRows(h), []);
});

e2eTest('a failure after the kernel mount (the control socket folder cannot be made) unmounts before exiting', async (t) => {
  const emu = await startEmulator(t);
  const ro = await mkdtemp(path.join(workDir, 'ro-runtime-'));
  await ok('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]);
  t.teardown(() => exec('umount', [ro]).then(() => undefined, () => undefined));
  const h = await home(t, emu, 'late', { XDG_RUNTIME_DIR: ro });
  const m = foreground(t, h, ['--debug']);
  const { code } = await m.exit;
  t.is(code, 7, m.out());
  t.regex(m.out(), /DEBUG kernel mount up on /, 'it failed after the kernel mount');
  t.regex(m.out(), /DEBUG undone: the kernel mount on /);
  t.regex(m.out(), /^ERROR cannot make the control socket folder .*: the file system is read-only$/m);
  t.false(await isMounted(h.dir), 'no kernel mount left behind');
  t.deepEqual(mountRows(h), []);
});

e2eTest('a background mount: private log with levels (DEBUG with --debug), SIGHUP reopens it, and a private control socket another user cannot reach', async (t) => {
  const emu = await startEmulator(t);
  const runtime = await mkdtemp(path.join(workDir, 'runtime-'));
  await chmod(runtime, 0o711);
  const h = await home(t, emu, 'bg', { XDG_RUNTIME_DIR: runtime });
  const r = await sreg(h, ['mount', h.dir, '--debug']);
  t.is(r.code, 0, r.stderr);
  t.teardown(() => sreg(h, ['unmount', h.dir]));
  const [row] = mountRows(h);
  t.truthy(row);
  if (!row) return;
  // The socket: unpredictable name, in $XDG_RUNTIME_DIR/sreg (0700), itself 0600.
  t.regex(row.control_socket, new RegExp(`^${runtime.replace(/[/.]/g, '\\$&')}/sreg/ctl-[0-9a-f]{16}\\.sock$`));
  t.is((await stat(path.dirname(row.control_socket))).mode & 0o777, 0o700);
  t.is((await stat(row.control_socket)).mode & 0o777, 0o600);
  const probe = `require('node:net').createConnection(process.argv[1]).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); });`;
  const asNobody = await new Promise<string>((resolve) => {
    execFile(process.execPath, ['-e', probe, row.control_socket], { uid: 65534, gid: 65534, timeout: 30_000, cwd: '/' }, (_e, stdout) => resolve(stdout.trim()));
  });
  t.is(asNobody, 'EACCES', 'another user cannot connect');
  const asOwner = await sh(process.execPath, ['-e', probe, row.control_socket]);
  t.is(asOwner.stdout.trim(), 'connected', 'the owner can');

  // The log: private, every line levelled, DEBUG lines with --debug.
  t.is((await stat(row.log_file)).mode & 0o777, 0o600);
  t.is((await sreg(h, ['status'])).code, 0);
  const log = await waitFor('the status request in the log', async () => {
    const text = await readFile(row.log_file, 'utf8');
    return / DEBUG control: status\n/.test(text) ? text : undefined;
  });
  t.regex(log, / INFO ready: mounted on /);

  // logrotate moves the file away and sends SIGHUP: the mount writes to a new file at the old name.
  await rename(row.log_file, `${row.log_file}.old`);
  process.kill(row.pid, 'SIGHUP');
  const fresh = await waitFor('a new log file after SIGHUP', () => readFile(row.log_file, 'utf8').catch(() => undefined), 10_000, 50);
  t.regex(fresh, /^\S+ INFO SIGHUP: reopened the log\n/);
  t.is((await stat(row.log_file)).mode & 0o777, 0o600);
  t.is((await sreg(h, ['status'])).code, 0);
  t.regex(await readFile(row.log_file, 'utf8'), / DEBUG control: status\n/);
  t.notRegex(await readFile(`${row.log_file}.old`, 'utf8'), /SIGHUP/);
  t.true(await isMounted(h.dir), 'SIGHUP does not stop the mount');

  const u = await sreg(h, ['unmount', h.dir]);
  t.is(u.code, 0, u.stderr);
  t.false(await isMounted(h.dir));
  t.deepEqual(mountRows(h), []);
  await t.throwsAsync(stat(row.control_socket), { code: 'ENOENT' }, 'the socket is removed');
});

e2eTest('without --debug no DEBUG lines; without $XDG_RUNTIME_DIR the socket is in the cache folder\'s private sreg/run', async (t) => {
  const m = await mountFor(t);
  t.regex(await m.log(), / INFO ready: mounted on /);
  t.is((await m.sreg(['status'])).code, 0);
  t.notRegex(await m.log(), / DEBUG /);
  const db = new Database(path.join(m.home, '.singularity', 'sreg', 'state.db'), { readonly: true });
  const sock = db.prepare('SELECT control_socket FROM sreg_mounts').pluck().get() as string;
  db.close();
  t.regex(sock, new RegExp(`^${m.home.replace(/[/.]/g, '\\$&')}/\\.singularity/sreg/run/ctl-[0-9a-f]{16}\\.sock$`));
  t.is((await stat(path.dirname(sock))).mode & 0o777, 0o700);
  for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) t.is((await stat(path.join(m.home, '.singularity', 'sreg', f))).mode & 0o777, 0o600, f);
  t.is((await stat(path.join(m.home, '.singularity', 'sreg'))).mode & 0o777, 0o700);
});
