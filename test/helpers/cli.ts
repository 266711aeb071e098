/**
 * Runs the `sreg` CLI as a user does: `node dist/src/cli/index.js ...args` in a child process,
 * with a controlled environment (nothing inherited but PATH): HOME is a fresh temporary folder
 * (so ~/.sregistry and ~/.singularity are the test's own), and the Dropbox endpoint and token
 * point at the test's emulator unless the test says otherwise.
 *
 *   const emu = await startCliEmulator(t);
 *   const home = await tempHome(t);
 *   const r = await runCli(['search'], { home, emu });   // {code, stdout, stderr, ms}
 *
 * Also: real SIF images (scripts/build-sif.sh), hashes computed independently of `sreg`
 * (sha256 with node:crypto; content_hash with the shared content-hash module), recursive
 * listings and greps of a folder, and what is inside an image (siftool + unsquashfs).
 */
import { spawn, execFile, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ExecutionContext, TestFn } from 'ava';
import { ContentHasher } from '../../src/dropbox/content-hash.js';
import { startEmulator, type Emulator } from './emulator.js';

const exec = promisify(execFile);

/** Compiled to dist/test/helpers/: the CLI is dist/src/cli/index.js, the scripts stay in the tree. */
export const CLI = fileURLToPath(new URL('../../src/cli/index.js', import.meta.url));
export const BUILD_SIF = fileURLToPath(new URL('../../../scripts/build-sif.sh', import.meta.url));

/** The seed's account name; every CLI emulator is started with it. */
export const DISPLAY_NAME = 'Vanessa S';

/** Where nothing listens: a command that reaches for the network by mistake fails fast. */
export const NOWHERE = 'http://127.0.0.1:1';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time of the run. */
  ms: number;
}

export interface RunOptions {
  /** HOME of the run (required: every run gets a private one). */
  home: string;
  /** Sets SREGISTRY_DROPBOX_ENDPOINT=emu.url and SREGISTRY_DROPBOX_TOKEN=emu.token. Without it the endpoint is NOWHERE. */
  emu?: Emulator;
  /** The token to put in the environment instead of emu.token; null = no SREGISTRY_DROPBOX_TOKEN at all. */
  token?: string | null;
  /** More variables; a value of undefined removes the variable. */
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin, which is then closed. */
  stdin?: string;
  /** Killed (SIGKILL) after this long and the run rejected. Default 90 s. */
  timeoutMs?: number;
  uid?: number;
  gid?: number;
}

export function cliEnv(o: RunOptions): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: o.home,
    LANG: 'C.UTF-8',
    TMPDIR: process.env.TMPDIR,
    SREGISTRY_DROPBOX_ENDPOINT: o.emu?.url ?? NOWHERE,
    SREGISTRY_DROPBOX_TOKEN: o.token === null ? undefined : (o.token ?? o.emu?.token),
    ...o.env,
  };
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

export interface CliProcess {
  child: ChildProcessWithoutNullStreams;
  /** Resolves when the process exits (rejects on timeout). */
  done: Promise<CliResult>;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
}

/** Starts the CLI; for interactive use (write to child.stdin). */
export function spawnCli(args: string[], o: RunOptions): CliProcess {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    env: cliEnv(o),
    cwd: o.home,
    stdio: 'pipe',
    ...(o.uid !== undefined ? { uid: o.uid } : {}),
    ...(o.gid !== undefined ? { gid: o.gid } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timeoutMs = o.timeoutMs ?? 90_000;
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sreg ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
  if (o.stdin !== undefined) child.stdin.end(o.stdin);
  return { child, done, stdout: () => stdout, stderr: () => stderr };
}

/** Runs the CLI to completion. stdin is closed at once unless `stdin` is given. */
export async function runCli(args: string[], o: RunOptions): Promise<CliResult> {
  const p = spawnCli(args, { ...o, stdin: o.stdin ?? '' });
  return p.done;
}

/** A fresh temporary folder, removed at teardown (even when the test fails). */
export async function tempDir(t: ExecutionContext, prefix = 'sreg-cli-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A private HOME for one simulated user. */
export const tempHome = (t: ExecutionContext): Promise<string> => tempDir(t, 'sreg-home-');

/** The default storage folder of a HOME (~/.singularity/shub). */
export const storageOf = (home: string): string => path.join(home, '.singularity', 'shub');

/** The first line the seed shows for every connected command. */
export function banner(home: string, dbDir = path.join(home, '.singularity')): string {
  return `[client|dropbox] [database|sqlite:///${path.join(dbDir, 'sregistry.db')}]`;
}

export const CONNECTED = `connected to ${DISPLAY_NAME}`;

/** An emulator with the seed's display name, stopped (and its root removed) at teardown. */
export function startCliEmulator(t: ExecutionContext, args: string[] = []): Promise<Emulator> {
  return startEmulator(t, { args: ['--display-name', DISPLAY_NAME, ...args] });
}

export interface EmuStats {
  bytesSent: number;
  bytesReceived: number;
  requests: Record<string, number>;
  statuses: Record<string, number>;
}

export const stats = (emu: Emulator): Promise<EmuStats> => emu.admin<EmuStats>('GET', '/stats');

export const requestCount = (s: EmuStats): number => Object.values(s.requests).reduce((a, b) => a + b, 0);

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

/** Dropbox's content_hash of a local file (the shared implementation, not the CLI). */
export async function contentHashFile(file: string): Promise<string> {
  const h = new ContentHasher();
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest();
}

/** Every file (and FIFO, socket, ...) under `dir`, as paths relative to it, sorted; [] when `dir` is missing. */
export async function listTree(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return [];
    throw e;
  }
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** Files under `dir` whose bytes contain `needle`. */
export async function grepTree(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  const want = Buffer.from(needle);
  for (const rel of await listTree(dir)) {
    let data: Buffer;
    try {
      data = await readFile(path.join(dir, rel));
    } catch {
      continue; // a FIFO or a socket: nothing stored in it
    }
    if (data.includes(want)) hits.push(rel);
  }
  return hits;
}

export interface Sif {
  file: string;
  uri: string;
  size: number;
  sha256: string;
  contentHash: string;
}

/** Builds real SIF images (scripts/build-sif.sh) in `dir`, in parallel; keyed by `key`. */
/**
 * The SIF images a whole test file shares: built once in `test.before` into a temporary folder
 * removed in `test.after.always`. The returned record is filled when the hook has run.
 */
export function suiteSifs<K extends string>(test: TestFn, specs: Record<K, { uri: string; dataMib?: number }>): Record<K, Sif> {
  const img = {} as Record<K, Sif>;
  let dir = '';
  test.before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sreg-cli-sifs-'));
    Object.assign(img, await buildSifs(dir, specs));
  });
  test.after.always(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return img;
}

export async function buildSifs<K extends string>(
  dir: string,
  specs: Record<K, { uri: string; dataMib?: number }>,
): Promise<Record<K, Sif>> {
  const built = await Promise.all(
    (Object.entries(specs) as [K, { uri: string; dataMib?: number }][]).map(async ([key, spec]) => {
      const [name, tag] = spec.uri.split(':') as [string, string];
      const file = path.join(dir, `${key}.sif`);
      await exec(BUILD_SIF, ['--name', name, '--tag', tag, '--data-mib', String(spec.dataMib ?? 0), file], { maxBuffer: 1 << 20 });
      const data = await readFile(file);
      const sif: Sif = {
        file,
        uri: spec.uri,
        size: data.length,
        sha256: createHash('sha256').update(data).digest('hex'),
        contentHash: new ContentHasher().update(data).digest(),
      };
      return [key, sif] as const;
    }),
  );
  return Object.fromEntries(built) as Record<K, Sif>;
}

/** A file inside a SIF's squashfs partition (descriptor 3, as build-sif.sh makes it), read with siftool + unsquashfs. */
export async function fileInSif(sif: string, inner: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-sifcat-'));
  try {
    const fs = path.join(dir, 'fs.squashfs');
    const { stdout } = await exec('siftool', ['dump', '3', sif], { encoding: 'buffer', maxBuffer: 256 << 20 });
    await writeFile(fs, stdout);
    const cat = await exec('unsquashfs', ['-cat', fs, inner], { maxBuffer: 16 << 20 });
    return cat.stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The lines of an output, without the final newline's empty string. */
export function lines(text: string): string[] {
  const l = text.split('\n');
  if (l[l.length - 1] === '') l.pop();
  return l;
}

/** Asserts a failed run: this exit code, and stderr exactly one `ERROR …` line matching `message`. */
export function assertError(t: ExecutionContext, r: CliResult, code: number, message: RegExp): void {
  t.is(r.code, code, `exit code; stderr: ${r.stderr}`);
  t.regex(r.stderr, /^ERROR [^\n]+\n$/, 'stderr is exactly one ERROR line');
  t.regex(r.stderr, message);
}

/** Asserts a successful run with nothing on stderr. */
export function assertOk(t: ExecutionContext, r: CliResult): void {
  t.is(r.code, 0, `exit code; stderr: ${r.stderr}`);
  t.is(r.stderr, '', 'nothing on stderr');
}

/** Asserts that no partial or temporary file is left anywhere under `dir`: exactly `expected` files are there. */
export async function assertTree(t: ExecutionContext, dir: string, expected: string[]): Promise<void> {
  const files = await listTree(dir);
  t.deepEqual(
    files.filter((f) => /sreg-partial|\.tmp|~$/.test(f)),
    [],
    `no partial files under ${dir}`,
  );
  t.deepEqual(files, [...expected].sort(), `files under ${dir}`);
}

/** `fn` over `items`, at most `limit` at once (CLI runs are whole Node processes; the machine has few cores). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
