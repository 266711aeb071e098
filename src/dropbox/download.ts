/**
 * Parallel ranged download of one revision into a file, checking Dropbox's content_hash as
 * the bytes arrive. The file is cut into chunks aligned to the 4 MiB hash blocks, a few per
 * worker, so each block is hashed by exactly one worker in order; a connection cut midway
 * resumes from the last byte received (the block's hash state carries on). Memory: about
 * 1 MiB of socket pieces per worker waiting for a coalesced write; nothing holds the file.
 */
import type { FileHandle } from 'node:fs/promises';
import { createHash, type Hash } from 'node:crypto';
import { CoalescingWriter } from '../util/coalesce.js';
import { bufferFor } from '../util/read.js';
import { combineBlockDigests, CONTENT_HASH_BLOCK_BYTES } from './content-hash.js';
import { localError, RemoteError } from './errors.js';
import { Transport } from './http.js';
import type { BodySink, RangeReader } from './range-socket.js';
import { withRetries, type RetryOptions } from './retry.js';

const BLOCK = CONTENT_HASH_BLOCK_BYTES;

export interface Chunk {
  start: number;
  /** exclusive */
  end: number;
}

/** About `chunksPerWorker` block-aligned chunks per worker, sizes differing by at most one block. */
export function planChunks(size: number, workers: number, chunksPerWorker = 4): Chunk[] {
  const blocks = Math.ceil(size / BLOCK);
  const count = Math.max(1, Math.min(blocks, workers * chunksPerWorker));
  const chunks: Chunk[] = [];
  let block = 0;
  for (let i = 0; i < count && block < blocks; i++) {
    const n = Math.floor(blocks / count) + (i < blocks % count ? 1 : 0);
    chunks.push({ start: block * BLOCK, end: Math.min(size, (block + n) * BLOCK) });
    block += n;
  }
  return chunks;
}

/** Runs `task` over `items` with at most `limit` at once; the first failure stops new starts. */
export async function runPool<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed as Error;
}

export interface DownloadJob {
  transport: Transport;
  token: () => Promise<string>;
  retry: RetryOptions;
  /** `rev:…` pins the revision, so a file changed meanwhile is an error, not a mix. */
  source: string;
  size: number;
  contentHash: string;
  file: FileHandle;
  fileLabel: string;
  workers: number;
  onBytes?: (n: number) => void;
  signal?: AbortSignal;
}

export async function downloadRanges(job: DownloadJob): Promise<void> {
  const digests: Buffer[] = new Array<Buffer>(Math.ceil(job.size / BLOCK));
  await runPool(planChunks(job.size, job.workers, 2), job.workers, async (chunk) => {
    // Each socket piece is hashed (its 4 MiB block's running SHA-256) and queued for a
    // coalesced positional write: about 1 MiB per worker in memory, no copies.
    let pos = chunk.start;
    let block: Hash = createHash('sha256');
    const out = new CoalescingWriter(job.file, pos);
    const flush = async (): Promise<void> => {
      try {
        await out.flush();
      } catch (e) {
        throw localError('write', job.fileLabel, e);
      }
    };
    await withRetries(
      'files/download',
      async (attempt) => {
        const res = await job.transport.request({
          route: 'files/download',
          token: (attempt.token = await job.token()),
          arg: { path: job.source },
          headers: { range: `bytes=${pos}-${chunk.end - 1}` },
          signal: job.signal,
        });
        if (res.statusCode !== 206 && !(res.statusCode === 200 && pos === 0 && chunk.end === job.size)) {
          throw await Transport.failure('files/download', res);
        }
        const cr = res.headers['content-range'];
        if (res.statusCode === 206 && cr !== `bytes ${pos}-${chunk.end - 1}/${job.size}`) {
          res.destroy();
          throw new RemoteError('api', 'files/download', `Dropbox answered a range request with the wrong range (${cr ?? 'none'})`);
        }
        try {
          for await (const data of res as AsyncIterable<Buffer>) {
            let off = 0;
            while (off < data.length) {
              const blockEnd = Math.min((Math.floor(pos / BLOCK) + 1) * BLOCK, chunk.end);
              const take = Math.min(data.length - off, blockEnd - pos);
              if (take <= 0) throw new RemoteError('api', 'files/download', 'Dropbox sent more bytes than asked for');
              const piece = off === 0 && take === data.length ? data : data.subarray(off, off + take);
              block.update(piece);
              pos += take;
              off += take;
              job.onBytes?.(take);
              if (pos === blockEnd) {
                digests[Math.floor((pos - 1) / BLOCK)] = block.digest();
                block = createHash('sha256');
              }
              await out.write(piece).catch((e: unknown) => Promise.reject(localError('write', job.fileLabel, e)));
            }
          }
        } catch (e) {
          res.destroy();
          throw e;
        } finally {
          // What was hashed must be on disk before a retry resumes after it.
          await flush();
        }
        if (pos < chunk.end) {
          throw Object.assign(new Error('premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
        }
      },
      { ...job.retry, signal: job.signal, endpointLabel: job.transport.label },
    );
  });
  const got = combineBlockDigests(digests);
  if (got !== job.contentHash) {
    throw new RemoteError('content_hash_mismatch', 'files/download', `the downloaded bytes do not match Dropbox's content_hash (got ${got.slice(0, 12)}…, expected ${job.contentHash.slice(0, 12)}…)`);
  }
}

export interface RangeJob {
  reader: RangeReader;
  token: () => Promise<string>;
  retry: RetryOptions;
  /** `rev:…` */
  source: string;
  start: number;
  /** exclusive */
  end: number;
  signal?: AbortSignal;
  /** Where to put the bytes (at least end - start long): a reused buffer costs no page faults or GC. */
  into?: Buffer;
}

/**
 * Reads [start, end) of one revision into memory (for one cache block), the socket reading
 * straight into it (range-socket.ts); resumes after a cut.
 */
export async function fetchRange(job: RangeJob): Promise<Buffer> {
  const n = job.end - job.start;
  const out = bufferFor(n, job.into);
  if (out.length === 0) return out;
  await readWithRetries(job, (got) => out.subarray(got, n));
  return out;
}

/**
 * Reads [start, end) of one revision into `sink`'s rooms in turn (a run of cache blocks, one
 * request); resumes after a cut where the bytes stopped, into the same room.
 */
export async function fetchRangeInto(job: Omit<RangeJob, 'into'>, sink: BodySink): Promise<void> {
  if (job.end > job.start) await readWithRetries(job, () => sink);
}

async function readWithRetries(job: Omit<RangeJob, 'into'>, into: (got: number) => Buffer | BodySink): Promise<void> {
  let got = 0;
  await withRetries(
    'files/download',
    async (attempt) => {
      const progress = { bytes: 0 };
      try {
        await job.reader.read({
          token: (attempt.token = await job.token()),
          arg: { path: job.source },
          start: job.start + got,
          end: job.end,
          into: into(got),
          signal: job.signal,
          progress,
        });
      } finally {
        got += progress.bytes;
      }
    },
    { ...job.retry, signal: job.signal, endpointLabel: job.reader.label },
  );
}
