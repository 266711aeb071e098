/**
 * SDK conformance: downloads (Range), uploads and the WriteMode conflict matrix, upload sessions
 * (sequential, concurrent, finish_batch_v2) — dropbox-api.md §5.3–§5.5, §6, through SDK 10.34.
 */
import test, { type ExecutionContext } from 'ava';
import type { Dropbox } from 'dropbox';
import { contentHash } from '../../src/dropbox/content-hash.js';
import { startEmulator, sdk, sdkError } from '../helpers/emulator.js';
import { apiError, bytes, checkFile, down, expect400, expect409, listAll, up } from './sdk-common.js';

const MiB = 1024 * 1024;
const CONFLICT_FILE = { '.tag': 'conflict', conflict: { '.tag': 'file' } };
const CONFLICT_FOLDER = { '.tag': 'conflict', conflict: { '.tag': 'folder' } };

/** §5.4: 409 `path` is UploadWriteFailed, a struct inlined next to the tag. */
async function expectUploadWriteFailed(t: ExecutionContext, p: Promise<unknown>, reason: unknown, chain: string): Promise<void> {
  const env = await apiError(t, p, 409, chain);
  t.deepEqual(Object.keys(env.error ?? {}).sort(), ['.tag', 'reason', 'upload_session_id']);
  t.is(env.error?.['.tag'], 'path');
  t.deepEqual(env.error?.reason, reason);
  t.is(typeof env.error?.upload_session_id, 'string');
}

async function meta(dbx: Dropbox, path: string): Promise<any> {
  return (await dbx.filesGetMetadata({ path })).result;
}

const start = async (dbx: Dropbox, arg: Record<string, unknown>): Promise<string> =>
  (await dbx.filesUploadSessionStart(arg)).result.session_id;
const append = async (dbx: Dropbox, sessionId: string, offset: number, contents?: Buffer, extra: Record<string, unknown> = {}): Promise<unknown> =>
  (await dbx.filesUploadSessionAppendV2({ cursor: { session_id: sessionId, offset }, contents, ...extra })).result;

test('upload: untagged FileMetadata with exact formats; download returns the bytes and the same metadata', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const content = bytes(1000, 7);
  const r = await up(dbx, '/Docs/Report.bin', content, { client_modified: '2020-01-02T03:04:05Z' });
  checkFile(t, r, { tagged: false, path: '/Docs/Report.bin', content });
  t.is(r.client_modified, '2020-01-02T03:04:05Z');
  t.true(Math.abs(Date.parse(r.server_modified) - Date.now()) < 120_000, `server_modified ${r.server_modified}`);

  const d = await down(dbx, '/docs/REPORT.bin');
  t.is(d.status, 200);
  t.true(d.bytes.equals(content));
  checkFile(t, d.meta, { tagged: false, path: '/Docs/Report.bin', content });
  t.like(d.meta, { id: r.id, rev: r.rev, client_modified: r.client_modified, server_modified: r.server_modified });
  t.regex(String(d.headers.get('content-type')), /^application\/octet-stream\b/);

  const empty = await up(dbx, '/empty.txt', '');
  checkFile(t, empty, { tagged: false, path: '/empty.txt', content: Buffer.alloc(0) });
  t.is(empty.content_hash, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.is((await down(dbx, '/empty.txt')).bytes.length, 0);
  const now = await up(dbx, '/now.txt', 'n');
  t.true(Math.abs(Date.parse(now.client_modified) - Date.now()) < 120_000, 'client_modified defaults to upload time');
});

test('upload: bad arguments are 400 plain text (ms timestamp, unknown field, relative path, bare "update")', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  await expect400(t, up(dbx, '/a.txt', 'a', { client_modified: '2020-01-02T03:04:05.123Z' }));
  await expect400(t, up(dbx, '/a.txt', 'a', { colour: 'blue' }));
  await expect400(t, up(dbx, 'a.txt', 'a'));
  await expect400(t, up(dbx, '/a.txt', 'a', { mode: 'update' }));
  await expect400(t, up(dbx, '/a.txt', 'a', { content_hash: 'abc' }));
  await expect409(t, dbx.filesGetMetadata({ path: '/a.txt' }), { '.tag': 'path', path: { '.tag': 'not_found' } }, 'path/not_found');
});

test('upload & download: non-ASCII names round-trip; Dropbox-API-Result is ASCII only', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const name = 'Café ☕ 日本.txt';
  const r = await up(dbx, `/${name}`, 'unicode');
  t.is(r.name, name);
  t.is(r.path_display, `/${name}`);
  const d = await down(dbx, `/${name}`);
  t.is(d.meta.name, name);
  t.regex(String(d.headers.get('dropbox-api-result')), /^[\x20-\x7e]+$/);
  t.deepEqual((await listAll(dbx, { path: '' })).entries.map((e) => e.name), [name]);
});

test('download: Range gives 206 with just the slice, Content-Range, and the whole file in the metadata', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const content = bytes(1000, 3);
  const r = await up(dbx, '/r.bin', content);

  const mid = await down(sdk(emu, { customHeaders: { Range: 'bytes=100-199' } }), '/r.bin');
  t.is(mid.status, 206);
  t.true(mid.bytes.equals(content.subarray(100, 200)));
  t.is(mid.headers.get('content-range'), 'bytes 100-199/1000');
  t.is(mid.meta.size, 1000);
  t.is(mid.meta.rev, r.rev);
  t.is(mid.meta.content_hash, contentHash(content));

  const tail = await down(sdk(emu, { customHeaders: { Range: 'bytes=900-' } }), '/r.bin');
  t.is(tail.status, 206);
  t.true(tail.bytes.equals(content.subarray(900)));
  t.is(tail.headers.get('content-range'), 'bytes 900-999/1000');

  const past = await down(sdk(emu, { customHeaders: { Range: 'bytes=990-5000' } }), '/r.bin');
  t.is(past.status, 206);
  t.true(past.bytes.equals(content.subarray(990)));
  t.is(past.headers.get('content-range'), 'bytes 990-999/1000');

  const bad = await sdkError(down(sdk(emu, { customHeaders: { Range: 'bytes=1000-1100' } }), '/r.bin'));
  t.is(bad.status, 416);
  t.is(bad.headers.get('content-range'), 'bytes */1000');
});

test('download: folder → path/not_file, missing → path/not_found; by id:', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const v1 = Buffer.from('version one');
  const v2 = Buffer.from('version two, longer');
  const r1 = await up(dbx, '/dir/f.txt', v1);
  const r2 = await up(dbx, '/dir/f.txt', v2, { mode: { '.tag': 'overwrite' } });
  await expect409(t, dbx.filesDownload({ path: '/dir' }), { '.tag': 'path', path: { '.tag': 'not_file' } }, 'path/not_file');
  await expect409(t, dbx.filesDownload({ path: '/dir/nope' }), { '.tag': 'path', path: { '.tag': 'not_found' } }, 'path/not_found');
  await expect400(t, dbx.filesDownload({ path: 'dir/f.txt' }));
  const byId = await down(dbx, r1.id);
  t.true(byId.bytes.equals(v2));
  t.is(byId.meta.rev, r2.rev);
});

test('download: rev: path of an older revision returns that revision (§3, §5.3)', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const v1 = Buffer.from('version one');
  const v2 = Buffer.from('version two, longer');
  const r1 = await up(dbx, '/f.txt', v1);
  const r2 = await up(dbx, '/f.txt', v2, { mode: { '.tag': 'overwrite' } });
  t.true((await down(dbx, `rev:${r2.rev}`)).bytes.equals(v2));
  const byRev = await down(dbx, `rev:${r1.rev}`);
  t.true(byRev.bytes.equals(v1));
  t.is(byRev.meta.rev, r1.rev);
  t.is(byRev.meta.size, v1.length);
});

test('upload conflict matrix: add over different content → path/conflict/file, original intact', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const orig = Buffer.from('original');
  const r = await up(dbx, '/doc.txt', orig);
  await expectUploadWriteFailed(t, up(dbx, '/doc.txt', 'different', { mode: { '.tag': 'add' } }), CONFLICT_FILE, 'path/conflict/file');
  await expectUploadWriteFailed(t, up(dbx, '/DOC.TXT', 'different'), CONFLICT_FILE, 'path/conflict/file');
  await expectUploadWriteFailed(t, up(dbx, '/doc.txt', 'different', { mode: 'add' }), CONFLICT_FILE, 'path/conflict/file');
  const d = await down(dbx, '/doc.txt');
  t.true(d.bytes.equals(orig));
  t.is(d.meta.rev, r.rev);
});

test('upload conflict matrix: identical content returns the existing revision unless strict_conflict', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const content = Buffer.from('same bytes');
  const r = await up(dbx, '/same.txt', content, { client_modified: '2021-05-06T07:08:09Z' });
  const again = await up(dbx, '/same.txt', content, { client_modified: '2022-01-01T00:00:00Z' });
  checkFile(t, again, { tagged: false, path: '/same.txt', content });
  t.is(again.rev, r.rev);
  t.is(again.id, r.id);
  t.is(again.client_modified, '2021-05-06T07:08:09Z');

  // Rule 3 comes before rule 4: identical content with a stale rev is not a conflict.
  const upd = await up(dbx, '/same.txt', content, { mode: { '.tag': 'update', update: 'abcdef0123456789' } });
  t.is(upd.rev, r.rev);

  await expectUploadWriteFailed(t, up(dbx, '/same.txt', content, { strict_conflict: true }), CONFLICT_FILE, 'path/conflict/file');
  t.is((await meta(dbx, '/same.txt')).rev, r.rev);
});

test('upload conflict matrix: overwrite and update (right rev replaces, wrong rev conflicts)', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const r1 = await up(dbx, '/w.txt', 'one');
  const two = Buffer.from('two');
  const r2 = await up(dbx, '/w.txt', two, { mode: { '.tag': 'overwrite' } });
  checkFile(t, r2, { tagged: false, path: '/w.txt', content: two });
  t.not(r2.rev, r1.rev);
  t.true((await down(dbx, '/w.txt')).bytes.equals(two));

  const three = Buffer.from('three');
  const r3 = await up(dbx, '/w.txt', three, { mode: 'overwrite' });
  t.not(r3.rev, r2.rev);
  t.is(r3.size, 5);

  await expectUploadWriteFailed(
    t,
    up(dbx, '/w.txt', 'stale', { mode: { '.tag': 'update', update: r1.rev } }),
    CONFLICT_FILE,
    'path/conflict/file',
  );
  t.is((await meta(dbx, '/w.txt')).rev, r3.rev);

  const four = Buffer.from('four!');
  const r4 = await up(dbx, '/w.txt', four, { mode: { '.tag': 'update', update: r3.rev } });
  checkFile(t, r4, { tagged: false, path: '/w.txt', content: four });
  t.not(r4.rev, r3.rev);
  t.true((await down(dbx, '/w.txt')).bytes.equals(four));
});

test('upload conflict matrix: folder at path → conflict/folder; file ancestor → conflict/file_ancestor', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  await dbx.filesCreateFolderV2({ path: '/Folder' });
  await expectUploadWriteFailed(t, up(dbx, '/folder', 'x'), CONFLICT_FOLDER, 'path/conflict/folder');
  await expectUploadWriteFailed(t, up(dbx, '/folder', 'x', { mode: 'overwrite' }), CONFLICT_FOLDER, 'path/conflict/folder');
  t.is((await meta(dbx, '/folder'))['.tag'], 'folder');

  await up(dbx, '/plain.txt', 'p');
  await expectUploadWriteFailed(
    t,
    up(dbx, '/plain.txt/child.txt', 'c'),
    { '.tag': 'conflict', conflict: { '.tag': 'file_ancestor' } },
    'path/conflict/file_ancestor',
  );
  await expectUploadWriteFailed(t, up(dbx, '/desktop.ini', 'x'), { '.tag': 'disallowed_name' }, 'path/disallowed_name');
});

test('upload conflict matrix: autorename picks another name and leaves the original intact', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const orig = Buffer.from('first');
  const other = Buffer.from('second');
  const r = await up(dbx, '/dir/doc.txt', orig);
  const renamed = await up(dbx, '/dir/doc.txt', other, { autorename: true });
  checkFile(t, renamed, { tagged: false, content: other });
  t.not(renamed.path_lower, '/dir/doc.txt');
  t.true(renamed.path_lower.startsWith('/dir/'), renamed.path_lower);
  t.not(renamed.id, r.id);
  t.true((await down(dbx, '/dir/doc.txt')).bytes.equals(orig));
  t.true((await down(dbx, renamed.path_lower)).bytes.equals(other));
  t.is((await listAll(dbx, { path: '/dir' })).entries.length, 2);
});

test('upload: content_hash of the body is checked (mismatch → 409 content_hash_mismatch, nothing written)', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const content = Buffer.from('hash me');
  await expect409(
    t,
    up(dbx, '/h.txt', content, { content_hash: contentHash(Buffer.from('something else')) }),
    { '.tag': 'content_hash_mismatch' },
    'content_hash_mismatch',
  );
  await expect409(t, dbx.filesGetMetadata({ path: '/h.txt' }), { '.tag': 'path', path: { '.tag': 'not_found' } }, 'path/not_found');
  const ok = await up(dbx, '/h.txt', content, { content_hash: contentHash(content) });
  checkFile(t, ok, { tagged: false, path: '/h.txt', content });
});

test('upload session (sequential): start / append_v2 / finish assemble the bytes', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const a = bytes(1000, 1);
  const b = bytes(2000, 2);
  const c = bytes(500, 3);
  const startRes = (await dbx.filesUploadSessionStart({ contents: a })).result as any;
  t.deepEqual(Object.keys(startRes), ['session_id']);
  t.is(typeof startRes.session_id, 'string');
  const sid = startRes.session_id as string;
  t.is(await append(dbx, sid, 1000, b, { content_hash: contentHash(b) }), null);
  const fin = (await dbx.filesUploadSessionFinish({ cursor: { session_id: sid, offset: 3000 }, commit: { path: '/Big/File.bin' }, contents: c })).result;
  const all = Buffer.concat([a, b, c]);
  checkFile(t, fin, { tagged: false, path: '/Big/File.bin', content: all });
  t.true((await down(dbx, '/big/file.bin')).bytes.equals(all));

  // An empty start and an empty finish are fine too.
  const sid2 = await start(dbx, {});
  await append(dbx, sid2, 0, b);
  const fin2 = (await dbx.filesUploadSessionFinish({ cursor: { session_id: sid2, offset: 2000 }, commit: { path: '/two.bin', mode: 'add' } } as any)).result;
  checkFile(t, fin2, { tagged: false, path: '/two.bin', content: b });
});

test('upload session (sequential): wrong offsets, unknown and closed sessions, finish conflicts', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const a = bytes(1000, 4);
  const b = bytes(2000, 5);
  const sid = await start(dbx, { contents: a });

  await expect409(t, append(dbx, sid, 5, b), { '.tag': 'incorrect_offset', correct_offset: 1000 }, 'incorrect_offset');
  await append(dbx, sid, 1000, b);
  // A retried append whose first attempt landed: the server tells where to continue.
  await expect409(t, append(dbx, sid, 1000, b), { '.tag': 'incorrect_offset', correct_offset: 3000 }, 'incorrect_offset');
  await expect409(
    t,
    dbx.filesUploadSessionFinish({ cursor: { session_id: sid, offset: 1000 }, commit: { path: '/s.bin' } }),
    { '.tag': 'lookup_failed', lookup_failed: { '.tag': 'incorrect_offset', correct_offset: 3000 } },
    'lookup_failed/incorrect_offset',
  );
  await expect409(
    t,
    append(dbx, sid, 3000, b, { content_hash: contentHash(a) }),
    { '.tag': 'content_hash_mismatch' },
    'content_hash_mismatch',
  );
  await expect409(t, append(dbx, 'no-such-session', 0, b), { '.tag': 'not_found' }, 'not_found');
  await expect409(
    t,
    dbx.filesUploadSessionFinish({ cursor: { session_id: 'no-such-session', offset: 0 }, commit: { path: '/n.bin' } }),
    { '.tag': 'lookup_failed', lookup_failed: { '.tag': 'not_found' } },
    'lookup_failed/not_found',
  );

  await append(dbx, sid, 3000, Buffer.alloc(0), { close: true });
  await expect409(t, append(dbx, sid, 3000, b), { '.tag': 'closed' }, 'closed');

  const fin = (await dbx.filesUploadSessionFinish({ cursor: { session_id: sid, offset: 3000 }, commit: { path: '/free.bin' } })).result;
  checkFile(t, fin, { tagged: false, path: '/free.bin', content: Buffer.concat([a, b]) });

  await up(dbx, '/taken.bin', 'occupied');
  const sid3 = await start(dbx, { contents: b });
  await expect409(
    t,
    dbx.filesUploadSessionFinish({ cursor: { session_id: sid3, offset: 2000 }, commit: { path: '/taken.bin' } }),
    { '.tag': 'path', path: CONFLICT_FILE },
    'path/conflict/file',
  );
  t.false((await down(dbx, '/taken.bin')).bytes.equals(b));

  await expect409(
    t,
    dbx.filesUploadSessionStart({ contents: a, content_hash: contentHash(b) }),
    { '.tag': 'content_hash_mismatch' },
    'content_hash_mismatch',
  );
});

test('upload session: sessions live 7 days (clockOffsetSec) → not_found afterwards', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const sid = await start(dbx, { contents: Buffer.from('abc') });
  await emu.admin('POST', '/config', { clockOffsetSec: 6 * 86400 });
  await append(dbx, sid, 3, Buffer.from('def'));
  await emu.admin('POST', '/config', { clockOffsetSec: 8 * 86400 });
  await expect409(t, append(dbx, sid, 6, Buffer.from('ghi')), { '.tag': 'not_found' }, 'not_found');
  await expect409(
    t,
    dbx.filesUploadSessionFinish({ cursor: { session_id: sid, offset: 6 }, commit: { path: '/late.txt' } }),
    { '.tag': 'lookup_failed', lookup_failed: { '.tag': 'not_found' } },
    'lookup_failed/not_found',
  );
});

test('upload session (concurrent): 4 MiB-multiple chunks out of order, short closing chunk, finish assembles', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const c0 = bytes(4 * MiB, 10);
  const c1 = bytes(8 * MiB, 11);
  const c2 = bytes(12345, 12);
  const all = Buffer.concat([c0, c1, c2]);
  const sid = await start(dbx, { session_type: { '.tag': 'concurrent' } });

  await append(dbx, sid, 4 * MiB, c1);
  await append(dbx, sid, 0, c0);
  await append(dbx, sid, 12 * MiB, c2, { close: true });

  const fin = (await dbx.filesUploadSessionFinish({ cursor: { session_id: sid, offset: all.length }, commit: { path: '/conc.bin' } })).result as any;
  checkFile(t, fin, { tagged: false, path: '/conc.bin', content: all });
  const d = await down(dbx, '/conc.bin');
  t.is(d.bytes.length, all.length);
  t.true(d.bytes.equals(all));

  // Parallel appends, closing chunk first.
  const sid2 = await start(dbx, { session_type: 'concurrent' });
  await append(dbx, sid2, 8 * MiB, c2, { close: true });
  await Promise.all([append(dbx, sid2, 4 * MiB, c0), append(dbx, sid2, 0, c0)]);
  const both = Buffer.concat([c0, c0, c2]);
  const fin2 = (await dbx.filesUploadSessionFinish({ cursor: { session_id: sid2, offset: both.length }, commit: { path: '/conc2.bin' } })).result;
  checkFile(t, fin2, { tagged: false, path: '/conc2.bin', content: both });
});

test('upload session (concurrent): data in start/finish, close in start, bad offsets and sizes', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  await expect409(
    t,
    dbx.filesUploadSessionStart({ session_type: { '.tag': 'concurrent' }, contents: Buffer.from('data') } as any),
    { '.tag': 'concurrent_session_data_not_allowed' },
    'concurrent_session_data_not_allowed',
  );
  await expect409(
    t,
    dbx.filesUploadSessionStart({ session_type: { '.tag': 'concurrent' }, close: true } as any),
    { '.tag': 'concurrent_session_close_not_allowed' },
    'concurrent_session_close_not_allowed',
  );
  const sid = await start(dbx, { session_type: { '.tag': 'concurrent' } });
  await expect409(
    t,
    append(dbx, sid, 0, bytes(1000, 1)),
    { '.tag': 'concurrent_session_invalid_data_size' },
    'concurrent_session_invalid_data_size',
  );
  await expect409(
    t,
    append(dbx, sid, 1000, bytes(4 * MiB, 1)),
    { '.tag': 'concurrent_session_invalid_offset' },
    'concurrent_session_invalid_offset',
  );
  await append(dbx, sid, 0, Buffer.from('short and closing'), { close: true });
  await expect409(
    t,
    dbx.filesUploadSessionFinish({ cursor: { session_id: sid, offset: 17 }, commit: { path: '/x.bin' }, contents: Buffer.from('x') }),
    { '.tag': 'concurrent_session_data_not_allowed' },
    'concurrent_session_data_not_allowed',
  );
  const fin = (await dbx.filesUploadSessionFinish({ cursor: { session_id: sid, offset: 17 }, commit: { path: '/x.bin' } })).result;
  checkFile(t, fin, { tagged: false, path: '/x.bin', content: Buffer.from('short and closing') });
});

test('finish_batch_v2: entries in input order, success inlined with .tag, failures nested (not_closed, conflict)', async (t) => {
  const emu = await startEmulator(t);
  const dbx = sdk(emu);
  const a = bytes(3000, 21);
  const b = bytes(100, 22);
  const c = bytes(50, 23);
  const closed = await start(dbx, { contents: a.subarray(0, 1000) });
  await append(dbx, closed, 1000, a.subarray(1000), { close: true });
  const open = await start(dbx, { contents: b });
  const closedConflict = await start(dbx, { contents: c, close: true });
  await up(dbx, '/taken.bin', 'occupied');

  const res = (
    await dbx.filesUploadSessionFinishBatchV2({
      entries: [
        { cursor: { session_id: open, offset: b.length }, commit: { path: '/b.bin' } },
        { cursor: { session_id: closed, offset: a.length }, commit: { path: '/Batch/A.bin' } },
        { cursor: { session_id: closedConflict, offset: c.length }, commit: { path: '/taken.bin' } },
      ],
    })
  ).result as any;
  t.deepEqual(Object.keys(res), ['entries']);
  t.is(res.entries.length, 3);
  t.deepEqual(res.entries[0], { '.tag': 'failure', failure: { '.tag': 'lookup_failed', lookup_failed: { '.tag': 'not_closed' } } });
  const ok = res.entries[1];
  t.is(ok['.tag'], 'success');
  t.false('success' in ok, 'FileMetadata must be inlined, not nested');
  const { '.tag': _tag, ...fileMeta } = ok;
  checkFile(t, fileMeta, { tagged: false, path: '/Batch/A.bin', content: a });
  t.deepEqual(res.entries[2], { '.tag': 'failure', failure: { '.tag': 'path', path: CONFLICT_FILE } });

  t.true((await down(dbx, '/batch/a.bin')).bytes.equals(a));
  await expect409(t, dbx.filesGetMetadata({ path: '/b.bin' }), { '.tag': 'path', path: { '.tag': 'not_found' } }, 'path/not_found');
  t.false((await down(dbx, '/taken.bin')).bytes.equals(c));
});
