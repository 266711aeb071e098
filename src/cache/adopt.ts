/**
 * Adopting a local copy of a rev (a file just uploaded from this machine): its blocks are
 * read, digested and stored as if fetched, a few at once, in pooled buffers; with every block
 * read, their digests must make the rev's content_hash, else the rev is dropped and the adopt
 * fails with CacheError('corrupt').
 */
import { open, type FileHandle } from 'node:fs/promises';
import { combineBlockDigests } from '../dropbox/content-hash.js';
import type { FileRef } from '../vfs/ports.js';
import { blockCount, blockKey, blocksWithin } from './blocks.js';
import { readLocalBlock } from './disk.js';
import { noop, type BlockResult, type Hasher, type Pending } from './entry.js';
import { CacheError } from './errors.js';
import type { BlockBufferPool } from './pool.js';
import type { RevChecks } from './rev-check.js';
import type { BlockStore } from './store.js';

/** Blocks adopted at once (read, hashed and written in overlap). */
const ADOPT_PARALLEL_BLOCKS = 3;

export interface AdoptContext {
  budgetBytes: number;
  store: BlockStore;
  revs: RevChecks;
  hasher: Hasher;
  buffers: BlockBufferPool;
  inflight: Map<string, Pending>;
  closed: () => boolean;
  log: (line: string) => void;
  now: () => number;
}

export async function adoptFile(c: AdoptContext, file: FileRef, localPath: string): Promise<void> {
  const startedMs = c.now();
  let fh: FileHandle;
  try {
    fh = await open(localPath, 'r');
  } catch (e) {
    throw new CacheError('local_io', `cannot adopt ${localPath}: ${(e as Error).message}`, { cause: e });
  }
  const n = blockCount(file.size);
  const digests: Buffer[] = [];
  let kept = 0;
  let done = 0;
  try {
    const size = (await fh.stat()).size;
    if (size !== file.size) throw new CacheError('local_io', `cannot adopt ${localPath}: it has ${size} bytes, rev ${file.rev} has ${file.size}`);
    const fit = blocksWithin(file.size, c.budgetBytes); // older blocks are evicted to make room
    // A few blocks at once, so that reading, hashing and writing overlap; pooled buffers.
    let next = 0;
    let failure: Error | undefined;
    const worker = async (): Promise<void> => {
      while (failure === undefined && !c.closed() && next < fit) {
        const b = next++;
        const buf = c.buffers.acquire();
        try {
          const data = await readLocalBlock(fh, localPath, file.size, b, buf);
          const key = blockKey(file.rev, b);
          if (c.store.index.has(key) || c.inflight.has(key)) {
            digests[b] = await c.hasher.digest(data);
          } else {
            let release!: (r: BlockResult) => void;
            const pending: Pending = { promise: new Promise<BlockResult>((r) => (release = r)), promote: noop };
            c.inflight.set(key, pending);
            try {
              const digest = await c.hasher.digest(data);
              if (await c.store.store(file.rev, b, data, digest)) kept++;
              digests[b] = digest;
            } finally {
              if (c.inflight.get(key) === pending) c.inflight.delete(key);
              release(data);
            }
          }
          done++;
        } catch (e) {
          failure ??= e instanceof Error ? e : new Error(String(e));
        } finally {
          c.buffers.releaseLater(buf);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(ADOPT_PARALLEL_BLOCKS, fit) }, worker));
    if (failure !== undefined) throw failure;
  } finally {
    await fh.close();
  }
  if (done === n && file.contentHash) {
    if (combineBlockDigests(digests) !== file.contentHash) {
      c.revs.dropRev(file.rev);
      throw new CacheError('corrupt', `cannot adopt ${localPath}: its bytes do not make the content_hash of rev ${file.rev}`);
    }
    c.revs.matched(file.rev);
  }
  c.log(`cache: adopted ${kept} of ${n} blocks of rev ${file.rev} from ${localPath} in ${c.now() - startedMs} ms`);
}
