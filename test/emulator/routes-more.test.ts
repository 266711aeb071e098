/**
 * The routes added to follow the specification (issue 9): deprecated v1 routes, batches with
 * their async checks, search v1/v2, list_revisions, account and check routes, alpha routes.
 * Every answer here is also checked against the spec's types by the emulator itself
 * (SREG_EMULATOR_CHECK_RESULTS=1 in the tests' helper).
 */
import test from 'ava';
import { startEmulator, type Emulator } from '../helpers/emulator.js';

async function rpc(emu: Emulator, route: string, arg: unknown): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(`${emu.url}/2/${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${emu.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(arg),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

async function put(emu: Emulator, path: string, data: string): Promise<any> {
  const res = await fetch(`${emu.url}/2/files/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${emu.token}`, 'content-type': 'application/octet-stream', 'dropbox-api-arg': JSON.stringify({ path, mode: 'overwrite' }) },
    body: data,
  });
  if (res.status !== 200) throw new Error(`upload ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

const ok = async (emu: Emulator, route: string, arg: unknown): Promise<any> => {
  const r = await rpc(emu, route, arg);
  if (r.status !== 200) throw new Error(`${route}: ${r.status} ${r.text}`);
  return r.body;
};

test('include_restorable_info (sent by Python SDK 12.2) is accepted by list_folder and get_latest_cursor; a wrong type is refused naming it', async (t) => {
  const emu = await startEmulator(t);
  await put(emu, '/a.txt', 'a');
  const listed = await ok(emu, 'files/list_folder', { path: '', include_restorable_info: false });
  t.deepEqual(listed.entries.map((e: { name: string }) => e.name), ['a.txt']);
  t.truthy((await ok(emu, 'files/list_folder/get_latest_cursor', { path: '', include_restorable_info: true })).cursor);
  const bad = await rpc(emu, 'files/list_folder', { path: '', include_restorable_info: 'no' });
  t.is(bad.status, 400);
  t.is(bad.text, 'Error in call to API function "files/list_folder": request body: include_restorable_info: expected boolean, got string');
  const range = await rpc(emu, 'files/list_folder', { path: '', limit: 2001 });
  t.is(range.text, 'Error in call to API function "files/list_folder": request body: limit: 2001 is not less than or equal to 2000');
});

test('v1 copy/move/delete/create_folder answer the metadata itself; errors are the v2 unions', async (t) => {
  const emu = await startEmulator(t);
  await put(emu, '/d/a.txt', 'a');
  const folder = await ok(emu, 'files/create_folder', { path: '/e' });
  t.deepEqual(Object.keys(folder).sort(), ['id', 'name', 'path_display', 'path_lower']);
  const c = await ok(emu, 'files/copy', { from_path: '/d/a.txt', to_path: '/e/b.txt' });
  t.is(c['.tag'], 'file');
  t.is(c.path_display, '/e/b.txt');
  t.is((await ok(emu, 'files/move', { from_path: '/e/b.txt', to_path: '/e/c.txt' })).name, 'c.txt');
  t.is((await ok(emu, 'files/delete', { path: '/e/c.txt' })).name, 'c.txt');
  const missing = await rpc(emu, 'files/delete', { path: '/e/c.txt' });
  t.is(missing.status, 409);
  t.deepEqual(missing.body.error, { '.tag': 'path_lookup', path_lookup: { '.tag': 'not_found' } });
});

test('batches: delete_batch, copy_batch_v2, move_batch_v2, copy_batch (v1), create_folder_batch launch jobs whose checks return each entry', async (t) => {
  const emu = await startEmulator(t);
  await put(emu, '/b/one.txt', '1');
  await put(emu, '/b/two.txt', '2');
  const copy = await ok(emu, 'files/copy_batch_v2', { entries: [{ from_path: '/b/one.txt', to_path: '/c/one.txt' }, { from_path: '/b/nope', to_path: '/c/nope' }] });
  t.is(copy['.tag'], 'async_job_id');
  const copied = await ok(emu, 'files/copy_batch/check_v2', { async_job_id: copy.async_job_id });
  t.is(copied['.tag'], 'complete');
  t.is(copied.entries[0].success.path_display, '/c/one.txt');
  t.deepEqual(copied.entries[1].failure, { '.tag': 'relocation_error', relocation_error: { '.tag': 'from_lookup', from_lookup: { '.tag': 'not_found' } } });
  const move = await ok(emu, 'files/move_batch_v2', { entries: [{ from_path: '/c/one.txt', to_path: '/m/one.txt' }] });
  t.is((await ok(emu, 'files/move_batch/check_v2', { async_job_id: move.async_job_id })).entries[0].success.path_display, '/m/one.txt');
  const v1 = await ok(emu, 'files/copy_batch', { entries: [{ from_path: '/b/two.txt', to_path: '/v1/two.txt' }] });
  t.is((await ok(emu, 'files/copy_batch/check', { async_job_id: v1.async_job_id })).entries[0].metadata.path_display, '/v1/two.txt');
  const v1fail = await ok(emu, 'files/copy_batch', { entries: [{ from_path: '/b/nope', to_path: '/v1/x' }] });
  const failed = await ok(emu, 'files/copy_batch/check', { async_job_id: v1fail.async_job_id });
  t.deepEqual(failed, { '.tag': 'failed', failed: { '.tag': 'from_lookup', from_lookup: { '.tag': 'not_found' } } });
  const del = await ok(emu, 'files/delete_batch', { entries: [{ path: '/b/one.txt' }, { path: '/b/gone' }] });
  const deleted = await ok(emu, 'files/delete_batch/check', { async_job_id: del.async_job_id });
  t.is(deleted.entries[0]['.tag'], 'success');
  t.is(deleted.entries[0].metadata.name, 'one.txt');
  t.deepEqual(deleted.entries[1].failure, { '.tag': 'path_lookup', path_lookup: { '.tag': 'not_found' } });
  const folders = await ok(emu, 'files/create_folder_batch', { paths: ['/f1', '//f2'] });
  t.deepEqual(folders.entries.map((e: { metadata: { path_display: string } }) => e.metadata.path_display), ['/f1', '/f2'], 'a leading // is one / in a paths list too');
  const asyncFolders = await ok(emu, 'files/create_folder_batch', { paths: ['/f1'], force_async: true });
  const checked = await ok(emu, 'files/create_folder_batch/check', { async_job_id: asyncFolders.async_job_id });
  t.deepEqual(checked.entries[0].failure, { '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } });
  const unknown = await rpc(emu, 'files/delete_batch/check', { async_job_id: copy.async_job_id });
  t.deepEqual(unknown.body.error, { '.tag': 'invalid_async_job_id' }, 'a job id of another kind is not this route\'s');
});

test('search (v1) and search_v2 + continue_v2 find names containing every word; list_revisions lists current then older; restore brings one back', async (t) => {
  const emu = await startEmulator(t);
  await put(emu, '/s/Red Image.sif', '1');
  await put(emu, '/s/red.txt', '2');
  await put(emu, '/s/blue image.sif', '3');
  const v1 = await ok(emu, 'files/search', { path: '/s', query: 'image red' });
  t.deepEqual(v1.matches.map((m: { metadata: { name: string } }) => m.metadata.name), ['Red Image.sif']);
  t.is(v1.more, false);
  const paged = await ok(emu, 'files/search', { path: '', query: 'image', max_results: 1 });
  t.is(paged.matches.length, 1);
  t.true(paged.more);
  t.is(paged.start, 1);
  const v2 = await ok(emu, 'files/search_v2', { query: 'image', options: { max_results: 1 } });
  t.is(v2.matches[0].metadata['.tag'], 'metadata');
  t.is(v2.matches[0].metadata.metadata.name, 'blue image.sif');
  t.true(v2.has_more);
  const next = await ok(emu, 'files/search/continue_v2', { cursor: v2.cursor });
  t.deepEqual(next.matches.map((m: { metadata: { metadata: { name: string } } }) => m.metadata.metadata.name), ['Red Image.sif']);
  t.false(next.has_more);
  const notFolder = await rpc(emu, 'files/search', { path: '/s/red.txt', query: 'x' });
  t.deepEqual(notFolder.body.error, { '.tag': 'path', path: { '.tag': 'not_folder' } });

  const first = await put(emu, '/r.txt', 'one');
  const second = await put(emu, '/r.txt', 'two');
  const revs = await ok(emu, 'files/list_revisions', { path: '/r.txt' });
  t.deepEqual(revs.entries.map((e: { rev: string }) => e.rev), [second.rev, first.rev]);
  t.false(revs.is_deleted);
  t.deepEqual((await ok(emu, 'files/list_revisions', { path: '/r.txt', limit: 1 })).has_more, true);

  const restored = await ok(emu, 'files/restore', { path: '/r.txt', rev: first.rev });
  t.is(restored.content_hash, first.content_hash);
  t.not(restored.rev, second.rev);
  const bytes = await fetch(`${emu.url}/2/files/download`, { method: 'POST', headers: { authorization: `Bearer ${emu.token}`, 'dropbox-api-arg': JSON.stringify({ path: '/r.txt' }) } });
  t.is(await bytes.text(), 'one');
  t.deepEqual((await rpc(emu, 'files/restore', { path: '/r.txt', rev: 'abcdef0123456' })).body.error, { '.tag': 'invalid_revision' });
});

test('users/get_account(_batch), features/get_values, check/user, alpha/get_metadata, get_shared_link_metadata, modify_shared_link_settings', async (t) => {
  const emu = await startEmulator(t);
  const me = await ok(emu, 'users/get_current_account', null);
  t.is((await ok(emu, 'users/get_account', { account_id: me.account_id })).email, me.email);
  const other = `dbid:${'A'.repeat(35)}`;
  t.deepEqual((await rpc(emu, 'users/get_account', { account_id: other })).body.error, { '.tag': 'no_account' });
  t.deepEqual((await rpc(emu, 'users/get_account_batch', { account_ids: [me.account_id, other] })).body.error, { '.tag': 'no_account', no_account: other });
  const features = await ok(emu, 'users/features/get_values', { features: ['file_locking'] });
  t.deepEqual(features.values, [{ '.tag': 'file_locking', file_locking: { '.tag': 'enabled', enabled: false } }]);
  t.deepEqual(await ok(emu, 'check/user', { query: 'ping' }), { result: 'ping' });
  await put(emu, '/x.txt', 'x');
  t.is((await ok(emu, 'files/alpha/get_metadata', { path: '/x.txt' })).name, 'x.txt');
  const link = await ok(emu, 'sharing/create_shared_link_with_settings', { path: '/x.txt' });
  t.is((await ok(emu, 'sharing/get_shared_link_metadata', { url: link.url })).name, 'x.txt');
  t.deepEqual((await rpc(emu, 'sharing/get_shared_link_metadata', { url: `${link.url}x` })).body.error, { '.tag': 'shared_link_not_found' });
  t.is((await ok(emu, 'sharing/modify_shared_link_settings', { url: link.url, settings: { audience: 'public' } })).url, link.url);
  const expiry = await rpc(emu, 'sharing/modify_shared_link_settings', { url: link.url, settings: { expires: '2030-01-01T00:00:00Z' } });
  t.deepEqual(expiry.body.error, { '.tag': 'settings_error', settings_error: { '.tag': 'not_authorized' } }, 'a basic account sets no expiry');
});
