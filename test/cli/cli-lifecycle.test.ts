/**
 * The CLI's lifecycle edges that need no FUSE mount (issue 8): registry commands never load
 * fuse-native (run with a module hook that makes it unloadable, as on a machine without
 * libfuse), and `sreg mount` alone then says how to install it, exit 7; a read-only cache
 * folder is one clear line, exit 7; the partial files of pulls killed with -9 are removed by the
 * next pull while the partial of a pull still running is kept.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { STALE_AFTER_MS } from '../../src/registry/partials.js';
import {
  assertError,
  assertOk,
  buildSifs,
  runCli,
  sha256File,
  spawnCli,
  startCliEmulator,
  storageOf,
  tempDir,
  tempHome,
  type CliProcess,
} from '../helpers/cli.js';

const exec = promisify(execFile);
const isRoot = process.getuid?.() === 0;

/**
 * NODE_OPTIONS that make `import 'fuse-native'` fail as it does without libfuse 2, and the
 * native adapter's module (src/fuse3, which loads the libfuse 3 addon) as without libfuse 3.
 */
async function noFuse(dir: string): Promise<string> {
  const hooks = path.join(dir, 'nofuse-hooks.mjs');
  await writeFile(
    hooks,
    `export async function resolve(specifier, context, next) {
  if (specifier === 'fuse-native') throw new Error('libfuse.so.2: cannot open shared object file: No such file or directory');
  if (specifier.endsWith('/fuse3/index.js')) throw new Error('libfuse3.so.3: cannot open shared object file: No such file or directory');
  return next(specifier, context);
}\n`,
  );
  const register = path.join(dir, 'nofuse.mjs');
  await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
  return `--import ${register}`;
}

test('without libfuse: --help, search, images and push work; sreg mount alone says FUSE is not installed, exit 7', async (t) => {
  const dir = await tempDir(t);
  const env = { NODE_OPTIONS: await noFuse(dir) };
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const sifDir = path.join(dir, 'sifs');
  await mkdir(sifDir);
  const img = await buildSifs(sifDir, { red: { uri: 'pusheen/asaurus:red' } });

  const help = await runCli(['--help'], { home, env });
  assertOk(t, help);
  t.regex(help.stdout, /sreg mount <dir>/);
  assertOk(t, await runCli(['push', '--name', 'pusheen/asaurus:red', img.red.file], { home, emu, env }));
  const search = await runCli(['search'], { home, emu, env });
  assertOk(t, search);
  t.regex(search.stdout, /pusheen\/asaurus:red/);
  assertOk(t, await runCli(['images'], { home, env }));

  const mnt = path.join(dir, 'mnt');
  await mkdir(mnt);
  const r = await runCli(['mount', mnt], { home, emu, env });
  assertError(t, r, 7, /^ERROR FUSE is not installed: run scripts\/setup\.sh \(or install fuse3\/libfuse2\)/);
  t.notRegex(r.stderr, /at .*\.js:\d+/, 'no stack trace');
  t.deepEqual(await readdir(mnt), [], 'nothing mounted or made');
});

test('a read-only cache folder (SINGULARITY_CACHEDIR): sreg mount says so in one line, exit 7', async (t) => {
  if (!isRoot) return t.pass('needs root to mount a read-only tmpfs');
  const dir = await tempDir(t);
  const ro = path.join(dir, 'ro');
  await mkdir(ro);
  await exec('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]);
  t.teardown(() => exec('umount', [ro]).then(() => undefined, () => undefined));
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const mnt = path.join(dir, 'mnt');
  await mkdir(mnt);
  const cache = path.join(ro, 'cache');
  for (const args of [['mount', mnt], ['mount', mnt, '--foreground'], ['status']]) {
    const r = await runCli(args, { home, emu, env: { SINGULARITY_CACHEDIR: cache } });
    assertError(t, r, 7, new RegExp(`^ERROR cache folder ${cache.replace(/[/.]/g, '\\$&')} is read-only: set SINGULARITY_CACHEDIR to a writable local folder\\n$`));
  }
  t.deepEqual(await readdir(mnt), []);
});

test('six pulls killed with -9 leave partial files; the next pull removes them and keeps the partial of a pull still running', async (t) => {
  t.timeout(180_000);
  const dir = await tempDir(t);
  const img = await buildSifs(dir, { large: { uri: 'pusheen/large:x', dataMib: 8 } });
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  assertOk(t, await runCli(['push', '--name', 'pusheen/large:x', img.large.file], { home, emu }));
  const storage = storageOf(home);
  const partials = async (): Promise<string[]> => (await readdir(storage).catch(() => [] as string[])).filter((n) => n.includes('.sreg-partial-')).sort();
  const waitPartials = async (n: number): Promise<string[]> => {
    for (let i = 0; i < 600; i++) {
      const p = await partials();
      if (p.length >= n) return p;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${n} partial files appeared; have ${(await partials()).join(', ')}`);
  };
  // Slow downloads, so that every pull is mid-way when it is killed.
  await emu.admin('POST', '/config', { bandwidthBytesPerSec: 200_000 });
  const pulls: CliProcess[] = [];
  t.teardown(() => {
    for (const p of pulls) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  });
  // A pull that keeps running throughout: its partial is open in a live process and must stay.
  const live = spawnCli(['pull', '--force', 'pusheen/large:x'], { home, emu, timeoutMs: 170_000 });
  pulls.push(live);
  const [livePartial] = await waitPartials(1);
  const six: CliProcess[] = [];
  for (let i = 0; i < 6; i++) six.push(spawnCli(['pull', '--force', 'pusheen/large:x'], { home, emu, timeoutMs: 170_000 }));
  pulls.push(...six);
  const all = await waitPartials(7);
  for (const p of six) p.child.kill('SIGKILL');
  await Promise.all(six.map((p) => p.done));
  t.true(all.includes(livePartial!), 'the six pulls did not remove the running pull\'s partial');
  const killed = all.filter((n) => n !== livePartial);
  t.is(killed.length, 6);
  t.deepEqual(await partials(), all, 'kill -9 leaves them behind');
  // What killed runs leave is old by the time a user pulls again; a partial written within
  // STALE_AFTER_MS may be another machine's pull on shared storage, and is kept.
  const old = new Date(Date.now() - STALE_AFTER_MS - 60_000);
  for (const n of killed) await utimes(path.join(storage, n), old, old);

  // The next pull cleans up what the killed ones left, and only that.
  await emu.admin('POST', '/config', { bandwidthBytesPerSec: 0 });
  const next = await runCli(['pull', '--force', '--debug', 'pusheen/large:x'], { home, emu, timeoutMs: 120_000 });
  t.is(next.code, 0, next.stderr);
  t.regex(next.stderr, /removed 6 partial download\(s\) left by killed runs/);
  const left = await partials();
  t.false(killed.some((n) => left.includes(n)), `killed runs' partials are gone: ${left.join(', ')}`);
  t.true(live.child.exitCode === null ? left.includes(livePartial!) : true, 'the running pull keeps its partial');
  const liveDone = await live.done;
  t.is(liveDone.code, 0, `the running pull was not disturbed: ${liveDone.stderr}`);
  t.deepEqual(await partials(), []);
  t.is(await sha256File(path.join(storage, 'pusheen-large:x.simg')), img.large.sha256);
});
