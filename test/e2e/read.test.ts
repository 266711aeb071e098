/**
 * The mount read-only, end to end (README "Semantics": stat/ls/readdir, open+read, statfs): a
 * real kernel mount of an app folder filled before the first mount (real SIF images and
 * pseudo-random data files), read with real clients (ls -lR, stat, cat, sha256sum, dd, df,
 * siftool, a loop mount of the SIF's system partition and its runscript under chroot).
 * Another machine (the official SDK) changes the folder while it is mounted. Expected values
 * come from the source bytes (sha256 and content_hash computed here), never from `sreg`.
 */
import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Dropbox } from 'dropbox';
import { buildSifs, type Sif } from '../helpers/cli.js';
import { sdk, startEmulator } from '../helpers/emulator.js';
import { startMount, type Mounted } from '../helpers/mount.js';
import { primaryPartition, readSif } from '../../src/sif/index.js';
import {
  bytesOf, e2e, FUSE, loopMount, ok, pseudoRandom, SharedContext, sh, sha256, sha256sum, track, upload, waitFor,
  type EmuStats, type RemoteFile,
} from './helpers.js';

const e2eTest = e2e('read.test');
const MiB = 1024 * 1024;
const QUOTA = 2e9; // --quota 2G

const shared = new SharedContext();
let m: Mounted;
let dbx: Dropbox;
let workDir = '';
let emuRoot = '';
let sifs: Record<'red' | 'blue' | 'tacos', Sif>;
/** Everything uploaded before the first mount: Dropbox path → bytes and metadata. */
const before = new Map<string, { data: Buffer; meta: RemoteFile }>();
const DATA = { twenty: '/big/twenty.bin', thirty: '/big/thirty.bin', nine: '/big/nine.bin' } as const;

test.before(async () => {
  if (!FUSE.ok) return;
  workDir = await mkdtemp(path.join(tmpdir(), 'sreg-e2e-read-'));
  emuRoot = path.join(workDir, 'emulator');
  sifs = await buildSifs(workDir, {
    red: { uri: 'pusheen/asaurus:red' },
    blue: { uri: 'pusheen/asaurus:blue' },
    tacos: { uri: 'vsoch/hello-world:tacos' },
  });
  const sources: [string, Buffer][] = [
    ['/pusheen/asaurus:red.simg', await readFile(sifs.red.file)],
    ['/pusheen/asaurus:blue.simg', await readFile(sifs.blue.file)],
    ['/vsoch/hello-world:tacos.simg', await readFile(sifs.tacos.file)],
    [DATA.twenty, pseudoRandom(20 * MiB, 'twenty')],
    [DATA.thirty, pseudoRandom(30 * MiB, 'thirty')],
    // 9 MiB + 123 bytes: a short last block.
    [DATA.nine, pseudoRandom(9 * MiB + 123, 'nine')],
  ];
  // Another machine fills the app folder; then the first mount ever lists it.
  const token = `e2e-read-${process.pid}`;
  const pre = await startEmulator(shared.t, { root: emuRoot, token });
  const other = sdk(pre);
  for (const [p, data] of sources) before.set(p, { data, meta: await upload(other, p, data) });
  await pre.stop();
  m = track(await startMount(shared.t, { emulator: { root: emuRoot, token, args: ['--quota', '2G'] } }));
  await m.emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  dbx = sdk(m.emu);
});

test.after.always(async () => {
  await shared.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const onMount = (p: string): string => path.join(m.dir, p);
const src = (p: string): Buffer => before.get(p)!.data;

interface LsLine {
  mode: string;
  owner: string;
  group: string;
  size: number;
  mtime: number;
  name: string;
}

/** `ls -lR --time-style=+%s DIR` → folder (relative) → its entries. */
function parseLsR(out: string, root: string): Map<string, LsLine[]> {
  const tree = new Map<string, LsLine[]>();
  let cur: LsLine[] | undefined;
  for (const line of out.split('\n')) {
    const header = /^(.*):$/.exec(line);
    if (header?.[1] !== undefined && header[1].startsWith(root)) {
      cur = [];
      tree.set(path.relative(root, header[1]) || '.', cur);
      continue;
    }
    const e = /^([-dlrwxsStT]{10})\.?\s+\d+\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(.+)$/.exec(line);
    if (e && cur) cur.push({ mode: e[1]!, owner: e[2]!, group: e[3]!, size: Number(e[4]), mtime: Number(e[5]), name: e[6]! });
  }
  return tree;
}

e2eTest('images pushed before the first mount show in ls -lR as collection/name:tag.simg, -rwxr-xr-x, owned by root, with their sizes and times', async (t) => {
  const out = await ok('ls', ['-lR', '--time-style=+%s', m.dir]);
  const tree = parseLsR(out, m.dir);
  const names = (dir: string): string[] => (tree.get(dir) ?? []).map((e) => e.name).sort();
  t.deepEqual(names('.'), ['big', 'pusheen', 'vsoch'], out);
  t.deepEqual(names('pusheen'), ['asaurus:blue.simg', 'asaurus:red.simg']);
  t.deepEqual(names('vsoch'), ['hello-world:tacos.simg']);
  t.deepEqual(names('big'), ['nine.bin', 'thirty.bin', 'twenty.bin']);
  for (const e of tree.get('.') ?? []) t.like(e, { mode: 'drwxr-xr-x', owner: 'root', group: 'root' }, `folder ${e.name}`);
  for (const [dir, entries] of tree) {
    if (dir === '.') continue;
    for (const e of entries) {
      const p = `/${dir}/${e.name}`;
      const want = before.get(p);
      t.truthy(want, `${p} was uploaded`);
      if (!want) continue;
      // Images keep the exec bit `singularity build` gives; other files are plain.
      t.is(e.mode, p.endsWith('.simg') ? '-rwxr-xr-x' : '-rw-r--r--', `mode of ${p}`);
      t.is(e.owner, 'root', `owner of ${p}`);
      t.is(e.group, 'root', `group of ${p}`);
      t.is(e.size, want.data.length, `size of ${p}`);
      t.is(e.mtime, Math.floor(Date.parse(want.meta.server_modified) / 1000), `mtime of ${p} is Dropbox's server_modified`);
    }
  }
  // stat agrees, and a SIF is the size the builder made.
  t.is((await ok('stat', ['-c', '%A %U %G %s', onMount('/pusheen/asaurus:red.simg')])).trim(), `-rwxr-xr-x root root ${sifs.red.size}`);
});

e2eTest('a file another machine uploads appears in ls within seconds, without a remount; its delete makes it disappear', async (t) => {
  const p = '/pusheen/asaurus:green.simg';
  const data = pseudoRandom(300_000, 'green');
  t.false((await ok('ls', [onMount('/pusheen')])).split('\n').includes('asaurus:green.simg'));
  await upload(dbx, p, data);
  await waitFor('asaurus:green.simg in ls', async () => ((await ok('ls', [onMount('/pusheen')])).split('\n').includes('asaurus:green.simg') ? true : undefined), 15_000);
  t.is((await ok('stat', ['-c', '%s', onMount(p)])).trim(), String(data.length));
  t.is(await sha256sum(onMount(p)), sha256(data), 'its bytes');
  await dbx.filesDeleteV2({ path: p });
  await waitFor('asaurus:green.simg gone from ls', async () => ((await ok('ls', [onMount('/pusheen')])).split('\n').includes('asaurus:green.simg') ? undefined : true), 15_000);
  // The kernel may keep a positive lookup for its entry timeout (5 s); after that stat says ENOENT.
  const st = await waitFor('stat says ENOENT', async () => {
    const r = await sh('stat', [onMount(p)]);
    return r.code !== 0 ? r : undefined;
  }, 15_000);
  t.regex(st.stderr, /No such file or directory/);
  t.deepEqual((await ok('ls', [onMount('/pusheen')])).trim().split('\n').sort(), ['asaurus:blue.simg', 'asaurus:red.simg']);
});

e2eTest('8 concurrent sha256sum readers of one 30 MiB file all get its bytes', async (t) => {
  const want = sha256(src(DATA.thirty));
  const got = await Promise.all(Array.from({ length: 8 }, () => sha256sum(onMount(DATA.thirty))));
  t.deepEqual(got, Array.from({ length: 8 }, () => want));
});

e2eTest('sha256sum of every mounted file equals the source', async (t) => {
  for (const [p, { data }] of before) t.is(await sha256sum(onMount(p)), sha256(data), p);
});

e2eTest('cat of a 20 MiB file gives its bytes', async (t) => {
  const got = await bytesOf('cat', [onMount(DATA.twenty)]);
  t.is(got.length, 20 * MiB);
  t.true(got.equals(src(DATA.twenty)), 'cat output differs from the source');
});

e2eTest('random reads with dd (unaligned, across 4 MiB blocks, the short last block, past the end) give the right bytes', async (t) => {
  const data = src(DATA.nine);
  const file = onMount(DATA.nine);
  // [skip, count] in bytes; the order jumps around on purpose.
  const reads: [number, number][] = [
    [8 * MiB + 100, 5_000], // into the short last block, ends past EOF
    [4 * MiB - 10, 20], // across the first block boundary
    [123_457, 65_536],
    [0, 1],
    [9 * MiB + 122, 1], // the last byte
    [2 * MiB, 3 * MiB], // spans blocks 0 and 1
    [7 * MiB + 1, 1 * MiB + 200], // across the second boundary
    [9 * MiB + 123, 10], // at EOF: nothing
    [5 * MiB, 4096],
  ];
  for (const [skip, count] of reads) {
    const got = await bytesOf('dd', [`if=${file}`, 'iflag=skip_bytes,count_bytes', `skip=${skip}`, `count=${count}`, 'bs=65536', 'status=none']);
    const want = data.subarray(skip, skip + count);
    t.is(got.length, want.length, `length of ${count} bytes at ${skip}`);
    t.true(got.equals(want), `bytes of ${count} at ${skip}`);
  }
  // Block-sized dd reads (bs=1M skip=N) as Singularity's loop device issues them.
  const got = await bytesOf('dd', [`if=${file}`, 'bs=1M', 'skip=3', 'count=2', 'status=none']);
  t.true(got.equals(data.subarray(3 * MiB, 5 * MiB)), 'bs=1M skip=3 count=2');
});

e2eTest('the mount raises the kernel readahead of its device (FUSE starts at 128 KiB): 1 MiB with fuse-native, 4 MiB with the native adapter (1 MiB reads)', async (t) => {
  const line = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === m.dir);
  const dev = line?.split(' ')[2];
  t.regex(dev ?? '', /^\d+:\d+$/, `the mount in /proc/self/mountinfo: ${line}`);
  const native = /FUSE adapter: native \(/.test(await m.log());
  t.is((await readFile(`/sys/class/bdi/${dev}/read_ahead_kb`, 'utf8')).trim(), native ? '4096' : '1024');
});

e2eTest('after unmount and remount the same read is served from the cache (no files/download requests)', async (t) => {
  const p = DATA.twenty;
  t.is(await sha256sum(onMount(p)), sha256(src(p)), 'first read');
  await m.unmount();
  await m.emu.admin('POST', '/stats/reset');
  await m.remount();
  t.is(await sha256sum(onMount(p)), sha256(src(p)), 'read after the remount');
  const s = await m.emu.admin<EmuStats>('GET', '/stats');
  t.is(s.requests['files/download'] ?? 0, 0, `downloads after the remount: ${JSON.stringify(s.requests)}`);
});

e2eTest('a SIF on the mount runs as Singularity does: loop mount of its system partition, runscript under chroot', async (t) => {
  const file = onMount('/pusheen/asaurus:red.simg');
  const listing = await ok('siftool', ['list', file]);
  const row = listing.split('\n').find((l) => /System/.test(l));
  t.truthy(row, listing);
  const offset = Number(/\|\s*(\d+)-\d+\s*\|/.exec(row ?? '')?.[1]);
  // The same offset as read, independently, from the source file.
  const part = primaryPartition(await readSif(sifs.red.file));
  t.is(offset, part?.offset ?? -1, 'siftool on the mount and the source agree on the partition offset');
  const loopDir = await mkdtemp(path.join(tmpdir(), 'sreg-e2e-loop-'));
  t.teardown(() => rm(loopDir, { recursive: true, force: true }));
  await loopMount(t, file, offset, loopDir);
  const run = await sh('chroot', [loopDir, '/.singularity.d/runscript'], { timeoutMs: 30_000 });
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout, 'Hello from pusheen/asaurus:red\n');
  const blue = await sh('siftool', ['list', onMount('/pusheen/asaurus:blue.simg')]);
  t.is(blue.code, 0, 'another image from the mount lists too');
});

e2eTest('df shows the account quota and use', async (t) => {
  const out = await ok('df', ['-B1', '--output=source,size,used,avail', m.dir]);
  const cols = out.trim().split('\n')[1]?.trim().split(/\s+/) ?? [];
  t.is(cols[0], 'sreg', out);
  const [size, used, avail] = cols.slice(1).map(Number) as [number, number, number];
  t.true(size <= QUOTA && size > QUOTA - 4096, `size ${size} is the 2 GB quota`);
  let files = 0;
  for (const { data } of before.values()) files += data.length;
  t.true(Math.abs(used - files) <= 4096, `used ${used} is what the files take (${files})`);
  t.true(Math.abs(size - used - avail) <= 4096, `avail ${avail}`);
  // And Dropbox says the same.
  const space = (await dbx.usersGetSpaceUsage()).result;
  t.is((space.allocation as { allocated?: number }).allocated, QUOTA);
});
