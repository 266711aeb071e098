/**
 * Shared links (create_shared_link_with_settings, list_shared_links, revoke_shared_link; the
 * deprecated create_shared_link and get_shared_links are in legacy.ts).
 * A link belongs to a file id, so it follows the file through moves and dies with it.
 */
import { randomBytes } from 'node:crypto';
import { apiError, badRequest, NamespaceError, type Json } from '../errors.js';
import type { EntryRow } from '../entries.js';
import { ROOT_AS_SLASH } from '../paths.js';
import { wrapNs } from './files.js';
import type { RouteTable, State } from './types.js';

export interface LinkRow {
  url: string;
  file_id: string;
  link_id: string;
}

function linkMetadata(link: LinkRow, row: EntryRow): Json {
  const base: Record<string, Json> = {
    '.tag': row.is_folder ? 'folder' : 'file',
    url: link.url,
    id: row.id,
    name: row.name,
    path_lower: row.path_lower,
    link_permissions: {
      can_revoke: true,
      visibility_policies: [
        { policy: { '.tag': 'public' }, resolved_policy: { '.tag': 'public' }, allowed: true },
        { policy: { '.tag': 'password' }, resolved_policy: { '.tag': 'password' }, allowed: false, disallowed_reason: { '.tag': 'user_account_type' } },
      ],
      can_set_expiry: false,
      can_remove_expiry: false,
      allow_download: true,
      can_allow_download: true,
      can_disallow_download: false,
      allow_comments: true,
      team_restricts_comments: false,
      resolved_visibility: { '.tag': 'public' },
      requested_visibility: { '.tag': 'public' },
      revoke_failure_reason: null,
    },
  };
  if (row.is_folder) return base;
  return { ...base, client_modified: row.client_modified, server_modified: row.server_modified, rev: row.rev, size: row.size };
}

/** Makes a new public link to the item. */
export function createLink(state: State, row: EntryRow): LinkRow {
  const key = randomBytes(10).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, 'x');
  const link: LinkRow = {
    url: `https://www.dropbox.com/scl/fi/${key}/${encodeURIComponent(row.name)}?rlkey=${randomBytes(12).toString('hex')}&dl=0`,
    file_id: row.id,
    link_id: `id:${randomBytes(16).toString('base64url')}`,
  };
  state.db.prepare('INSERT INTO shared_links (url, file_id, link_id, created_at) VALUES (?, ?, ?, ?)').run(link.url, link.file_id, link.link_id, state.control.nowMs());
  return link;
}

export function linksOf(state: State, fileId: string): LinkRow[] {
  return state.db.prepare('SELECT url, file_id, link_id FROM shared_links WHERE file_id = ? ORDER BY created_at').all(fileId) as LinkRow[];
}

export function entryById(state: State, id: string): EntryRow | undefined {
  try {
    return state.ns.resolve(id);
  } catch {
    return undefined;
  }
}

/** Links whose item is gone are dropped when the item is deleted (see Namespace 'deleted'). */
export function forgetLinks(state: State, ids: string[]): void {
  const del = state.db.prepare('DELETE FROM shared_links WHERE file_id = ?');
  state.db.transaction(() => ids.forEach((id) => del.run(id)))();
}

export const sharingRoutes: RouteTable = {
  'sharing/create_shared_link_with_settings': {
    handle(state, _ctx, arg: { path: string; settings?: Record<string, unknown> }) {
      if (arg.path === '/') throw badRequest('sharing/create_shared_link_with_settings', ROOT_AS_SLASH);
      let row: EntryRow;
      try {
        row = state.ns.resolve(arg.path);
      } catch (e) {
        return wrapNs(e, 'path', 'path');
      }
      const settings = arg.settings ?? {};
      // A basic account cannot set passwords or expiry.
      if (settings.require_password || settings.link_password !== undefined || settings.expires !== undefined) {
        throw apiError({ '.tag': 'settings_error', settings_error: { '.tag': 'not_authorized' } });
      }
      const existing = linksOf(state, row.id)[0];
      if (existing) {
        // The metadata is left out when the requested settings might not match the link's.
        const inner = Object.keys(settings).length === 0 ? { '.tag': 'metadata', metadata: linkMetadata(existing, row) } : null;
        throw apiError(
          inner
            ? { '.tag': 'shared_link_already_exists', shared_link_already_exists: inner }
            : { '.tag': 'shared_link_already_exists' },
        );
      }
      return linkMetadata(createLink(state, row), row);
    },
  },
  'sharing/list_shared_links': {
    handle(state, _ctx, arg: { path?: string; cursor?: string; direct_only?: boolean }) {
      if (arg.cursor !== undefined && arg.cursor !== 'AAAA') throw apiError({ '.tag': 'reset' });
      if (arg.path === undefined) {
        const all = state.db.prepare('SELECT url, file_id, link_id FROM shared_links ORDER BY created_at').all() as LinkRow[];
        const links = all.flatMap((l) => {
          const row = entryById(state, l.file_id);
          return row ? [linkMetadata(l, row)] : [];
        });
        return { links, has_more: false, cursor: 'AAAA' };
      }
      if (arg.path === '/' || arg.path === '') throw badRequest('sharing/list_shared_links', ROOT_AS_SLASH);
      let row: EntryRow;
      try {
        row = state.ns.resolve(arg.path);
      } catch (e) {
        if (e instanceof NamespaceError) throw apiError({ '.tag': 'path', path: e.error });
        throw e;
      }
      const chain: EntryRow[] = [row];
      if (!arg.direct_only) {
        for (let p = row.parent_lower; p !== ''; p = state.ns.get(p)?.parent_lower ?? '') {
          const ancestor = state.ns.get(p);
          if (ancestor) chain.push(ancestor);
        }
      }
      return { links: chain.flatMap((r) => linksOf(state, r.id).map((l) => linkMetadata(l, r))), has_more: false };
    },
  },
  'sharing/revoke_shared_link': {
    handle(state, _ctx, arg: { url: string }) {
      if (!/^https:\/\/www\.dropbox\.com\/(s|scl)\//.test(arg.url)) throw apiError({ '.tag': 'shared_link_malformed' });
      const r = state.db.prepare('DELETE FROM shared_links WHERE url = ?').run(arg.url);
      if (r.changes === 0) throw apiError({ '.tag': 'shared_link_not_found' });
      return null;
    },
  },
  'sharing/get_shared_link_metadata': {
    handle(state, _ctx, arg: { url: string; path?: string | null }) {
      const link = state.db.prepare('SELECT url, file_id, link_id FROM shared_links WHERE url = ?').get(arg.url) as LinkRow | undefined;
      const row = link && entryById(state, link.file_id);
      if (!link || !row) throw apiError({ '.tag': 'shared_link_not_found' });
      // A path inside a folder link names an item below the linked folder.
      if (arg.path) {
        if (!row.is_folder) throw apiError({ '.tag': 'shared_link_not_found' });
        const inner = state.ns.get(`${row.path_lower}${arg.path.toLowerCase()}`);
        if (!inner) throw apiError({ '.tag': 'shared_link_not_found' });
        return linkMetadata(link, inner);
      }
      return linkMetadata(link, row);
    },
  },
  'sharing/modify_shared_link_settings': {
    handle(state, _ctx, arg: { url: string; settings: Record<string, unknown> }) {
      const link = state.db.prepare('SELECT url, file_id, link_id FROM shared_links WHERE url = ?').get(arg.url) as LinkRow | undefined;
      const row = link && entryById(state, link.file_id);
      if (!link || !row) throw apiError({ '.tag': 'shared_link_not_found' });
      // A basic account cannot set passwords or expiry; other settings are what links have already.
      const s = arg.settings;
      if (s.require_password || s.link_password !== undefined || s.expires !== undefined) {
        throw apiError({ '.tag': 'settings_error', settings_error: { '.tag': 'not_authorized' } });
      }
      return linkMetadata(link, row);
    },
  },
};
