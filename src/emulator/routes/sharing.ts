/**
 * Shared links (create_shared_link_with_settings, list_shared_links, revoke_shared_link) and
 * the account routes (users/get_current_account, users/get_space_usage, auth/token/revoke).
 * A link belongs to a file id, so it follows the file through moves and dies with it.
 */
import { randomBytes } from 'node:crypto';
import { apiError, badRequest, NamespaceError, type Json } from '../errors.js';
import type { EntryRow } from '../namespace.js';
import { PathPattern, ROOT_AS_SLASH } from '../paths.js';
import { bool, opt, req, str, struct, timestamp, union } from '../stone.js';
import { wrapNs } from './files.js';
import type { RouteTable, State } from './types.js';

interface LinkRow {
  url: string;
  file_id: string;
  link_id: string;
}

const settingsType = struct({
  require_password: opt(bool),
  link_password: opt(str()),
  expires: opt(timestamp),
  audience: opt(union({ public: null, team: null, no_one: null, password: null, members: null })),
  access: opt(union({ viewer: null, editor: null, max: null, default: null })),
  requested_visibility: opt(union({ public: null, team_only: null, password: null })),
  allow_download: opt(bool),
});

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
    preview_type: 'file',
  };
  if (row.is_folder) return base;
  return { ...base, client_modified: row.client_modified, server_modified: row.server_modified, rev: row.rev, size: row.size };
}

function linksOf(state: State, fileId: string): LinkRow[] {
  return state.db.prepare('SELECT url, file_id, link_id FROM shared_links WHERE file_id = ? ORDER BY created_at').all(fileId) as LinkRow[];
}

function entryById(state: State, id: string): EntryRow | undefined {
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
    host: 'api',
    style: 'rpc',
    auth: true,
    arg: struct({ path: req(PathPattern.readPath), settings: opt(settingsType) }),
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
      const key = randomBytes(10).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, 'x');
      const link: LinkRow = {
        url: `https://www.dropbox.com/scl/fi/${key}/${encodeURIComponent(row.name)}?rlkey=${randomBytes(12).toString('hex')}&dl=0`,
        file_id: row.id,
        link_id: `id:${randomBytes(16).toString('base64url')}`,
      };
      state.db.prepare('INSERT INTO shared_links (url, file_id, link_id, created_at) VALUES (?, ?, ?, ?)').run(link.url, link.file_id, link.link_id, state.control.nowMs());
      return linkMetadata(link, row);
    },
  },
  'sharing/list_shared_links': {
    host: 'api',
    style: 'rpc',
    auth: true,
    arg: struct({ path: opt(PathPattern.readPath), cursor: opt(str()), direct_only: opt(bool) }),
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
    host: 'api',
    style: 'rpc',
    auth: true,
    arg: struct({ url: req(str()) }),
    handle(state, _ctx, arg: { url: string }) {
      if (!/^https:\/\/www\.dropbox\.com\/(s|scl)\//.test(arg.url)) throw apiError({ '.tag': 'shared_link_malformed' });
      const r = state.db.prepare('DELETE FROM shared_links WHERE url = ?').run(arg.url);
      if (r.changes === 0) throw apiError({ '.tag': 'shared_link_not_found' });
      return null;
    },
  },
  'users/get_current_account': {
    host: 'api',
    style: 'rpc',
    auth: true,
    arg: null,
    handle(state) {
      const { accountId, displayName, email } = state.account;
      const [given, ...rest] = displayName.split(' ');
      const surname = rest.join(' ');
      return {
        account_id: accountId,
        name: {
          given_name: given ?? displayName,
          surname,
          familiar_name: given ?? displayName,
          display_name: displayName,
          abbreviated_name: displayName.split(' ').map((w) => w[0] ?? '').join('').toUpperCase(),
        },
        email,
        email_verified: true,
        disabled: false,
        locale: 'en',
        referral_link: 'https://www.dropbox.com/referrals/sreg-emulator',
        is_paired: false,
        account_type: { '.tag': 'basic' },
        root_info: { '.tag': 'user', root_namespace_id: '3235641', home_namespace_id: '3235641' },
        country: 'US',
      };
    },
  },
  'users/get_space_usage': {
    host: 'api',
    style: 'rpc',
    auth: true,
    arg: null,
    handle(state) {
      return { used: state.ns.usedBytes(), allocation: { '.tag': 'individual', allocated: state.quotaBytes } };
    },
  },
  'auth/token/revoke': {
    host: 'api',
    style: 'rpc',
    auth: true,
    arg: null,
    handle(state, ctx) {
      state.auth.revoke(ctx.tokenSha);
      return null;
    },
  },
};
