/**
 * Deprecated routes still in Dropbox's specification, which older and current clients call:
 * files/copy, move, delete, create_folder (v1: the metadata unwrapped), upload_session/append
 * (v1: the cursor is the whole argument), upload_session/finish_batch (v1: an async job, polled
 * with finish_batch/check), sharing/create_shared_link (v1: returns the existing link when
 * there is one, which is why sregistry 0.2.39 falls back to it) and sharing/get_shared_links.
 * Each reuses the current route's code, so both versions behave alike.
 */
import { apiError, badRequest, type Json } from '../errors.js';
import type { EntryRow } from '../entries.js';
import { ROOT_AS_SLASH } from '../paths.js';
import type { RequestContext } from '../context.js';
import { checkJob, launchJob } from './batch.js';
import { fileRoutes, wrapNs } from './files.js';
import { createLink, entryById, linksOf, type LinkRow } from './sharing.js';
import { transferRoutes } from './transfer.js';
import type { RouteImpl, RouteTable, State } from './types.js';

/** Calls a current route's handler with an argument already decoded for it. */
function call(impl: RouteImpl | undefined, state: State, ctx: RequestContext, arg: unknown): Promise<Json | undefined> {
  if (!impl) throw new Error('emulator: missing route implementation');
  return Promise.resolve(impl.handle(state, ctx, arg as never));
}

const unwrapMetadata = (v2: string): RouteImpl => ({
  async handle(state, ctx, arg) {
    const r = (await call(fileRoutes[v2], state, ctx, arg)) as { metadata: Json };
    return r.metadata;
  },
});

/** PathLinkMetadata, the v1 shape of a link. */
function pathLink(link: LinkRow, row: EntryRow, withTag: boolean): Json {
  return { ...(withTag ? { '.tag': 'path' } : {}), url: link.url, visibility: { '.tag': 'public' }, path: row.path_display };
}

export const legacyRoutes: RouteTable = {
  // The alpha routes (preview, deprecated) are get_metadata and upload with property templates.
  'files/alpha/get_metadata': {
    handle: (state, ctx, arg) => call(fileRoutes['files/get_metadata'], state, ctx, arg),
    precheck: (route, raw) => fileRoutes['files/get_metadata']!.precheck?.(route, raw),
  },
  'files/alpha/upload': {
    handle: (state, ctx, arg) => call(transferRoutes['files/upload'], state, ctx, arg),
  },
  'files/copy': unwrapMetadata('files/copy_v2'),
  'files/move': unwrapMetadata('files/move_v2'),
  'files/delete': unwrapMetadata('files/delete_v2'),
  'files/create_folder': {
    async handle(state, ctx, arg) {
      const r = (await call(fileRoutes['files/create_folder_v2'], state, ctx, arg)) as { metadata: Json };
      return r.metadata;
    },
  },
  'files/upload_session/append': {
    handle(state, ctx, arg: { session_id: string; offset: number }) {
      return call(transferRoutes['files/upload_session/append_v2'], state, ctx, { cursor: arg, close: false });
    },
  },
  'files/upload_session/finish_batch': {
    async handle(state, ctx, arg) {
      return launchJob('finish_batch', (await call(transferRoutes['files/upload_session/finish_batch_v2'], state, ctx, arg)) as Json);
    },
  },
  'files/upload_session/finish_batch/check': {
    handle: (_state, _ctx, arg: { async_job_id: string }) => checkJob('finish_batch', arg.async_job_id),
  },
  'sharing/create_shared_link': {
    handle(state, _ctx, arg: { path: string }) {
      const route = 'sharing/create_shared_link';
      if (arg.path === '/') throw badRequest(route, ROOT_AS_SLASH);
      let row: EntryRow;
      try {
        row = state.ns.resolve(arg.path);
      } catch (e) {
        return wrapNs(e, 'path', 'path');
      }
      const link = linksOf(state, row.id)[0] ?? createLink(state, row);
      return pathLink(link, row, false);
    },
  },
  'sharing/get_shared_links': {
    handle(state, _ctx, arg: { path?: string | null }) {
      const all = state.db.prepare('SELECT url, file_id, link_id FROM shared_links ORDER BY created_at').all() as LinkRow[];
      const rows = all.flatMap((l) => {
        const row = entryById(state, l.file_id);
        return row ? [{ l, row }] : [];
      });
      if (arg.path === undefined || arg.path === null || arg.path === '') return { links: rows.map(({ l, row }) => pathLink(l, row, true)) };
      let target: EntryRow;
      try {
        target = state.ns.resolve(arg.path);
      } catch {
        throw apiError({ '.tag': 'path', path: arg.path });
      }
      // Links to the item and to the folders above it.
      const covers = (row: EntryRow): boolean => row.path_lower === target.path_lower || target.path_lower.startsWith(`${row.path_lower}/`);
      return { links: rows.filter(({ row }) => covers(row)).map(({ l, row }) => pathLink(l, row, true)) };
    },
  },
};
