/**
 * Block files written with O_DIRECT, from pooled buffers aligned for it.
 *
 * Why: a buffered write copies the block into fresh page-cache pages, and on this project's
 * machines (a VM where the first touch of a page is costly) that copy was the largest single
 * cost of a cold read: `perf record` of the mount during a cold 1 GiB `dd` (scripts/bench-cold.sh
 * BENCH_PERF=…) put 25 % of its samples in the kernel's copy_folio_from_iter_atomic, and
 * `dd if=/dev/zero bs=4M count=256` cost 1.2–2.8 s of system CPU buffered against 0.09 s with
 * oflag=direct. The readers of a fetched block get it from memory (block-cache.ts), and the
 * kernel keeps the FUSE file's own pages, so the block file's page-cache copy served almost no
 * one: it is what a warm read (after a remount or a drop of the caches) reads from the disk.
 *
 * O_DIRECT wants the memory address aligned (the device's DMA alignment, at most a page here),
 * and JavaScript cannot see an address: one SharedArrayBuffer holds all the aligned buffers,
 * and the offset in it that is aligned is found once, at open, by direct 4 KiB writes to a
 * probe file from offsets 0, 16, 32… (malloc aligns to 16): the first one the kernel takes.
 * Every block buffer then starts at that offset plus a multiple of BLOCK_BYTES (a multiple of
 * 4 KiB), so every one is aligned. A write whose data is not one of them, or on a filesystem
 * without O_DIRECT (the open or the probe answers EINVAL), is an ordinary buffered write.
 *
 * A block's length is rounded up to 4 KiB for the write (the bytes after the data, inside its
 * own buffer, are zeroed first) and the file is then truncated to the block's length.
 * The probe (a few ms: BlockCache.open awaits it alongside its scan of the kept blocks) leaves
 * no file; a crash's probe file is removed by the next open's scan.
 * Where it fails, buffers are plain and writes buffered.
 */
import { constants } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import path from 'node:path';
import { BLOCK_BYTES, probeFileName } from './blocks.js';

/** Direct I/O sizes and addresses are multiples of this (a page: no device here wants more). */
export const DIRECT_ALIGN = 4096;
/** malloc's alignment: the step between the candidate offsets of the probe. */
const MALLOC_ALIGN = 16;

const roundUp = (n: number): number => Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;

/** open(2) flags of a new block file written directly. */
export const DIRECT_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT;

export class DirectWrites {
  private arena: SharedArrayBuffer | undefined;
  private base = 0;
  /** False once the filesystem refused O_DIRECT (or direct writes are off): writes are buffered. */
  private usable: boolean;

  constructor(
    private readonly dir: string,
    private readonly log: (line: string) => void,
    enabled = true,
  ) {
    this.usable = enabled;
  }

  /**
   * `count` aligned block buffers, or none when this filesystem (or this memory) does not take
   * direct writes. Never throws.
   */
  async prepare(count: number): Promise<Buffer[]> {
    if (!this.usable || count <= 0) return [];
    const arena = new SharedArrayBuffer(count * BLOCK_BYTES + DIRECT_ALIGN);
    let base: number | undefined;
    try {
      base = await alignedOffset(arena, path.join(this.dir, probeFileName(process.pid)));
    } catch (e) {
      this.usable = false;
      this.log(`cache: direct writes off (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): block files go through the page cache`);
      return [];
    }
    this.arena = arena;
    this.base = base;
    this.log('cache: direct writes (O_DIRECT) of block files, not through the page cache');
    return Array.from({ length: count }, (_, i) => Buffer.from(arena, base + i * BLOCK_BYTES, BLOCK_BYTES));
  }

  /** Whether `data` starts one of the aligned buffers (its rounded-up length stays inside it). */
  aligned(data: Uint8Array): boolean {
    return this.usable && data.buffer === this.arena && (data.byteOffset - this.base) % BLOCK_BYTES === 0 && data.length <= BLOCK_BYTES;
  }

  /**
   * The bytes a direct write of `data` (aligned: see aligned()) writes: its length rounded up to
   * DIRECT_ALIGN, the bytes after the data zeroed in its own buffer (rather than another block's
   * old bytes on disk). The file is truncated to `data.length` after it (disk.ts writeWhole).
   */
  padded(data: Uint8Array): Uint8Array {
    const padded = roundUp(data.length);
    new Uint8Array(data.buffer, data.byteOffset + data.length, padded - data.length).fill(0);
    return new Uint8Array(data.buffer, data.byteOffset, padded);
  }

  /** The filesystem refused a direct write (EINVAL): this one and every later one go buffered. */
  refused(): void {
    this.usable = false;
    this.log('cache: direct writes off (a direct write answered EINVAL): block files go through the page cache from now on');
  }
}

/** The first offset in `arena` from which the kernel takes a direct write (a probe file, removed after). */
async function alignedOffset(arena: SharedArrayBuffer, probe: string): Promise<number> {
  const fh = await open(probe, DIRECT_FLAGS, 0o600);
  try {
    for (let off = 0; off < DIRECT_ALIGN; off += MALLOC_ALIGN) {
      try {
        await fh.write(new Uint8Array(arena, off, DIRECT_ALIGN), 0, DIRECT_ALIGN, 0);
        return off;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      }
    }
    throw Object.assign(new Error('no offset of the buffer was aligned for it'), { code: 'EINVAL' });
  } finally {
    await fh.close().catch(() => undefined);
    await unlink(probe).catch(() => undefined);
  }
}
