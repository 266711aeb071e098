/**
 * Block arithmetic and names. Blocks are the 4 MiB blocks of Dropbox's content_hash, so a
 * block's digest is one term of the file's content_hash. On disk a block is
 * `<dir>/<rev>/<index>`; a rev that is not plain lowercase `[0-9a-z_-]` (Dropbox revs are hex)
 * gets a hashed folder name, so no rev can escape `dir` or collide on a case-insensitive disk.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { CONTENT_HASH_BLOCK_BYTES } from '../dropbox/content-hash.js';

export const BLOCK_BYTES = CONTENT_HASH_BLOCK_BYTES;

/** Number of blocks of a file of `size` bytes (0 for an empty file). */
export const blockCount = (size: number): number => Math.ceil(size / BLOCK_BYTES);

/** Bytes [start, end) of block `index` of a file of `size` bytes. */
export function blockRange(size: number, index: number): { start: number; end: number } {
  const start = index * BLOCK_BYTES;
  return { start, end: Math.min(size, start + BLOCK_BYTES) };
}

/** How many leading blocks of a file of `size` bytes fit in `budgetBytes`. */
export function blocksWithin(size: number, budgetBytes: number): number {
  return size <= budgetBytes ? blockCount(size) : Math.floor(budgetBytes / BLOCK_BYTES);
}

/** The in-memory key of a block: revs never contain '/' once encoded, indexes are integers. */
export const blockKey = (rev: string, index: number): string => `${rev}/${index}`;

const PLAIN_REV = /^[0-9a-z_-]{1,128}$/;
/** Folder names the cache owns: plain revs and `h-<sha256 hex>`. */
export const REV_DIR_NAME = /^[0-9a-z_-]{1,128}$/;
export const BLOCK_FILE_NAME = /^(0|[1-9][0-9]{0,9})$/;
export const TEMP_FILE_NAME = /^(0|[1-9][0-9]{0,9})\.tmp-\d+-\d+$/;
/** The probe file of DirectWrites.prepare (direct.ts), in the cache folder itself; a crash's is removed at open. */
export const PROBE_FILE_NAME = /^\.direct-probe-\d+$/;
export const probeFileName = (pid: number): string => `.direct-probe-${pid}`;

export function revDirName(rev: string): string {
  return PLAIN_REV.test(rev) ? rev : `h-${createHash('sha256').update(rev).digest('hex')}`;
}

export const revDir = (dir: string, rev: string): string => path.join(dir, revDirName(rev));
export const blockPath = (dir: string, rev: string, index: number): string => path.join(dir, revDirName(rev), String(index));
