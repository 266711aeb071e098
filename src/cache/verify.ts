/**
 * The content_hash check of a revision from its block digests: Dropbox's content_hash is the
 * SHA-256 of the 4 MiB blocks' SHA-256 digests in order, so once every block of a rev has been
 * digested the cache can tell whether the bytes it holds are the revision's.
 */
import { combineBlockDigests } from '../dropbox/content-hash.js';
import type { FileRef } from '../vfs/ports.js';
import { blockCount, blockRange } from './blocks.js';

export type Verdict = 'ok' | 'incomplete' | 'mismatch' | 'unchecked';

export interface DigestedBlock {
  bytes: number;
  sha256: Uint8Array;
}

/** 'unchecked' for an empty file or one without a content_hash. O(blocks of the file). */
export function revVerdict(file: FileRef, blocks: ReadonlyMap<number, DigestedBlock> | undefined): Verdict {
  const n = blockCount(file.size);
  if (n === 0 || !file.contentHash) return 'unchecked';
  if (!blocks || blocks.size < n) return 'incomplete';
  const digests: Uint8Array[] = [];
  for (let b = 0; b < n; b++) {
    const e = blocks.get(b);
    if (!e) return 'incomplete';
    const { start, end } = blockRange(file.size, b);
    if (e.bytes !== end - start) return 'mismatch';
    digests.push(e.sha256);
  }
  return combineBlockDigests(digests) === file.contentHash ? 'ok' : 'mismatch';
}
