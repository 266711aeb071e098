/**
 * Readahead planning, per reader (`stream`). A read that starts near where the same stream's
 * reads of the same rev have reached (within NEAR_BYTES: the kernel keeps several 128 KiB reads
 * in flight and they may arrive out of order) is sequential: the window opens at 1 block and
 * doubles with each sequential read that moves the stream forward, up to `maxWindowBlocks`
 * (with 128 KiB kernel reads: the full window after 512 KiB, not after 4 blocks = 16 MiB; on
 * a 1 GiB cold read that ramp had cost half a second). Any other read
 * closes the window (random readers fetch only what they touch). Pure bookkeeping: no I/O,
 * O(1) per read.
 */
import { BLOCK_BYTES, blockCount } from './blocks.js';

/** How far from the stream's position a read may start and still count as sequential. */
export const NEAR_BYTES = 1024 * 1024;

interface StreamState {
  rev: string;
  nextOffset: number;
  lastBlock: number;
  windowBlocks: number;
}

export class ReadaheadPlanner {
  private readonly streams = new Map<number, StreamState>();

  constructor(private readonly maxWindowBlocks: number) {}

  /** Records the read [offset, end) (end > offset) and returns the blocks to fetch ahead of it. */
  onRead(stream: number, rev: string, size: number, offset: number, end: number): number[] {
    const endBlock = Math.floor((end - 1) / BLOCK_BYTES);
    let s = this.streams.get(stream);
    if (s && s.rev === rev && Math.abs(offset - s.nextOffset) <= NEAR_BYTES) {
      if (s.windowBlocks === 0) s.windowBlocks = Math.min(1, this.maxWindowBlocks);
      else if (end > s.nextOffset) s.windowBlocks = Math.min(s.windowBlocks * 2, this.maxWindowBlocks);
    } else {
      s = { rev, nextOffset: offset, lastBlock: endBlock, windowBlocks: 0 };
      this.streams.set(stream, s);
    }
    s.nextOffset = Math.max(s.nextOffset, end);
    s.lastBlock = Math.max(s.lastBlock, endBlock);
    const last = Math.min(endBlock + s.windowBlocks, blockCount(size) - 1);
    const out: number[] = [];
    for (let b = endBlock + 1; b <= last; b++) out.push(b);
    return out;
  }

  forget(stream: number): void {
    this.streams.delete(stream);
  }

  /** The current window of a stream (tests, stats). */
  windowOf(stream: number): number {
    return this.streams.get(stream)?.windowBlocks ?? 0;
  }
}
