/**
 * SDK conformance: shared links and the users/* routes (dropbox-api.md §5.7, §5.8), through SDK 10.34.
 */
import test, { type ExecutionContext } from 'ava';
import type { Dropbox } from 'dropbox';
import { startEmulator, sdk, sdkError } from '../helpers/emulator.js';
import { apiError, bytes, expect409, ID, REV, TS, up } from './sdk-common.js';

const PERMISSION_BOOLS = [
  'can_revoke',
  'can_set_expiry',
  'can_remove_expiry',
  'allow_download',
  'can_allow_download',
  'can_disallow_download',
  'allow_comments',
  'team_restricts_comments',
];

function checkLink(t: ExecutionContext, l: any, exp: { tag: 'file' | 'folder'; name: string; pathLower: string }): void {
  t.is(l['.tag'], exp.tag);
  t.is(typeof l.url, 'string');
  t.true(l.url.length > 0);
  t.is(l.name, exp.name);
  t.is(l.path_lower, exp.pathLower);
  if (l.id !== undefined) t.regex(String(l.id), ID);
  t.is(typeof l.link_permissions, 'object');
  for (const k of PERMISSION_BOOLS) t.is(typeof l.link_permissions?.[k], 'boolean', `link_permissions.${k}`);
  t.true(Array.isArray(l.link_permissions?.visibility_policies));
  if (exp.tag === 'file') {
    t.regex(String(l.client_modified), TS);
    t.regex(String(l.server_modified), TS);
    t.regex(String(l.rev), REV);
    t.is(typeof l.size, 'number');
  } else {
    for (const k of ['rev', 'size', 'client_modified', 'server_modified']) t.false(k in l, `folder link has ${k}`);
  }
}

const create = async (dbx: Dropbox, path: string): Promise<any> => (await dbx.sharingCreateSharedLinkWithSettings({ path })).result;
interface Link {
  url: string;
  [k: string]: any;
}
const list = async (dbx: Dropbox, arg: Record<string, unknown>): Promise<{ links: Link[]; has_more: boolean; cursor?: string }> =>
  (await dbx.sharingListSharedLinks(arg)).result;

test('create_shared_link_with_settings: file and folder links; second create → shared_link_already_exists nested twice', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const content = bytes(777, 5);
  const f = await up(dbx, '/Docs/Paper.pdf', content);
  const link = await create(dbx, '/docs/paper.PDF');
  checkLink(t, link, { tag: 'file', name: 'Paper.pdf', pathLower: '/docs/paper.pdf' });
  t.is(link.rev, f.rev);
  t.is(link.size, 777);
  if (link.id !== undefined) t.is(link.id, f.id);

  const dirLink = await create(dbx, '/Docs');
  checkLink(t, dirLink, { tag: 'folder', name: 'Docs', pathLower: '/docs' });
  t.not(dirLink.url, link.url);

  const env = await apiError(t, create(dbx, '/Docs/Paper.pdf'), 409, /^shared_link_already_exists\//);
  t.deepEqual(Object.keys(env.error).sort(), ['.tag', 'shared_link_already_exists']);
  t.is(env.error['.tag'], 'shared_link_already_exists');
  const inner = env.error.shared_link_already_exists;
  // Nullable: absent only when settings might not match; we asked with none, so it's there.
  t.deepEqual(Object.keys(inner ?? {}).sort(), ['.tag', 'metadata']);
  t.is(inner?.['.tag'], 'metadata');
  checkLink(t, inner?.metadata, { tag: 'file', name: 'Paper.pdf', pathLower: '/docs/paper.pdf' });
  t.is(inner?.metadata?.url, link.url);

  await expect409(
    t,
    dbx.sharingCreateSharedLinkWithSettings({ path: '/missing.txt' }),
    { '.tag': 'path', path: { '.tag': 'not_found' } },
    'path/not_found',
  );
});

test('shared_link_already_exists: error_summary is the tag chain (no fields from inside the link metadata)', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  await up(dbx, '/s.txt', 's');
  await create(dbx, '/s.txt');
  // §2: union tags joined by '/'; the chain ends at the polymorphic struct (its .tag at most).
  await apiError(t, create(dbx, '/s.txt'), 409, /^shared_link_already_exists\/metadata\/(file\/)?\.{0,3}$/);
});

test('create_shared_link_with_settings: a basic account may not set expiry or password → settings_error/not_authorized', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const acct = (await dbx.usersGetCurrentAccount()).result;
  if (acct.account_type['.tag'] !== 'basic') {
    t.pass('not a basic account: nothing to check');
    return;
  }
  await up(dbx, '/p.txt', 'p');
  await expect409(
    t,
    dbx.sharingCreateSharedLinkWithSettings({ path: '/p.txt', settings: { expires: '2040-01-01T00:00:00Z' } }),
    { '.tag': 'settings_error', settings_error: { '.tag': 'not_authorized' } },
    'settings_error/not_authorized',
  );
  await expect409(
    t,
    dbx.sharingCreateSharedLinkWithSettings({ path: '/p.txt', settings: { require_password: true, link_password: 'secret' } }),
    { '.tag': 'settings_error', settings_error: { '.tag': 'not_authorized' } },
    'settings_error/not_authorized',
  );
  t.deepEqual((await list(dbx, {})).links, []);
});

test('list_shared_links: by path includes ancestors unless direct_only; without path lists all', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  await up(dbx, '/d/f.txt', 'f');
  await up(dbx, '/other.txt', 'o');
  await up(dbx, '/d/unlinked.txt', 'u');
  const fileLink = await create(dbx, '/d/f.txt');
  const dirLink = await create(dbx, '/d');
  const otherLink = await create(dbx, '/other.txt');

  const byPath = await list(dbx, { path: '/D/F.txt' });
  t.is(byPath.has_more, false);
  t.is(byPath.cursor, undefined, 'cursor is only returned when no path was given');
  t.deepEqual(byPath.links.map((l) => l.url).sort(), [fileLink.url, dirLink.url].sort());
  for (const l of byPath.links) t.true(['file', 'folder'].includes(l['.tag']));
  const fileEntry = byPath.links.find((l) => l.url === fileLink.url);
  checkLink(t, fileEntry, { tag: 'file', name: 'f.txt', pathLower: '/d/f.txt' });

  const direct = await list(dbx, { path: '/d/f.txt', direct_only: true });
  t.deepEqual(direct.links.map((l) => l.url), [fileLink.url]);

  t.deepEqual((await list(dbx, { path: '/d/unlinked.txt', direct_only: true })).links, []);
  t.deepEqual((await list(dbx, { path: '/d/unlinked.txt' })).links.map((l) => l.url), [dirLink.url]);

  const all = await list(dbx, {});
  t.is(all.has_more, false);
  t.deepEqual(all.links.map((l) => l.url).sort(), [fileLink.url, dirLink.url, otherLink.url].sort());

  await expect409(t, dbx.sharingListSharedLinks({ path: '/nope' }), { '.tag': 'path', path: { '.tag': 'not_found' } }, 'path/not_found');
  const bogus = await sdkError(dbx.sharingListSharedLinks({ cursor: 'not-a-real-cursor' }));
  t.true([400, 409].includes(bogus.status), `status ${bogus.status}`);
  if (bogus.status === 409) t.deepEqual(bogus.error?.error, { '.tag': 'reset' });
});

test('revoke_shared_link: returns null, the link disappears, revoking again → shared_link_not_found', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  await up(dbx, '/r.txt', 'r');
  const link = await create(dbx, '/r.txt');
  const revoked: unknown = (await dbx.sharingRevokeSharedLink({ url: link.url })).result;
  t.is(revoked, null);
  t.deepEqual((await list(dbx, { path: '/r.txt' })).links, []);
  t.deepEqual((await list(dbx, {})).links, []);
  await expect409(t, dbx.sharingRevokeSharedLink({ url: link.url }), { '.tag': 'shared_link_not_found' }, 'shared_link_not_found');
  const malformed = await apiError(t, dbx.sharingRevokeSharedLink({ url: 'not a link at all' }), 409, /^shared_link_(malformed|not_found)\/\.{0,3}$/);
  t.true(['shared_link_malformed', 'shared_link_not_found'].includes(malformed.error?.['.tag']), JSON.stringify(malformed.error));

  const again = await create(dbx, '/r.txt');
  checkLink(t, again, { tag: 'file', name: 'r.txt', pathLower: '/r.txt' });
  t.deepEqual((await list(dbx, { path: '/r.txt' })).links.map((l) => l.url), [again.url]);
});

test('users/get_current_account: FullAccount fields; --display-name', async (t) => {
  const emu = await startEmulator(t, { args: ['--display-name', 'Vanessa S'] });
  const dbx = sdk(emu);
  const a = (await dbx.usersGetCurrentAccount()).result as any;
  t.regex(String(a.account_id), /^dbid:/);
  t.is(String(a.account_id).length, 40);
  for (const k of ['given_name', 'surname', 'familiar_name', 'display_name', 'abbreviated_name']) t.is(typeof a.name?.[k], 'string', `name.${k}`);
  t.is(a.name?.display_name, 'Vanessa S');
  t.regex(String(a.email), /^[^@\s]+@[^@\s]+$/);
  t.is(typeof a.email_verified, 'boolean');
  t.is(a.disabled, false);
  t.is(typeof a.locale, 'string');
  t.is(typeof a.referral_link, 'string');
  t.is(typeof a.is_paired, 'boolean');
  t.true(['basic', 'pro', 'business'].includes(a.account_type?.['.tag']), JSON.stringify(a.account_type));
  t.true(['user', 'team'].includes(a.root_info?.['.tag']), JSON.stringify(a.root_info));
  t.is(typeof a.root_info?.root_namespace_id, 'string');
  t.is(typeof a.root_info?.home_namespace_id, 'string');

  const again = (await dbx.usersGetCurrentAccount()).result as any;
  t.is(again.account_id, a.account_id);

  const plain = await startEmulator(t);
  const d = (await sdk(plain).usersGetCurrentAccount()).result as any;
  t.is(d.name?.display_name, 'Sreg Emulator');
});

test('users/get_space_usage: used is the sum of the current files; individual allocation', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const u0 = (await dbx.usersGetSpaceUsage()).result as any;
  t.is(u0.used, 0);
  t.is(u0.allocation?.['.tag'], 'individual');
  t.is(u0.allocation?.allocated, 2e12, 'default --quota 2T = 2·10¹² bytes');

  await up(dbx, '/a.bin', bytes(100, 1));
  await up(dbx, '/d/b.bin', bytes(2000, 2));
  await up(dbx, '/d/e/c.bin', bytes(12345, 3));
  t.is(((await dbx.usersGetSpaceUsage()).result as any).used, 100 + 2000 + 12345);
  await dbx.filesDeleteV2({ path: '/d/e' });
  const u = (await dbx.usersGetSpaceUsage()).result as any;
  t.is(u.used, 2100);
  t.deepEqual(Object.keys(u.allocation).sort(), ['.tag', 'allocated']);
});

test('--quota: allocation reported; an upload past it fails with path/insufficient_space', async (t) => {
  const emu = await startEmulator(t, { args: ['--quota', '5M'] });
  const dbx = sdk(emu);
  t.is(((await dbx.usersGetSpaceUsage()).result as any).allocation?.allocated, 5_000_000);
  await up(dbx, '/one.bin', bytes(3_000_000, 1));
  const env = await apiError(t, up(dbx, '/two.bin', bytes(3_000_000, 2)), 409, 'path/insufficient_space');
  t.is(env.error['.tag'], 'path');
  t.deepEqual(env.error.reason, { '.tag': 'insufficient_space' });
  t.is(typeof env.error.upload_session_id, 'string');
  await expect409(t, dbx.filesGetMetadata({ path: '/two.bin' }), { '.tag': 'path', path: { '.tag': 'not_found' } }, 'path/not_found');
  t.is(((await dbx.usersGetSpaceUsage()).result as any).used, 3_000_000);
});
