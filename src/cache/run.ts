/**
 * A fetch of a run of contiguous blocks of one rev in one request (block-cache.ts). Each block
 * (a part) has its own Pending, so readers wait on it alone and get it as soon as its bytes are
 * in, while the socket goes on into the next part's buffer. The run holds one connection for
 * the whole request, and each part takes its buffer (a memory slot) only when the bytes reach
 * it: a connection first, then memory. Memory is held only by parts being filled (which hold
 * their connection and so make progress) and by parts being written behind: a run waiting for
 * a buffer always gets one, and the fetches in flight never hold more than the one buffer each
 * that they are filling.
 *
 * Why runs: a request pays the round trip once. At 20 ms and 40 MB/s per connection a 4 MiB
 * request spends ~84 % of its time on bytes; measured with the raw reader (9 connections,
 * 256 MiB, dropbox/range-socket.ts): 4 MiB requests 254-258 MB/s, 16 MiB requests 284-285.
 */
import type { BodySink } from '../dropbox/range-socket.js';
import type { FileRef } from '../vfs/ports.js';
import { blockKey, blockRange } from './blocks.js';
import { noop, type BlockResult, type Pending } from './entry.js';
import type { BlockBufferPool } from './pool.js';
import type { FetchSlots, Priority, Ticket } from './slots.js';

/** One block of a run. */
export interface Part {
  readonly b: number;
  readonly key: string;
  readonly bytes: number;
  readonly pending: Pending;
  /** A reader waits on it: its buffer is taken as demand. */
  demand: boolean;
  /** Its memory slot, asked for when the bytes reach it; held until its block is written or given up. */
  memory?: Ticket;
  /** Its pooled buffer (once the memory slot is held). */
  buf?: Buffer;
  /** Given up or written: its buffer and slot went back (a buffer granted late is not taken). */
  released?: boolean;
  settle(r: BlockResult | Error): void;
}

export interface RunSlots {
  net: FetchSlots;
  memory: FetchSlots;
  buffers: BlockBufferPool;
}

export class FetchRun implements BodySink {
  readonly parts: Part[] = [];
  readonly start: number;
  readonly end: number;
  private net: Ticket | undefined;
  private demand: boolean;
  /** The part being filled, and how many of its bytes are in. */
  private at = 0;
  private used = 0;

  constructor(
    readonly file: FileRef,
    first: number,
    count: number,
    priority: Priority,
    private readonly slots: RunSlots,
    /** A part's bytes are all in (its buffer holds them): digest, check, serve, write. */
    private readonly onFilled: (part: Part) => void,
  ) {
    this.demand = priority === 'demand';
    for (let b = first; b < first + count; b++) {
      const { start, end } = blockRange(file.size, b);
      let settle!: (r: BlockResult | Error) => void;
      const promise = new Promise<BlockResult>((resolve, reject) => {
        settle = (r) => (r instanceof Error ? reject(r) : resolve(r));
      });
      promise.catch(noop); // readahead has no waiter; readers still see the rejection
      const part: Part = { b, key: blockKey(file.rev, b), bytes: end - start, demand: this.demand, settle, pending: { promise, promote: () => this.promote(part) } };
      this.parts.push(part);
    }
    this.start = blockRange(file.size, first).start;
    this.end = blockRange(file.size, first + count - 1).end;
  }

  /** Resolves with the run's connection ticket once it holds one. */
  async connection(): Promise<Ticket> {
    const net = (this.net = this.slots.net.acquire(this.demand ? 'demand' : 'readahead'));
    await net.ready;
    return net;
  }

  /** Gives the connection back (or leaves its queue). */
  releaseConnection(): void {
    this.net?.release();
  }

  /** Parts whose bytes did not all come (after the request ended). */
  unfilled(): Part[] {
    return this.parts.slice(this.at);
  }

  // ---- BodySink: the socket reads into the parts' buffers in turn ----

  room(): Buffer | Promise<Buffer> {
    const part = this.parts[this.at];
    if (!part) throw new RangeError(`the run of rev ${this.file.rev} has no room past byte ${this.end}`);
    if (part.buf) return part.buf.subarray(this.used, part.bytes);
    // A retry after a cut may ask again while the slot is still coming: the same ticket.
    const memory = (part.memory ??= this.slots.memory.acquire(part.demand ? 'demand' : 'readahead'));
    return memory.granted ? this.take(part) : memory.ready.then(() => this.take(part));
  }

  wrote(n: number): void {
    const part = this.parts[this.at];
    if (!part?.buf || this.used + n > part.bytes) throw new RangeError(`the run of rev ${this.file.rev} was written past its room`);
    this.used += n;
    if (this.used < part.bytes) return;
    this.at++;
    this.used = 0;
    this.onFilled(part);
  }

  private take(part: Part): Buffer {
    if (part.released) throw new Error(`block ${part.b} of rev ${this.file.rev} was given up`);
    part.buf ??= this.slots.buffers.acquire();
    return part.buf.subarray(0, part.bytes);
  }

  private promote(part: Part): void {
    if (part.demand) return;
    part.demand = true;
    part.memory?.promote();
    this.demand = true;
    this.net?.promote();
  }
}
