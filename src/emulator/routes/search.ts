/**
 * Finding files: files/search (v1, deprecated), files/search_v2 and search/continue_v2 (file
 * and folder names only: the emulator indexes no content), and files/list_revisions (the
 * current revision and the kept older ones, newest first) and files/restore (an older
 * revision's bytes written again as the newest, at the path given).
 * A name matches when it contains every word of the query, ignoring case.
 */
import { link } from 'node:fs/promises';
import { apiError, badRequest, NamespaceError, type Json } from '../errors.js';
import { toMetadata, type EntryRow } from '../entries.js';
import { ROOT_AS_SLASH } from '../paths.js';
import { releaseBlobs, wrapNs } from './files.js';
import type { RouteTable, State } from './types.js';

const SCAN_PAGE = 1000;

function matcher(query: string): (name: string) => boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  return (name) => words.length > 0 && words.every((w) => name.toLowerCase().includes(w));
}

/** Every entry under `path` ("" = everything) whose name matches, in path order. */
function find(state: State, route: string, path: string, query: string): EntryRow[] {
  if (path === '/') throw badRequest(route, ROOT_AS_SLASH);
  let scope = '';
  if (path !== '') {
    try {
      const row = state.ns.resolve(path);
      if (!row.is_folder) throw apiError({ '.tag': 'path', path: { '.tag': 'not_folder' } });
      scope = row.path_lower;
    } catch (e) {
      return wrapNs(e, 'path', 'path');
    }
  }
  const match = matcher(query);
  const out: EntryRow[] = [];
  for (let after = ''; ; ) {
    const rows = state.ns.listPage({ pathLower: scope, recursive: true }, after, SCAN_PAGE);
    for (const r of rows) if (r.path_lower !== scope && match(r.name)) out.push(r);
    if (rows.length < SCAN_PAGE) return out;
    after = rows[rows.length - 1]!.path_lower;
  }
}

interface V2Cursor {
  q: string;
  p: string;
  n: number;
  o: number;
}

function v2Page(state: State, route: string, c: V2Cursor): Json {
  const hits = find(state, route, c.p, c.q);
  const shown = hits.slice(c.o, c.o + c.n);
  const more = hits.length > c.o + c.n;
  return {
    matches: shown.map((r) => ({ metadata: { '.tag': 'metadata', metadata: toMetadata(r, true) }, match_type: { '.tag': 'filename' } })),
    has_more: more,
    ...(more ? { cursor: Buffer.from(JSON.stringify({ ...c, o: c.o + c.n })).toString('base64url') } : {}),
  };
}

export const searchRoutes: RouteTable = {
  'files/search': {
    handle(state, _ctx, arg: { path: string; query: string; start: number; max_results: number; mode: { '.tag': string } }) {
      // deleted_filename would search deleted names; the emulator keeps none, so it finds nothing.
      const hits = arg.mode['.tag'] === 'deleted_filename' ? [] : find(state, 'files/search', arg.path, arg.query);
      const shown = hits.slice(arg.start, arg.start + arg.max_results);
      return {
        matches: shown.map((r) => ({ match_type: { '.tag': 'filename' }, metadata: toMetadata(r, true) })),
        more: hits.length > arg.start + arg.max_results,
        start: arg.start + shown.length,
      };
    },
  },
  'files/search_v2': {
    handle(state, _ctx, arg: { query: string; options?: { path?: string | null; max_results: number } | null }) {
      return v2Page(state, 'files/search_v2', { q: arg.query, p: arg.options?.path ?? '', n: arg.options?.max_results ?? 100, o: 0 });
    },
  },
  'files/search/continue_v2': {
    handle(state, _ctx, arg: { cursor: string }) {
      let c: V2Cursor;
      try {
        c = JSON.parse(Buffer.from(arg.cursor, 'base64url').toString()) as V2Cursor;
        if (typeof c.q !== 'string' || typeof c.p !== 'string' || !Number.isInteger(c.n) || !Number.isInteger(c.o)) throw new Error('bad');
      } catch {
        throw apiError({ '.tag': 'invalid_argument', invalid_argument: 'Invalid cursor' });
      }
      return v2Page(state, 'files/search/continue_v2', c);
    },
  },
  'files/list_revisions': {
    handle(state, _ctx, arg: { path: string; mode: { '.tag': string }; limit: number; before_rev?: string | null }) {
      if (arg.mode['.tag'] === 'id' && !arg.path.startsWith('id:')) throw apiError({ '.tag': 'path', path: { '.tag': 'malformed_path' } });
      let row: EntryRow;
      try {
        row = state.ns.resolve(arg.path);
      } catch (e) {
        return wrapNs(e, 'path', 'path');
      }
      if (row.is_folder) throw apiError({ '.tag': 'path', path: { '.tag': 'not_file' } });
      let all = [row, ...state.ns.revisions(row.id)];
      if (arg.before_rev) {
        const i = all.findIndex((r) => r.rev === arg.before_rev);
        if (i < 0) throw apiError({ '.tag': 'invalid_before_rev' });
        all = all.slice(i + 1);
      }
      return { is_deleted: false, entries: all.slice(0, arg.limit).map((r) => toMetadata(r, false)), has_more: all.length > arg.limit };
    },
  },
  'files/restore': {
    async handle(state, _ctx, arg: { path: string; rev: string }) {
      if (arg.path === '/') throw badRequest('files/restore', ROOT_AS_SLASH);
      let old: EntryRow;
      try {
        old = state.ns.resolve(`rev:${arg.rev}`);
      } catch {
        throw apiError({ '.tag': 'invalid_revision' });
      }
      if (!old.blob || old.size === null || old.content_hash === null) throw apiError({ '.tag': 'invalid_revision' });
      // Blobs are immutable and shared by hard links (as copies are).
      const blob = state.ns.newBlobName();
      await link(state.ns.blobPath(old.blob), state.ns.blobPath(blob));
      try {
        const r = state.ns.commitFile({ path: arg.path, mode: { '.tag': 'overwrite' }, autorename: false, strictConflict: false, blob, size: old.size, contentHash: old.content_hash });
        releaseBlobs(state.ns, r.wrote ? r.released : [blob]);
        return toMetadata(r.entry, false);
      } catch (e) {
        releaseBlobs(state.ns, [blob]);
        if (e instanceof NamespaceError) throw apiError(e.kind === 'lookup' ? { '.tag': 'path_lookup', path_lookup: e.error } : { '.tag': 'path_write', path_write: e.error });
        throw e;
      }
    },
  },
};
