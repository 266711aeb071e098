/**
 * The shapes the block cache's parts share (block-cache.ts, store.ts, kept.ts, rev-check.ts,
 * adopt.ts): an indexed block, a block being fetched, checked or adopted (single flight), and
 * a fetched block being written behind its readers.
 */
import type { DigestedBlock } from './verify.js';

export interface Entry {
  rev: string;
  block: number;
  bytes: number;
  sha256: Buffer;
  lastUsedMs: number;
  /**
   * Its bytes are known to match `sha256`: digested in this session (fetched, adopted, or
   * checked against the row), or a kept block whose file is the one sealed at a clean close
   * (kept.ts).
   */
  verified: boolean;
  /** A kept block's sealed file identity (its row's file_id), until it is checked (kept.ts). */
  keptId?: string;
  /** The file this session wrote for it (`ino:size:mtime ns`), until sealed at close (kept.ts). */
  written?: string;
}

/** What a waiter on a block gets: its bytes, or "look again" (the block was dropped). */
export const RETRY = Symbol('retry');
export type BlockResult = Buffer | typeof RETRY;

export interface Pending {
  promise: Promise<BlockResult>;
  promote(): void;
}

/**
 * A fetched block, digested and served from memory while its file is written: it counts for
 * the content_hash check, and its fetch (its Pending, which has its bytes) stays in `inflight`
 * for the readers that come meanwhile, until it is indexed or dropped.
 */
export interface Unwritten extends DigestedBlock {
  sha256: Buffer;
  pending: Pending;
}

/** Block digests off the event loop (util/sha256-pool.ts). */
export interface Hasher {
  digest(data: Uint8Array): Promise<Buffer>;
  /** Gets ready for digests soon to come (starts its threads), if it has anything to get ready. */
  warm?(): void;
  close(): Promise<void>;
}

export const noop = (): void => undefined;
