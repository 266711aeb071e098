/**
 * The native adapter's JavaScript read path (src/fuse3/ops.ts): a read's buffer is reused by
 * the next read whether the read succeeded or failed (a failed read used to drop it from the
 * pool). The dispatch is driven directly, with a recording stand-in for the addon (the real one
 * needs a kernel mount: test/e2e/ covers it) and a VFS whose read fails on demand.
 */
import test from 'ava';
import { nativeOps, type NativeVfs } from '../../src/fuse3/ops.js';
import { InodeTable } from '../../src/fuse3/inodes.js';
import { Op, type NativeAddon } from '../../src/fuse3/native.js';
import { VfsError } from '../../src/vfs/index.js';

interface Harness {
  dispatch: ReturnType<typeof nativeOps>;
  /** The buffer each read was given. */
  seen: Buffer[];
  /** Each dispatched request's answer. */
  answers: Promise<string>[];
  failNext: (n: number) => void;
}

function harness(): Harness {
  const seen: Buffer[] = [];
  let failures = 0;
  const waiting = new Map<number, (s: string) => void>();
  const answers: Promise<string>[] = [];
  const addon = {
    replyErr: (id: number, errno: number) => void waiting.get(id)?.(`err ${errno}`),
    replyBuf: (id: number, _b: Buffer, n: number) => void waiting.get(id)?.(`buf ${n}`),
  } as unknown as NativeAddon;
  const vfs = {
    read: async (_fh: number, _offset: number, length: number, into: Buffer) => {
      seen.push(into);
      await new Promise((r) => setImmediate(r));
      if (failures > 0) {
        failures--;
        throw new VfsError('EIO', 'the remote is down');
      }
      return into.subarray(0, length);
    },
  } as unknown as NativeVfs;
  const ops = nativeOps(addon, vfs, new InodeTable(), { log: () => undefined, timeoutMs: 60_000 });
  const dispatch: typeof ops = (...args) => {
    answers.push(new Promise((r) => waiting.set(args[0], r)));
    ops(...args);
  };
  return { dispatch, seen, answers, failNext: (n) => (failures = n) };
}

// Serial: the pool of read buffers is the module's.
test.serial('a failed JS read gives its buffer back to the pool: the next read reuses it', async (t) => {
  const h = harness();
  const read = (id: number): Promise<string> => {
    h.dispatch(id, Op.READ, 1, 7, 128 * 1024, 0, 0);
    return h.answers.at(-1)!;
  };
  await read(1); // a buffer enters the pool
  h.failNext(1);
  t.regex(await read(2), /^err -?\d+$/);
  t.is(await read(3), `buf ${128 * 1024}`);
  t.is(h.seen.length, 3);
  t.is(h.seen[1]!.buffer, h.seen[0]!.buffer, 'the second read took the first one’s buffer');
  t.is(h.seen[2]!.buffer, h.seen[1]!.buffer, 'the failed read gave it back');
});

test.serial('concurrent reads each get their own buffer', async (t) => {
  const h = harness();
  h.dispatch(1, Op.READ, 1, 7, 4096, 0, 0);
  h.dispatch(2, Op.READ, 1, 7, 4096, 4096, 0);
  await Promise.all(h.answers);
  t.not(h.seen[0]!.buffer, h.seen[1]!.buffer);
});
