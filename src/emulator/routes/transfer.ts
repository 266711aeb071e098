/**
 * Byte routes: files/download (Range, 206/416, ETag), files/upload (the conflict matrix lives
 * in Namespace.commitFile), and upload sessions (sequential and concurrent), finish and
 * finish_batch_v2. Bodies stream to disk; nothing holds a whole file in memory.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, truncate, unlink } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ContentHasher, CONTENT_HASH_BLOCK_BYTES } from '../../dropbox/content-hash.js';
import { headerSafeJson, openForWrite, PayloadTooLarge, type RequestContext } from '../context.js';
import { apiError, HttpError, NamespaceError, type Json, type Tagged } from '../errors.js';
import { toMetadata, type WriteMode } from '../entries.js';
import { releaseBlobs, wrapNs } from './files.js';
import type { RouteTable, State } from './types.js';

const MAX_SESSION_BYTES = 2 ** 41 - 2 ** 22;
const SESSION_LIFETIME_MS = 7 * 24 * 3600 * 1000;

interface CommitInfo {
  path: string;
  mode: WriteMode;
  autorename: boolean;
  client_modified?: string;
  strict_conflict: boolean;
}
interface SessionRow {
  id: string;
  type: 'sequential' | 'concurrent';
  length: number;
  closed: 0 | 1;
  created_at: number;
}

const tmpDir = (s: State): string => path.join(s.root, 'tmp');
const sessionFile = (s: State, id: string): string => path.join(s.root, 'sessions', id);

/** Parses a single `Range: bytes=…`; anything else (multi-range, bad syntax) is ignored (RFC 9110). */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

/** Streams the request body to a new temp file; cleans up on any failure. */
async function receiveToTemp(state: State, ctx: RequestContext): Promise<{ file: string; size: number; contentHash: string }> {
  const file = path.join(tmpDir(state), randomBytes(12).toString('hex'));
  const fh = await openForWrite(file, 'w');
  try {
    const r = await ctx.receiveBody(fh);
    return { file, ...r };
  } catch (e) {
    await unlink(file).catch(() => undefined);
    throw tooLarge(ctx, e);
  } finally {
    await fh.close();
  }
}

function tooLarge(ctx: RequestContext, e: unknown): Error {
  if (e instanceof PayloadTooLarge) {
    ctx.drain();
    return apiError({ '.tag': 'payload_too_large' });
  }
  return e instanceof Error ? e : new Error(String(e));
}

async function hashFile(file: string): Promise<string> {
  const hasher = new ContentHasher();
  for await (const chunk of createReadStream(file, { highWaterMark: CONTENT_HASH_BLOCK_BYTES })) hasher.update(chunk as Buffer);
  return hasher.digest();
}

/**
 * Moves `file` into the namespace under `commit`. On a namespace failure the file is given
 * back (renamed to `file` again) so a session can be finished again elsewhere.
 */
async function commitBytes(state: State, file: string, size: number, contentHash: string, commit: CommitInfo): Promise<Json> {
  const blob = state.ns.newBlobName();
  await rename(file, state.ns.blobPath(blob));
  try {
    const r = state.ns.commitFile({
      path: commit.path,
      mode: commit.mode,
      autorename: commit.autorename,
      strictConflict: commit.strict_conflict,
      clientModified: commit.client_modified,
      blob,
      size,
      contentHash,
    });
    if (r.wrote) state.ns.notify();
    else releaseBlobs(state.ns, [blob]);
    releaseBlobs(state.ns, r.released);
    return toMetadata(r.entry, false);
  } catch (e) {
    await rename(state.ns.blobPath(blob), file).catch(() => undefined);
    throw e;
  }
}

class Sessions {
  constructor(private readonly state: State) {}
  private get db() {
    return this.state.db;
  }

  get(id: string): SessionRow | undefined {
    const row = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    if (row && row.created_at + SESSION_LIFETIME_MS < this.state.control.nowMs()) {
      this.drop(id);
      return undefined;
    }
    return row;
  }

  drop(id: string): void {
    this.db.prepare('DELETE FROM sessions WHERE id = ?').run(id);
    this.db.prepare('DELETE FROM session_chunks WHERE session_id = ?').run(id);
  }

  chunks(id: string): { offset: number; length: number }[] {
    return this.db.prepare('SELECT offset, length FROM session_chunks WHERE session_id = ? ORDER BY offset').all(id) as never;
  }
}

/** The lookup error of an append or a finish at `offset` on `s`, if any (before any byte is taken). */
function lookupProblem(s: SessionRow | undefined, offset: number, close: boolean, contentLength: number | undefined, chunks: { offset: number; length: number }[]): Tagged | undefined {
  if (!s) return { '.tag': 'not_found' };
  if (s.type === 'sequential') {
    if (offset !== s.length) return { '.tag': 'incorrect_offset', correct_offset: s.length };
    if (s.closed) return { '.tag': 'closed' };
    return undefined;
  }
  if (offset % CONTENT_HASH_BLOCK_BYTES !== 0) return { '.tag': 'concurrent_session_invalid_offset' };
  if (contentLength !== undefined) {
    if (!close && contentLength % CONTENT_HASH_BLOCK_BYTES !== 0) return { '.tag': 'concurrent_session_invalid_data_size' };
    const end = offset + contentLength;
    for (const c of chunks) {
      if (c.offset === offset && c.length === contentLength) continue; // a retried chunk
      if (c.offset < end && offset < c.offset + c.length) return { '.tag': 'concurrent_session_invalid_offset' };
    }
    if (s.closed && end > s.length) return { '.tag': 'closed' };
  }
  return undefined;
}

function contentLength(ctx: RequestContext): number | undefined {
  const h = ctx.req.headers['content-length'];
  return h === undefined ? undefined : Number(h);
}

async function finishOne(state: State, ctx: RequestContext | undefined, arg: { cursor: { session_id: string; offset: number }; commit: CommitInfo; content_hash?: string }): Promise<Json> {
  const sessions = new Sessions(state);
  const s = sessions.get(arg.cursor.session_id);
  const fail = (t: Tagged): HttpError => apiError(t);
  if (!s) throw fail({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'not_found' } });
  const bodyBytes = ctx ? (contentLength(ctx) ?? 0) : 0;
  if (s.type === 'concurrent') {
    if (bodyBytes > 0) throw fail({ '.tag': 'concurrent_session_data_not_allowed' });
    if (!s.closed) throw fail({ '.tag': 'concurrent_session_not_closed' });
    if (arg.cursor.offset !== s.length) throw fail({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'incorrect_offset', correct_offset: s.length } });
    let covered = 0;
    for (const c of sessions.chunks(s.id)) {
      if (c.offset !== covered) break;
      covered += c.length;
    }
    if (covered !== s.length) throw fail({ '.tag': 'concurrent_session_missing_data' });
  } else {
    if (arg.cursor.offset !== s.length) throw fail({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'incorrect_offset', correct_offset: s.length } });
    if (!ctx && !s.closed) throw fail({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'not_closed' } });
    if (ctx) {
      if (s.closed && bodyBytes > 0) throw fail({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'closed' } });
      const fh = await openForWrite(sessionFile(state, s.id), 'r+');
      try {
        const r = await ctx.receiveBody(fh, s.length).catch((e: unknown) => Promise.reject(tooLarge(ctx, e)));
        if (arg.content_hash && arg.content_hash !== r.contentHash) {
          await fh.truncate(s.length);
          throw fail({ '.tag': 'content_hash_mismatch' });
        }
        s.length += r.size;
        state.db.prepare('UPDATE sessions SET length = ? WHERE id = ?').run(s.length, s.id);
      } finally {
        await fh.close();
      }
    }
  }
  const file = sessionFile(state, s.id);
  const contentHash = await hashFile(file);
  try {
    const metadata = await commitBytes(state, file, s.length, contentHash, arg.commit);
    sessions.drop(s.id);
    return metadata;
  } catch (e) {
    if (e instanceof NamespaceError) throw fail({ '.tag': 'path', path: e.error });
    throw e;
  }
}

export const transferRoutes: RouteTable = {
  'files/download': {
    async handle(state, ctx, arg: { path: string; rev?: string }) {
      let row;
      try {
        row = state.ns.resolve(arg.path);
      } catch (e) {
        return wrapNs(e, 'path', 'path');
      }
      if (row.is_folder) throw apiError({ '.tag': 'path', path: { '.tag': 'not_file' } });
      if (arg.rev !== undefined && arg.rev !== row.rev) throw apiError({ '.tag': 'path', path: { '.tag': 'not_found' } });
      const size = row.size ?? 0;
      const etag = `"${row.rev}"`;
      const meta = toMetadata(row, false);
      ctx.onResult(meta);
      const common = { 'dropbox-api-result': headerSafeJson(meta), etag, 'accept-ranges': 'bytes' };
      if (ctx.req.headers['if-none-match'] === etag) {
        ctx.res.writeHead(304, common).end();
        return undefined;
      }
      const range = parseRange(ctx.req.headers.range, size);
      if (range === 'unsatisfiable') {
        await ctx.sendJson(416, `Requested range not satisfiable (file size ${size})`, { 'content-range': `bytes */${size}` });
        return undefined;
      }
      const { start, end } = range ?? { start: 0, end: size - 1 };
      ctx.res.writeHead(range ? 206 : 200, {
        ...common,
        'content-type': 'application/octet-stream',
        'content-length': String(end - start + 1),
        ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
      });
      await ctx.sendFile(state.ns.blobPath(row.blob!), start, end);
      return undefined;
    },
  },
  'files/upload': {
    async handle(state, ctx, arg: CommitInfo & { content_hash?: string }) {
      const { file, size, contentHash } = await receiveToTemp(state, ctx);
      if (arg.content_hash && arg.content_hash !== contentHash) {
        await unlink(file);
        throw apiError({ '.tag': 'content_hash_mismatch' });
      }
      try {
        return await commitBytes(state, file, size, contentHash, arg);
      } catch (e) {
        await unlink(file).catch(() => undefined);
        if (e instanceof NamespaceError) throw apiError({ '.tag': 'path', reason: e.error, upload_session_id: '' });
        throw e;
      }
    },
  },
  'files/upload_session/start': {
    async handle(state, ctx, arg: { close: boolean; session_type?: { '.tag': 'sequential' | 'concurrent' }; content_hash?: string }) {
      const type = arg.session_type?.['.tag'] ?? 'sequential';
      if (type === 'concurrent') {
        if (arg.close) throw apiError({ '.tag': 'concurrent_session_close_not_allowed' });
        if ((contentLength(ctx) ?? 0) > 0) {
          ctx.drain();
          throw apiError({ '.tag': 'concurrent_session_data_not_allowed' });
        }
      }
      const id = `pid_upload_session:${randomBytes(18).toString('base64url')}`;
      const file = sessionFile(state, id);
      const fh = await openForWrite(file, 'w');
      let r;
      try {
        r = await ctx.receiveBody(fh, 0);
      } catch (e) {
        await unlink(file).catch(() => undefined);
        throw tooLarge(ctx, e);
      } finally {
        await fh.close();
      }
      if (type === 'concurrent' && r.size > 0) {
        await unlink(file);
        throw apiError({ '.tag': 'concurrent_session_data_not_allowed' });
      }
      if (arg.content_hash && arg.content_hash !== r.contentHash) {
        await unlink(file);
        throw apiError({ '.tag': 'content_hash_mismatch' });
      }
      state.db
        .prepare('INSERT INTO sessions (id, type, length, closed, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(id, type, r.size, arg.close ? 1 : 0, state.control.nowMs());
      return { session_id: id };
    },
  },
  'files/upload_session/append_v2': {
    async handle(state, ctx, arg: { cursor: { session_id: string; offset: number }; close: boolean; content_hash?: string }) {
      const sessions = new Sessions(state);
      const s = sessions.get(arg.cursor.session_id);
      const problem = lookupProblem(s, arg.cursor.offset, arg.close, contentLength(ctx), s ? sessions.chunks(s.id) : []);
      if (problem || !s) {
        ctx.drain();
        throw apiError(problem ?? { '.tag': 'not_found' });
      }
      const fh = await openForWrite(sessionFile(state, s.id), 'r+');
      let r;
      try {
        r = await ctx.receiveBody(fh, arg.cursor.offset);
      } catch (e) {
        if (s.type === 'sequential') await fh.truncate(s.length);
        throw tooLarge(ctx, e);
      } finally {
        await fh.close();
      }
      const undo = async (): Promise<void> => {
        if (s.type === 'sequential') await truncate(sessionFile(state, s.id), s.length);
      };
      if (arg.content_hash && arg.content_hash !== r.contentHash) {
        await undo();
        throw apiError({ '.tag': 'content_hash_mismatch' });
      }
      if (s.type === 'concurrent' && !arg.close && r.size % CONTENT_HASH_BLOCK_BYTES !== 0) {
        throw apiError({ '.tag': 'concurrent_session_invalid_data_size' });
      }
      const end = arg.cursor.offset + r.size;
      if (end > MAX_SESSION_BYTES) {
        await undo();
        throw apiError({ '.tag': 'too_large' });
      }
      state.db.transaction(() => {
        if (s.type === 'sequential') {
          state.db.prepare('UPDATE sessions SET length = ?, closed = ? WHERE id = ?').run(end, arg.close ? 1 : 0, s.id);
        } else {
          state.db.prepare('INSERT OR REPLACE INTO session_chunks (session_id, offset, length) VALUES (?, ?, ?)').run(s.id, arg.cursor.offset, r.size);
          if (arg.close) state.db.prepare('UPDATE sessions SET length = ?, closed = 1 WHERE id = ?').run(end, s.id);
        }
      })();
      return null;
    },
  },
  'files/upload_session/finish': {
    handle: (state, ctx, arg) => finishOne(state, ctx, arg),
  },
  'files/upload_session/finish_batch_v2': {
    async handle(state, _ctx, arg: { entries: Parameters<typeof finishOne>[2][] }) {
      const entries: Json[] = [];
      for (const entry of arg.entries) {
        try {
          const md = (await finishOne(state, undefined, entry)) as Record<string, Json>;
          entries.push({ '.tag': 'success', ...md });
        } catch (e) {
          if (!(e instanceof HttpError) || e.status !== 409) throw e;
          entries.push({ '.tag': 'failure', failure: (e.body as { error: Json }).error });
        }
      }
      return { entries };
    },
  },
};

/** Creates the folders the byte routes write into. */
export async function prepareTransferDirs(state: State): Promise<void> {
  await mkdir(tmpDir(state), { recursive: true });
  await mkdir(path.join(state.root, 'sessions'), { recursive: true });
  // Leftovers of a crash mid-upload are useless: no request can refer to them.
  for (const f of await readdir(tmpDir(state))) await unlink(path.join(tmpDir(state), f)).catch(() => undefined);
}
