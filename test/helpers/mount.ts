/**
 * A real kernel mount for end-to-end tests: an emulator, a private HOME/cache/database, and
 * `sreg mount DIR --foreground` as a child process. Teardown always leaves no mount behind:
 * `sreg unmount`, then `fusermount -uz`, then SIGKILL, whatever state the test left.
 *
 * Tests that need /dev/fuse and root say so loudly and are skipped where they can't run
 * (`fuseAvailable()`); on our machines they run.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ExecutionContext } from 'ava';
import { CLI, startEmulator, type Emulator, type StartOptions } from './emulator.js';

const run = promisify(execFile);

export function fuseAvailable(): { ok: boolean; why?: string } {
  if (!existsSync('/dev/fuse')) return { ok: false, why: '/dev/fuse is missing' };
  if (process.getuid?.() !== 0) return { ok: false, why: 'not root (these tests mount and loop-mount)' };
  return { ok: true };
}

export interface Mounted {
  emu: Emulator;
  dir: string;
  home: string;
  env: NodeJS.ProcessEnv;
  log(): Promise<string>;
  /** Runs `sreg …` with the mount's environment. */
  sreg(args: string[], opts?: { timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Stops the mount (sreg unmount); throws if that fails. */
  unmount(): Promise<void>;
  /** Starts it again on the same HOME, emulator and folder. */
  remount(): Promise<void>;
  /** The serving process (for kill -9 tests). */
  child(): ChildProcess | undefined;
}

export interface MountOptions {
  emulator?: StartOptions;
  env?: Record<string, string>;
  args?: string[];
}

/** Not exited yet: a process killed by a signal has exitCode null too (and its 'exit' event is gone). */
const running = (p: ChildProcess): boolean => p.exitCode === null && p.signalCode === null;

async function mountedHere(dir: string): Promise<boolean> {
  const text = await readFile('/proc/mounts', 'utf8');
  return text.split('\n').some((l) => l.split(' ')[1] === dir);
}

export async function startMount(t: ExecutionContext, opts: MountOptions = {}): Promise<Mounted> {
  const emu = await startEmulator(t, opts.emulator);
  const home = await mkdtemp(path.join(tmpdir(), 'sreg-mount-home-'));
  const dir = path.join(home, 'containers');
  await mkdir(dir);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    SREGISTRY_DROPBOX_ENDPOINT: emu.url,
    SREGISTRY_DROPBOX_TOKEN: emu.token,
    SREGISTRY_CLIENT_SECRETS: path.join(home, '.sregistry'),
    SREGISTRY_DATABASE: path.join(home, '.singularity'),
    SINGULARITY_CACHEDIR: path.join(home, '.singularity'),
    ...opts.env,
  };
  let child: ChildProcess | undefined;
  let output = '';

  const sreg: Mounted['sreg'] = (args, o = {}) =>
    new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args], { env, timeout: o.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });

  const start = async (): Promise<void> => {
    const proc = spawn(process.execPath, [CLI, 'mount', dir, '--foreground', ...(opts.args ?? [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 60_000;
    // Only this run's output counts: an earlier run's "ready" line is already in it on a remount.
    const from = output.length;
    while (!/ready: mounted on/.test(output.slice(from))) {
      if (!running(proc)) throw new Error(`sreg mount exited with ${proc.exitCode ?? proc.signalCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`sreg mount did not become ready in 60 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const unmount = async (): Promise<void> => {
    const r = await sreg(['unmount', dir], { timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`sreg unmount failed (${r.code}): ${r.stderr}`);
    const proc = child;
    if (proc && running(proc)) await new Promise((res) => proc.once('exit', res));
  };

  t.teardown(async () => {
    // Whatever happened: no mount, no process left behind.
    if (await mountedHere(dir)) {
      const r = await sreg(['unmount', dir], { timeoutMs: 60_000 }).catch(() => ({ code: 1 }));
      if (r.code !== 0 || (await mountedHere(dir))) await run('fusermount', ['-uz', dir]).catch(() => undefined);
    }
    if (child && running(child)) {
      child.kill('SIGKILL');
      await new Promise((res) => child!.once('exit', res));
    }
    if (await mountedHere(dir)) await run('umount', ['-l', dir]).catch(() => undefined);
    await rm(home, { recursive: true, force: true });
  });

  await start();
  return {
    emu,
    dir,
    home,
    env,
    log: () => Promise.resolve(output),
    sreg,
    unmount,
    remount: start,
    child: () => child,
  };
}
