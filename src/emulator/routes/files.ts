/**
 * Namespace routes: listing and change tracking (list_folder, continue, get_latest_cursor,
 * longpoll), get_metadata, and the mutations (delete_v2, move_v2, copy_v2, create_folder_v2).
 */
import { unlink } from 'node:fs/promises';
import { decodeCursor, encodeCursor, type Cursor } from '../cursor.js';
import { toMetadata, type Scope } from '../entries.js';
import { apiError, badRequest, NamespaceError, RelocationError, type Json } from '../errors.js';
import type { Namespace } from '../namespace.js';
import { ROOT_AS_SLASH, ROOT_UNSUPPORTED } from '../paths.js';
import type { RequestContext } from '../context.js';
import type { RouteTable, State } from './types.js';

const DEFAULT_PAGE = 2000;

/** Wraps a namespace failure in the route's union (e.g. `path`, `path_lookup`, `to`). */
export function wrapNs(e: unknown, lookupTag: string, writeTag: string, nested = true): never {
  if (e instanceof NamespaceError) {
    const tag = e.kind === 'lookup' ? lookupTag : writeTag;
    throw apiError(nested ? { '.tag': tag, [tag]: e.error } : e.error);
  }
  throw e;
}

/** Deletes blobs no longer referenced, after the transaction that released them. */
export function releaseBlobs(ns: Namespace, blobs: string[]): void {
  for (const b of blobs) unlink(ns.blobPath(b)).catch(() => undefined);
}

interface ListFolderArg {
  path: string;
  recursive: boolean;
  limit?: number;
}

function scopeOf(state: State, route: string, p: string): Scope & { display: string } {
  if (p === '/') throw badRequest(route, ROOT_AS_SLASH);
  if (p === '') return { pathLower: '', recursive: false, display: '' };
  try {
    const row = state.ns.resolve(p);
    if (!row.is_folder) throw apiError({ '.tag': 'path', path: { '.tag': 'not_folder' } });
    return { pathLower: row.path_lower, recursive: false, display: row.path_display };
  } catch (e) {
    return wrapNs(e, 'path', 'path');
  }
}

/** One page of a listing or of changes, and the cursor that follows it. */
function page(state: State, c: Cursor): { entries: Json[]; cursor: string; has_more: boolean } {
  const scope = { pathLower: c.p, recursive: c.r };
  if (c.a !== undefined) {
    const rows = state.ns.listPage(scope, c.a, c.l + 1);
    const more = rows.length > c.l;
    const shown = rows.slice(0, c.l);
    const next: Cursor = more ? { ...c, a: shown[shown.length - 1]!.path_lower } : { e: c.e, p: c.p, r: c.r, s: c.s, l: c.l };
    return { entries: shown.map((r) => toMetadata(r, true)), cursor: encodeCursor(next), has_more: more };
  }
  const rows = state.ns.changesSince(scope, c.s, c.l + 1);
  const more = rows.length > c.l;
  const shown = rows.slice(0, c.l);
  const last = shown[shown.length - 1];
  return { entries: shown.map((r) => r.entry), cursor: encodeCursor({ ...c, s: last ? last.seq : c.s }), has_more: more };
}

function checkCursor(state: State, route: string, text: string): Cursor {
  const c = decodeCursor(route, text);
  if (c.e !== state.epoch()) throw apiError({ '.tag': 'reset' });
  return c;
}

/** Waits until the scope has changes after `seq`, the client leaves, or the time is up. */
function waitForChange(state: State, ctx: RequestContext, scope: Scope, seq: number, waitMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (changed: boolean): void => {
      clearTimeout(timer);
      state.ns.off('change', onChange);
      ctx.res.off('close', onGone);
      resolve(changed);
    };
    const onChange = (): void => {
      if (state.ns.changesSince(scope, seq, 1).length > 0) finish(true);
    };
    const onGone = (): void => finish(false);
    const timer = setTimeout(() => finish(false), waitMs);
    state.ns.on('change', onChange);
    ctx.res.on('close', onGone);
  });
}

export const fileRoutes: RouteTable = {
  'files/list_folder': {
    handle(state, _ctx, arg: ListFolderArg) {
      const scope = scopeOf(state, 'files/list_folder', arg.path);
      const seq = state.ns.latestSeq();
      return page(state, { e: state.epoch(), p: scope.pathLower, r: arg.recursive, s: seq, a: '', l: arg.limit ?? DEFAULT_PAGE });
    },
  },
  'files/list_folder/continue': {
    handle(state, _ctx, arg: { cursor: string }) {
      return page(state, checkCursor(state, 'files/list_folder/continue', arg.cursor));
    },
  },
  'files/list_folder/get_latest_cursor': {
    handle(state, _ctx, arg: ListFolderArg) {
      const scope = scopeOf(state, 'files/list_folder/get_latest_cursor', arg.path);
      const c: Cursor = { e: state.epoch(), p: scope.pathLower, r: arg.recursive, s: state.ns.latestSeq(), l: arg.limit ?? DEFAULT_PAGE };
      return { cursor: encodeCursor(c) };
    },
  },
  'files/list_folder/longpoll': {
    async handle(state, ctx, arg: { cursor: string; timeout: number }) {
      const c = checkCursor(state, 'files/list_folder/longpoll', arg.cursor);
      const scope = { pathLower: c.p, recursive: c.r };
      const { longpollMaxWaitSec, longpollBackoffSec } = state.control.shaping;
      const waitSec = longpollMaxWaitSec > 0 ? Math.min(arg.timeout, longpollMaxWaitSec) : arg.timeout;
      // A cursor still paging an initial listing has, by definition, more to read.
      const changes = c.a !== undefined || state.ns.changesSince(scope, c.s, 1).length > 0 || (await waitForChange(state, ctx, scope, c.s, waitSec * 1000));
      return longpollBackoffSec > 0 ? { changes, backoff: longpollBackoffSec } : { changes };
    },
  },
  'files/get_metadata': {
    precheck(route, raw) {
      // "" fails the spec's pattern, but Dropbox says this instead.
      if (raw && typeof raw === 'object' && (raw as { path?: unknown }).path === '') throw badRequest(route, ROOT_UNSUPPORTED);
    },
    handle(state, _ctx, arg: { path: string; include_deleted: boolean }) {
      if (arg.path === '/') throw badRequest('files/get_metadata', ROOT_AS_SLASH);
      try {
        return toMetadata(state.ns.resolve(arg.path), true);
      } catch (e) {
        if (arg.include_deleted && e instanceof NamespaceError && e.error['.tag'] === 'not_found' && arg.path.startsWith('/')) {
          const deleted = state.ns.deletedEntry(arg.path);
          if (deleted) return deleted;
        }
        return wrapNs(e, 'path', 'path');
      }
    },
  },
  'files/delete_v2': {
    handle(state, _ctx, arg: { path: string; parent_rev?: string }) {
      if (arg.path === '/') throw badRequest('files/delete_v2', ROOT_AS_SLASH);
      try {
        const { entry, released } = state.ns.delete(arg.path, arg.parent_rev);
        releaseBlobs(state.ns, released);
        return { metadata: toMetadata(entry, true) };
      } catch (e) {
        return wrapNs(e, 'path_lookup', 'path_write');
      }
    },
  },
  'files/move_v2': relocation(false),
  'files/copy_v2': relocation(true),
  'files/create_folder_v2': {
    handle(state, _ctx, arg: { path: string; autorename: boolean }) {
      if (arg.path === '/') throw badRequest('files/create_folder_v2', ROOT_AS_SLASH);
      try {
        return { metadata: toMetadata(state.ns.createFolder(arg.path, arg.autorename), false) };
      } catch (e) {
        // CreateFolderError.path is a WriteError; a malformed path is a WriteError here too.
        if (e instanceof NamespaceError) throw apiError({ '.tag': 'path', path: e.error });
        throw e;
      }
    },
  },
};

function relocation(copy: boolean): RouteTable[string] {
  const route = copy ? 'files/copy_v2' : 'files/move_v2';
  return {
    handle(state, _ctx, arg: { from_path: string; to_path: string; autorename: boolean }) {
      if (arg.from_path === '/' || arg.to_path === '/') throw badRequest(route, ROOT_AS_SLASH);
      // The destination is checked first as a WriteError (`to`); the source as a LookupError.
      try {
        return { metadata: toMetadata(state.ns.relocate(arg.from_path, arg.to_path, arg.autorename, copy), true) };
      } catch (e) {
        if (e instanceof RelocationError) {
          throw apiError(e.inner ? { '.tag': e.tag, [e.tag]: e.inner } : { '.tag': e.tag });
        }
        return wrapNs(e, 'from_lookup', 'to');
      }
    },
  };
}
