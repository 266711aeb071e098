/**
 * The namespace model test (test/vfs/ops.ts, test/vfs/model.ts) through a real kernel mount
 * over `sreg emulator` (issue 7): random sequences of open for writing (create, O_TRUNC),
 * open for reading, write, read, ftruncate, close, fsync, truncate, rename (case-only, onto
 * existing or open files, folders with open files inside), unlink (open and closed), mkdir,
 * rmdir, several descriptors at once, another machine's uploads and deletes (waited for on the
 * mount), all as syscalls on `MNT/r<N>/`, checked after every step against the model (each
 * call's result or errno, what every path shows, every folder's names) and, after each drain,
 * against what Dropbox holds. Crash points: kill -9 of the mount at generated moments,
 * `fusermount -uz`, a new mount on the same state; then every file whose close (or fsync)
 * returned must reach Dropbox with its bytes and nothing removed may come back. At the end,
 * `sreg unmount` (a full drain) and every run's folder in Dropbox is compared again with its
 * model (a stray upload landing late would show there).
 *
 * One mount serves every sequence, each in a fresh folder. A failure prints the seed and the
 * shrunk sequence; SREG_MODEL_SEED (and SREG_MODEL_PATH) replay it, SREG_MODEL_MOUNT_RUNS and
 * SREG_MODEL_MOUNT_OPS set how many sequences and how long.
 */
import test from 'ava';
import fc from 'fast-check';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Dropbox } from 'dropbox';
import { sdk } from '../helpers/emulator.js';
import { startMount, type Mounted } from '../helpers/mount.js';
import { opArb, PRELUDE, Runner, type Op } from '../vfs/ops.js';
import { e2e, FUSE, SharedContext, track } from './helpers.js';
import { MountSut, remoteTree, sameAsModel } from './model-sut.js';

/**
 * 100 sequences by default (about 2,400 steps and 20 kill -9 crash points): 160-165 s per
 * adapter on the 2-core test machine, so a suite run puts 200 sequences through real mounts.
 */
// Fixed: seed 1350300798, path 13:2:3:7:10:11:11:11:11:11:11:7:7:7:7:7 (`A/F` open for
// reading, `mv A b/f`, then a read through the descriptor: ENOENT, because the emulator let a
// moved file's old rev vanish).
/**
 * The seed: fixed by default, so that a run of the suite (CI) is repeatable and a failure there
 * is a change's, not a lucky draw's; SREG_MODEL_SEED=N replays N, SREG_MODEL_SEED=random explores.
 */
const DEFAULT_SEED = 20261202;
const RUNS = Number(process.env.SREG_MODEL_MOUNT_RUNS ?? 100);
const MAX_OPS = Number(process.env.SREG_MODEL_MOUNT_OPS ?? 25);
const SEED = process.env.SREG_MODEL_SEED === 'random' ? undefined : process.env.SREG_MODEL_SEED ? Number(process.env.SREG_MODEL_SEED) : DEFAULT_SEED;
const PATH = process.env.SREG_MODEL_PATH;
/** How long a drain waits for Dropbox to hold what the model says before the runner reports the difference. */
const DRAIN_DEADLINE_MS = 20_000;
/** A step (a drain and a crash's recovery included) that takes longer has hung. */
const STEP_DEADLINE_MS = 90_000;

const e2eTest = e2e('model-mount.test');
const shared = new SharedContext();
let m: Mounted;
let dbx: Dropbox;

test.before(async () => {
  if (!FUSE.ok) return;
  // SREG_MODEL_DEBUG=FILE: the mount logs every FUSE call, written to FILE when a sequence fails.
  m = track(await startMount(shared.t, process.env.SREG_MODEL_DEBUG ? { args: ['--debug'] } : {}));
  // Another machine's changes reach the mount within a second (the longpoll returns sooner).
  await m.emu.admin('POST', '/config', { longpollMaxWaitSec: 1 });
  dbx = sdk(m.emu);
});

test.after.always(async () => {
  await shared.close();
});

/** What each finished run's folder must hold in Dropbox after the final `sreg unmount`. */
const finals: { root: string; files: Map<string, { path: string; bytes: Buffer }>; folders: string[]; looseCase: Set<string> }[] = [];

e2eTest('random namespace sequences with crash points through a real mount behave like the model, in every step and in what Dropbox holds', async (t) => {
  t.timeout(20 * 60_000);
  const sut = new MountSut(m, dbx, DRAIN_DEADLINE_MS);
  sut.libfuse2Hides = /FUSE adapter: fuse-native/.test(await m.log());
  t.log(`adapter: ${sut.libfuse2Hides ? 'fuse-native' : 'native'}`);
  let n = 0;
  let steps = 0;
  const started = Date.now();
  const property = fc.asyncProperty(fc.array(opArb({ uploads: false, crashes: true }), { minLength: 1, maxLength: MAX_OPS, size: 'max' }), async (ops: Op[]) => {
    sut.root = `/r${n++}`;
    await mkdir(path.join(m.dir, sut.root));
    const r = new Runner(sut);
    sut.model = r.model;
    try {
      for (const op of [...PRELUDE, ...ops]) {
        if (process.env.SREG_MODEL_PROGRESS) console.error(`${sut.root} ${JSON.stringify(op)}`);
        // A call the mount never answers fails the sequence (with its trace) instead of hanging the suite.
        let timer: NodeJS.Timeout | undefined;
        const hung = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${STEP_DEADLINE_MS / 1000} s to ${JSON.stringify(op)}\ntrace:\n  ${r.trace.join('\n  ')}`)), STEP_DEADLINE_MS);
        });
        try {
          await Promise.race([r.step(op), hung]);
        } finally {
          clearTimeout(timer);
        }
        steps++;
      }
      await r.finish();
    } finally {
      await sut.closeAll();
    }
    const mm = r.model;
    finals.push({ root: sut.root, files: new Map(mm.files), folders: [...mm.folders.keys()].sort(), looseCase: new Set(mm.looseCase) });
  });
  t.teardown(() => sut.closeAll());
  const seed = SEED ?? Math.floor(Math.random() * 2 ** 31);
  console.error(`model-mount: seed ${seed} (replay with SREG_MODEL_SEED=${seed})`);
  const result = await fc.check(property, { numRuns: RUNS, seed, ...(PATH ? { path: PATH } : {}) });
  if (result.failed) {
    if (process.env.SREG_MODEL_DEBUG) await writeFile(process.env.SREG_MODEL_DEBUG, await m.log());
    t.fail(`${fc.defaultReportMessage(result) ?? 'failed'}\nreplay: SREG_MODEL_SEED=${result.seed}${result.counterexamplePath ? ` SREG_MODEL_PATH=${result.counterexamplePath}` : ''}\n${String((result.errorInstance as Error | undefined)?.message ?? '')}`);
    return;
  }
  t.log(`${result.numRuns} sequences, ${steps} steps, ${sut.crashes} crashes (kill -9) in ${Math.round((Date.now() - started) / 1000)} s (seed ${result.seed})`);
  t.log([...Runner.tally].sort().map(([k, v]) => `${k}: ${v}`).join(', '));

  // The full drain: sreg unmount uploads everything and settles; then every run's folder again.
  await m.unmount();
  const wrong: string[] = [];
  for (const f of finals) {
    const tree = await remoteTree(dbx, f.root);
    if (!sameAsModel(tree, f)) {
      wrong.push(`${f.root}: Dropbox has files ${JSON.stringify([...tree.files.keys()])} folders ${JSON.stringify(tree.folders)}, model says files ${JSON.stringify([...f.files.keys()])} folders ${JSON.stringify(f.folders)}`);
    }
  }
  t.deepEqual(wrong, [], 'after sreg unmount, every run folder in Dropbox still holds what its model says');
});
