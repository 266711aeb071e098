/**
 * Uploads a local file from disk, never holding it in memory. Small files go in one request
 * with their content_hash; larger ones through an upload session: concurrent (chunks of a
 * 4 MiB multiple sent by several workers at once, the closing chunk last) or, with one worker,
 * sequential (resuming at `correct_offset` when an append landed without us seeing the
 * answer). Each request carries the content_hash of its own body; the whole file's hash,
 * built from the block digests, is checked against what Dropbox reports at the end.
 */
import { createReadStream } from 'node:fs';
import { blockDigests, combineBlockDigests, CONTENT_HASH_BLOCK_BYTES } from './content-hash.js';
import { localError, RemoteError } from './errors.js';
import { runPool, planChunks, type Chunk } from './download.js';
import type { Transport } from './http.js';
import { withRetries, type RetryOptions } from './retry.js';

const BLOCK = CONTENT_HASH_BLOCK_BYTES;
/** Files up to this size go in one request (one round trip beats a session's three). */
export const SINGLE_REQUEST_MAX_BYTES = 2 * BLOCK;
/** Session chunks stay well under the 150 MiB per-request limit. */
const MAX_CHUNK_BYTES = 128 * 1024 * 1024;

export interface CommitInfo {
  path: string;
  mode: 'add' | 'overwrite' | { update: string };
  autorename?: boolean;
  client_modified?: string;
}

export interface RawFileMetadata {
  name: string;
  path_lower: string;
  path_display: string;
  id: string;
  rev: string;
  size: number;
  content_hash?: string;
  client_modified: string;
  server_modified: string;
}

export interface UploadJob {
  transport: Transport;
  token: () => Promise<string>;
  retry: RetryOptions;
  file: string;
  size: number;
  commit: CommitInfo;
  workers: number;
  /** Looks the path up after a lost finish answer: did our bytes land? */
  lookup: (path: string) => Promise<RawFileMetadata | undefined>;
  onBytes?: (n: number) => void;
  signal?: AbortSignal;
}

function stoneMode(m: CommitInfo['mode']): unknown {
  return typeof m === 'string' ? { '.tag': m } : { '.tag': 'update', update: m.update };
}

/** Hashes [start, end) of the file (start block-aligned): its block digests and its own hash. */
async function hashRange(file: string, start: number, end: number): Promise<{ blocks: Buffer[]; hash: string }> {
  try {
    const blocks = await blockDigests(file, start, end);
    return { blocks, hash: combineBlockDigests(blocks) };
  } catch (e) {
    throw localError('read', file, e);
  }
}

/** A read stream of [start, end) that reports progress until it is stopped. */
function streamRange(job: UploadJob, start: number, end: number, sent: { n: number; stopped: boolean }) {
  const stream = createReadStream(job.file, { start, end: end - 1, highWaterMark: 1024 * 1024 });
  stream.on('data', (d) => {
    if (sent.stopped) return;
    sent.n += d.length;
    job.onBytes?.(d.length);
  });
  return { stream, length: end - start };
}

/** One content-route call with the policy; a failed attempt's progress is rolled back. */
async function send<T>(job: UploadJob, route: string, arg: unknown, range: Chunk | undefined): Promise<T> {
  return withRetries(
    route,
    async (attempt) => {
      // The token first: a refresh is a network round trip, and a read stream made before it
      // would flow (its progress listener reads) into nothing meanwhile, leaving the request
      // with a Content-Length and no body (issue 8).
      attempt.token = await job.token();
      const sent = { n: 0, stopped: false };
      const body = range && range.end > range.start ? streamRange(job, range.start, range.end, sent) : undefined;
      try {
        return await job.transport.json<T>({
          route,
          token: attempt.token,
          arg,
          body: body ?? { stream: Buffer.alloc(0), length: 0 },
          signal: job.signal,
        });
      } catch (e) {
        // Stop the stream (its fd, and any late progress), then take back what it reported.
        sent.stopped = true;
        if (body && !Buffer.isBuffer(body.stream)) body.stream.destroy();
        if (sent.n) job.onBytes?.(-sent.n);
        throw e;
      }
    },
    { ...job.retry, signal: job.signal, endpointLabel: job.transport.label },
  );
}

function checkResult(job: UploadJob, md: RawFileMetadata, expected: string): RawFileMetadata {
  if (md.content_hash !== undefined && md.content_hash !== expected) {
    throw new RemoteError('content_hash_mismatch', 'files/upload', `Dropbox stored different bytes than ${job.file} holds (content_hash ${md.content_hash.slice(0, 12)}…, expected ${expected.slice(0, 12)}…)`);
  }
  return md;
}

export async function uploadFile(job: UploadJob): Promise<RawFileMetadata> {
  const commit = { ...job.commit, mode: stoneMode(job.commit.mode) };
  if (job.size <= SINGLE_REQUEST_MAX_BYTES) {
    const { hash } = await hashRange(job.file, 0, job.size);
    const md = await send<RawFileMetadata>(job, 'files/upload', { ...commit, content_hash: hash }, { start: 0, end: job.size });
    return checkResult(job, md, hash);
  }
  return job.workers > 1 ? concurrentSession(job, commit) : sequentialSession(job, commit);
}

async function concurrentSession(job: UploadJob, commit: unknown): Promise<RawFileMetadata> {
  const perWorker = Math.max(2, Math.ceil(job.size / MAX_CHUNK_BYTES / job.workers));
  const chunks = planChunks(job.size, job.workers, perWorker);
  const { session_id } = await send<{ session_id: string }>(job, 'files/upload_session/start', { session_type: { '.tag': 'concurrent' } }, undefined);
  const blocks: Buffer[][] = new Array<Buffer[]>(chunks.length);
  const appendChunk = async (i: number): Promise<void> => {
    const c = chunks[i]!;
    const h = await hashRange(job.file, c.start, c.end);
    blocks[i] = h.blocks;
    const last = i === chunks.length - 1;
    await send(job, 'files/upload_session/append_v2', { cursor: { session_id, offset: c.start }, close: last, content_hash: h.hash }, c);
  };
  // Every chunk but the closing one, in parallel; then the closing one.
  await runPool(chunks.slice(0, -1).map((_, i) => i), job.workers, appendChunk);
  await appendChunk(chunks.length - 1);
  return finish(job, session_id, commit, combineBlockDigests(blocks.flat()));
}

async function sequentialSession(job: UploadJob, commit: unknown): Promise<RawFileMetadata> {
  const chunkBytes = 8 * BLOCK;
  const { session_id } = await send<{ session_id: string }>(job, 'files/upload_session/start', {}, undefined);
  let offset = 0;
  while (offset < job.size) {
    const end = Math.min(job.size, offset + chunkBytes);
    const { hash } = await hashRange(job.file, offset, end);
    try {
      await send(job, 'files/upload_session/append_v2', { cursor: { session_id, offset }, close: end === job.size, content_hash: hash }, { start: offset, end });
      offset = end;
    } catch (e) {
      // An earlier append landed without us seeing the answer: carry on from where Dropbox is.
      if (e instanceof RemoteError && e.tags.includes('incorrect_offset') && e.correctOffset !== undefined && e.correctOffset > offset) {
        // Those bytes did arrive: count them again (the failed attempt's progress was rolled back).
        job.onBytes?.(e.correctOffset - offset);
        offset = e.correctOffset;
        continue;
      }
      throw e;
    }
  }
  const { hash } = await hashRange(job.file, 0, job.size);
  return finish(job, session_id, commit, hash);
}

async function finish(job: UploadJob, sessionId: string, commit: unknown, expected: string): Promise<RawFileMetadata> {
  try {
    const md = await send<RawFileMetadata>(job, 'files/upload_session/finish', { cursor: { session_id: sessionId, offset: job.size }, commit }, undefined);
    return checkResult(job, md, expected);
  } catch (e) {
    // A finish that committed but whose answer was lost: the retry finds no session. If the
    // path now holds exactly our bytes, the upload did succeed.
    if (e instanceof RemoteError && e.code === 'not_found') {
      const md = await job.lookup(job.commit.path);
      if (md?.content_hash === expected && md.size === job.size) return md;
    }
    throw e;
  }
}
