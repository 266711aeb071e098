/**
 * Shared pieces of the end-to-end suite (test/e2e/): a mount shared by one file's serial tests
 * (test/helpers/mount.ts's startMount, with its teardowns run by an `after.always` hook), real
 * clients run as child processes with timeouts, an errno probe (a tiny Node script using
 * fs.promises against the mount), the remote seen through the official SDK ("another
 * machine"), and Dropbox's content_hash computed here with node:crypto, independently of the
 * code `sreg` and the emulator share.
 *
 * Where /dev/fuse or root is missing every test is registered with `test.skip` and a loud
 * warning says why; on our machines they run.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Dropbox } from 'dropbox';
import { fuseAvailable, startMount, type Mounted, type MountOptions } from '../helpers/mount.js';

export const FUSE = fuseAvailable();

/** Registers a serial test, or a skipped one (with a loud warning) where FUSE can't run. */
export function e2e(file: string): (title: string, impl: (t: ExecutionContext) => Promise<void>) => void {
  if (!FUSE.ok) {
    console.warn(`\n*** ${file}: SKIPPING the end-to-end FUSE tests: ${FUSE.why}. They need root and /dev/fuse; on our machines they must run. ***\n`);
    return (title, impl) => test.skip(title, impl);
  }
  return (title, impl) => test.serial(title, impl);
}

// ---- leftovers, whatever happens ------------------------------------------------------------

const fuseDirs = new Set<string>();
const loopDirs = new Set<string>();
const children = new Set<ChildProcess>();

function mountedSync(dir: string): boolean {
  try {
    return readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[1] === dir);
  } catch {
    return false;
  }
}

/** Last resort when the worker exits without its hooks (a crash, AVA's timeout): no mount, loop device or mount process left. */
function cleanupSync(): void {
  for (const d of loopDirs) if (mountedSync(d)) try { execFileSync('umount', ['-l', d], { timeout: 10_000 }); } catch { /* best effort */ }
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // Every other process this worker started (emulators, clients): by parent pid, never by name.
  try {
    for (const pid of execFileSync('pgrep', ['-P', String(process.pid)], { encoding: 'utf8', timeout: 5_000 }).split('\n').filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
  } catch { /* none */ }
  for (const d of fuseDirs) if (mountedSync(d)) try { execFileSync('fusermount', ['-uz', d], { timeout: 10_000 }); } catch { /* best effort */ }
}
process.once('exit', cleanupSync);
process.once('SIGTERM', () => {
  cleanupSync();
  process.kill(process.pid, 'SIGKILL');
});

/** Remembers a mount for the exit-time clean-up (its current serving process too). */
export function track(m: Mounted): Mounted {
  fuseDirs.add(m.dir);
  const remount = (): Promise<void> => m.remount();
  const note = (): void => {
    const c = m.child();
    if (c) children.add(c);
  };
  note();
  return { ...m, remount: async () => { try { await remount(); } finally { note(); } } };
}

/** A mount made per test: startMount plus the exit-time safety net. */
export async function mountFor(t: ExecutionContext, opts: MountOptions = {}): Promise<Mounted> {
  return track(await startMount(t, opts));
}

/** Runs teardowns the way AVA does (last registered first), for resources a whole file shares. */
export class SharedContext {
  private readonly fns: (() => unknown)[] = [];
  readonly t = { teardown: (fn: () => unknown) => void this.fns.push(fn) } as unknown as ExecutionContext;

  async close(): Promise<void> {
    for (const fn of this.fns.reverse()) {
      try {
        await fn();
      } catch (e) {
        console.error(`teardown failed: ${(e as Error).stack ?? String(e)}`);
      }
    }
    this.fns.length = 0;
  }
}

// ---- real clients -----------------------------------------------------------------------------

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A command as a user runs it: never throws, reports its exit code (killed after timeoutMs). */
export function sh(cmd: string, args: string[], o: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: o.timeoutMs ?? 60_000, maxBuffer: 256 * 1024 * 1024, env: o.env ?? process.env }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 255) : 0;
      resolve({ code, stdout, stderr: err && code === 255 ? `${stderr}\n${err.message}` : stderr });
    });
  });
}

/** Like sh(), but the command must succeed; returns its stdout. */
export async function ok(cmd: string, args: string[], o: { timeoutMs?: number } = {}): Promise<string> {
  const r = await sh(cmd, args, o);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A command's stdout as bytes (dd, cat); throws on failure. */
export function bytesOf(cmd: string, args: string[], timeoutMs = 60_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024, encoding: 'buffer' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}: ${stderr.toString()}`));
      else resolve(stdout);
    });
  });
}

/** `sha256sum FILE` on the mount. */
export async function sha256sum(file: string): Promise<string> {
  const out = await ok('sha256sum', [file], { timeoutMs: 90_000 });
  return out.split(' ')[0] ?? '';
}

const PROBE = `
const fs = require('node:fs').promises;
const [op, ...a] = JSON.parse(process.argv[1]);
const run = {
  stat: () => fs.stat(a[0]),
  rmdir: () => fs.rmdir(a[0]),
  mkdir: () => fs.mkdir(a[0]),
  unlink: () => fs.unlink(a[0]),
  rename: () => fs.rename(a[0], a[1]),
  readdir: () => fs.readdir(a[0]),
  create: async () => (await fs.open(a[0], 'w')).close(),
  read: async () => { const h = await fs.open(a[0], 'r'); try { await h.read(Buffer.alloc(16), 0, 16, 0); } finally { await h.close(); } },
  truncate: () => fs.truncate(a[0], Number(a[1])),
  setxattr: () => { throw new Error('no setxattr in node'); },
}[op];
run().then(() => console.log('OK'), (e) => console.log(e.code || e.message));
`;

/** The errno code ('ENOENT', …) a call gets on the mount, or 'OK': a separate Node process using fs.promises. */
export async function errnoOf(op: 'stat' | 'rmdir' | 'mkdir' | 'unlink' | 'rename' | 'readdir' | 'create' | 'read' | 'truncate', ...args: string[]): Promise<string> {
  const r = await sh(process.execPath, ['-e', PROBE, JSON.stringify([op, ...args])], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`probe ${op} failed to run: ${r.stderr}`);
  return r.stdout.trim();
}

export async function isMounted(dir: string): Promise<boolean> {
  const text = await readFile('/proc/mounts', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[1] === dir);
}

// ---- loop mounts --------------------------------------------------------------------------

/** `mount -o loop,ro,offset=N FILE DIR`; unmounted at teardown (before the FUSE mount goes). */
export async function loopMount(t: ExecutionContext, file: string, offset: number, dir: string): Promise<void> {
  loopDirs.add(dir);
  t.teardown(async () => {
    if (await isMounted(dir)) {
      const r = await sh('umount', [dir], { timeoutMs: 30_000 });
      if (r.code !== 0) await sh('umount', ['-l', dir], { timeoutMs: 30_000 });
    }
    loopDirs.delete(dir);
  });
  await ok('mount', ['-o', `loop,ro,offset=${offset}`, file, dir], { timeoutMs: 60_000 });
}

// ---- hashes, computed here --------------------------------------------------------------------

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Dropbox's content_hash: SHA-256 over the SHA-256 digests of each 4 MiB block. */
export function dropboxHash(b: Uint8Array): string {
  const all = createHash('sha256');
  const BLOCK = 4 * 1024 * 1024;
  for (let off = 0; off < b.length; off += BLOCK) all.update(createHash('sha256').update(b.subarray(off, off + BLOCK)).digest());
  return all.digest('hex');
}

/** Deterministic pseudo-random bytes (a seed's SHA-256 chain), so a failure can be reproduced. */
export function pseudoRandom(bytes: number, seed: string): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let h = createHash('sha256').update(seed).digest();
  for (let off = 0; off < bytes; off += 32) {
    h.copy(out, off, 0, Math.min(32, bytes - off));
    h = createHash('sha256').update(h).update(seed).digest();
  }
  return out;
}

// ---- the remote, through the SDK ----------------------------------------------------------------

export interface RemoteFile {
  name: string;
  path_display: string;
  rev: string;
  size: number;
  content_hash: string;
  server_modified: string;
}

/** The metadata of a path, or undefined when Dropbox says not_found. */
export async function remoteMeta(dbx: Dropbox, p: string): Promise<(RemoteFile & { '.tag': string }) | undefined> {
  try {
    return (await dbx.filesGetMetadata({ path: p })).result as never;
  } catch (e) {
    const err = e as { status?: number; error?: { error_summary?: string } };
    if (err.status === 409 && /not_found/.test(err.error?.error_summary ?? '')) return undefined;
    throw e;
  }
}

/** Names of a remote folder's entries (files and folders), sorted. */
export async function remoteNames(dbx: Dropbox, folder: string): Promise<string[]> {
  const r = await dbx.filesListFolder({ path: folder });
  return r.result.entries.map((e) => e.name).sort();
}

export async function remoteBytes(dbx: Dropbox, p: string): Promise<Buffer> {
  const r = await dbx.filesDownload({ path: p });
  return (r.result as unknown as { fileBinary: Buffer }).fileBinary;
}

export async function upload(dbx: Dropbox, p: string, contents: Buffer): Promise<RemoteFile> {
  return (await dbx.filesUpload({ path: p, contents, mode: { '.tag': 'overwrite' } })).result as never;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value other than undefined; throws `what` after the deadline. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, deadlineMs = 30_000, everyMs = 200): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: Error | undefined;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e instanceof Error ? e : new Error(String(e));
    }
    if (Date.now() > end) throw new Error(`gave up after ${deadlineMs / 1000} s waiting for: ${what}${last ? ` (last error: ${last.message})` : ''}`);
    await sleep(everyMs);
  }
}

/** Waits until the remote file has this content_hash; returns its metadata. */
export function waitForRemote(dbx: Dropbox, p: string, contentHash: string, deadlineMs = 30_000): Promise<RemoteFile> {
  return waitFor(`${p} in Dropbox with content_hash ${contentHash.slice(0, 12)}…`, async () => {
    const m = await remoteMeta(dbx, p);
    return m && m.content_hash === contentHash ? m : undefined;
  }, deadlineMs);
}

export interface EmuStats {
  requests: Record<string, number>;
}

/** A user of the CLI: a private HOME below `parent` with an empty mount folder `dir`. */
export interface PrivateHome {
  home: string;
  dir: string;
  env: NodeJS.ProcessEnv;
}

/**
 * A private HOME (under `parent`) with an empty mount folder and the environment of a user of
 * the emulator at `emu` (a dead endpoint without one); whatever is still mounted on the folder
 * is detached when the test ends.
 */
export async function privateHome(
  t: ExecutionContext,
  parent: string,
  emu: { url: string; token: string } | undefined,
  name: string,
  extra: Record<string, string> = {},
): Promise<PrivateHome> {
  const h = await mkdtemp(path.join(parent, `${name}-`));
  const dir = path.join(h, 'containers');
  await mkdir(dir);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: h,
    SREGISTRY_DROPBOX_ENDPOINT: emu?.url ?? 'http://127.0.0.1:1',
    SREGISTRY_DROPBOX_TOKEN: emu?.token ?? 'no-emulator',
    // scripts/test.sh runs the suite once per FUSE adapter: the choice reaches every mount.
    ...(process.env.SREG_FUSE !== undefined ? { SREG_FUSE: process.env.SREG_FUSE } : {}),
    ...extra,
  };
  t.teardown(async () => {
    if (await isMounted(dir)) await sh('fusermount', ['-uz', dir]);
  });
  return { home: h, dir, env };
}
