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
 * O_DIRECT wants the memory address aligned, and JavaScript cannot see an address. The aligned
 * buffers live in the memory of one shared WebAssembly.Memory: V8 maps it from the OS, so it
 * starts on a page boundary, and it is a SharedArrayBuffer that the hashing workers read in
 * place. Every block buffer starts at a multiple of BLOCK_BYTES (a multiple of 4 KiB) in it.
 * Page alignment, not just the device's 512 bytes, is what makes direct writes fast: measured
 * here with scripts/lib/direct-write-bench.mjs (250 new 4 MiB block files, 4 at once, as disk.ts
 * writes them): from memory 512-aligned but not page-aligned 59–297 MB/s, 54–351 ms per file at
 * the median; from page-aligned memory 1071–1486 MB/s, 11–15 ms. An earlier version found a
 * 512-aligned offset in a plain SharedArrayBuffer by probing, and its slow block writes held
 * the fetch slots of a cold read from a shaped emulator: 36–148 MB/s against 9 curls' 326.
 * WebAssembly.Memory reserves ~10 GiB of address space (not memory): under a `ulimit -v` that
 * refuses it, block files are written through the page cache. One direct 4 KiB probe write at
 * open tells whether the filesystem takes O_DIRECT at all (EINVAL: it does not).
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
/** WebAssembly's page size: the shared memory grows in these. */
const WASM_PAGE = 65536;

const roundUp = (n: number): number => Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;

/** open(2) flags of a new block file written directly. */
export const DIRECT_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT;

export class DirectWrites {
  private arena: SharedArrayBuffer | undefined;
  /** False once the filesystem refused O_DIRECT (or direct writes are off): writes are buffered. */
  private usable: boolean;

  constructor(
    private readonly dir: string,
    private readonly log: (line: string) => void,
    enabled = true,
    /** Page-aligned shared memory of `bytes` (tests pass one that fails). */
    private readonly allocate: (bytes: number) => SharedArrayBuffer = pageAlignedShared,
  ) {
    this.usable = enabled;
  }

  /**
   * `count` aligned block buffers, or none when this filesystem (or this memory) does not take
   * direct writes. Never throws.
   */
  async prepare(count: number): Promise<Buffer[]> {
    if (!this.usable || count <= 0) return [];
    let arena: SharedArrayBuffer;
    try {
      arena = this.allocate(count * BLOCK_BYTES);
    } catch (e) {
      this.usable = false;
      this.log(`cache: direct writes off (no page-aligned shared memory: ${(e as Error).message}; a ulimit -v?): block files go through the page cache`);
      return [];
    }
    try {
      await probe(arena, path.join(this.dir, probeFileName(process.pid)));
    } catch (e) {
      this.usable = false;
      this.log(`cache: direct writes off (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): block files go through the page cache`);
      return [];
    }
    this.arena = arena;
    this.log('cache: direct writes (O_DIRECT) of block files, not through the page cache');
    return Array.from({ length: count }, (_, i) => Buffer.from(arena, i * BLOCK_BYTES, BLOCK_BYTES));
  }

  /** Whether `data` starts one of the aligned buffers (its rounded-up length stays inside it). */
  aligned(data: Uint8Array): boolean {
    return this.usable && data.buffer === this.arena && data.byteOffset % BLOCK_BYTES === 0 && data.length <= BLOCK_BYTES;
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

/** The part of the WebAssembly global used here (the project's TypeScript lib has no DOM or WebAssembly types). */
declare const WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared: true }) => { buffer: SharedArrayBuffer } };

/** Shared memory that starts on a page boundary: a WebAssembly.Memory's (mapped by V8 from the OS). */
export function pageAlignedShared(bytes: number): SharedArrayBuffer {
  const pages = Math.ceil(bytes / WASM_PAGE);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer;
}

/** One direct write from the start of `arena` to a probe file (removed after): throws EINVAL where O_DIRECT is refused. */
async function probe(arena: SharedArrayBuffer, file: string): Promise<void> {
  const fh = await open(file, DIRECT_FLAGS, 0o600);
  try {
    await fh.write(new Uint8Array(arena, 0, DIRECT_ALIGN), 0, DIRECT_ALIGN, 0);
  } finally {
    await fh.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
  }
}
