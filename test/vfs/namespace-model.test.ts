/**
 * Model-based test of the namespace (issue 7): thousands of random sequences of create,
 * write, close, fsync, read, truncate, rename (case-only, onto an existing file, onto a file
 * with a queued upload or an open writer, folders with open files inside), unlink (open and
 * closed), mkdir, rmdir, several descriptors at once, uploads started/finished/failed/landing
 * after an abort, and another machine's uploads and deletes, run against the VFS over the
 * in-memory ports and checked after every step against test/vfs/model.ts, and after every
 * drain against what the remote holds. At the end of each sequence every handle is closed, the
 * queue drained, the remote compared and the spool folder must be empty (nothing leaked).
 * A failure shrinks to a minimal sequence and prints its seed (fast-check).
 */
import test from 'ava';
import fc from 'fast-check';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { MemorySut, spoolFolder } from './memory-sut.js';
import { opArb, PRELUDE, Runner, type Op } from './ops.js';

const RUNS = Number(process.env.SREG_MODEL_RUNS ?? 2000);
/** Replays a failure: the seed (and path) a failing run printed. */
const SEED = process.env.SREG_MODEL_SEED ? Number(process.env.SREG_MODEL_SEED) : undefined;
const PATH = process.env.SREG_MODEL_PATH;

async function runSequence(dir: string, ops: Op[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const sut = new MemorySut(dir);
  const r = new Runner(sut);
  for (const op of [...PRELUDE, ...ops]) await r.step(op);
  await r.finish();
  const left = await (await import('node:fs/promises')).readdir(dir);
  if (left.length > 0) throw new Error(`spool files left behind: ${left.join(', ')}\ntrace:\n  ${r.trace.join('\n  ')}`);
}

test('the VFS over in-memory ports behaves like the model, step by step and in what the remote holds', async (t) => {
  const spool = await spoolFolder();
  t.teardown(spool.remove);
  let n = 0;
  const result = await fc.check(
    fc.asyncProperty(fc.array(opArb({ uploads: true }), { minLength: 1, maxLength: 40 }), async (ops) => {
      await runSequence(path.join(spool.dir, String(n++)), ops);
    }),
    { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }), ...(PATH ? { path: PATH } : {}) },
  );
  if (result.failed) {
    t.fail(`${fc.defaultReportMessage(result) ?? 'failed'}\n${String((result.errorInstance as Error | undefined)?.message ?? '')}`);
  } else {
    t.log(`${result.numRuns} sequences passed (seed ${result.seed})`);
    t.log([...Runner.tally].sort().map(([k, v]) => `${k}: ${v}`).join(', '));
    t.pass();
  }
});
