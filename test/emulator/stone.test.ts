/**
 * The spec-driven Stone reader and checker (src/emulator/stone.ts) on their own: defaults,
 * Dropbox's 400 wording, and that the result check catches what a wrong result looks like
 * (so the suite-wide SREG_EMULATOR_CHECK_RESULTS check can fail).
 */
import test from 'ava';
import { conform, decode, StoneError } from '../../src/emulator/stone.js';

const FILE = {
  name: 'a.txt',
  path_lower: '/a.txt',
  path_display: '/a.txt',
  id: 'id:abc',
  client_modified: '2020-01-01T00:00:00Z',
  server_modified: '2020-01-01T00:00:00Z',
  rev: '0123456789abcdef',
  size: 1,
  is_downloadable: true,
  content_hash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
};

test('decode fills the specification\'s defaults, unions included', (t) => {
  t.deepEqual(decode({ path: '' }, 'files.ListFolderArg'), {
    path: '',
    recursive: false,
    include_media_info: false,
    include_deleted: false,
    include_has_explicit_shared_members: false,
    include_mounted_folders: true,
    include_non_downloadable_files: true,
    include_restorable_info: false,
  });
  const up = decode({ path: '/x' }, 'files.UploadArg') as Record<string, unknown>;
  t.deepEqual(up.mode, { '.tag': 'add' });
  t.deepEqual((decode({ path: '/x', mode: 'overwrite' }, 'files.UploadArg') as Record<string, unknown>).mode, { '.tag': 'overwrite' });
});

test('decode refuses in Dropbox\'s words, naming the field', (t) => {
  const msg = (v: unknown, ref: string): string => t.throws(() => decode(v, ref), { instanceOf: StoneError }).message;
  t.is(msg({ path: '', bogus: 1 }, 'files.ListFolderArg'), "unknown field 'bogus'");
  t.is(msg({}, 'files.ListFolderArg'), "missing required field 'path'");
  t.is(msg({ path: 'x' }, 'files.ListFolderArg'), "path: 'x' did not match pattern '(/(.|[\\r\\n])*)?|id:.*|(ns:[0-9]+(/(.|[\\r\\n])*)?)'");
  t.is(msg({ path: '', limit: 0 }, 'files.ListFolderArg'), 'limit: 0 is not greater than or equal to 1');
  t.is(msg({ path: '/x', mode: 'update' }, 'files.UploadArg'), "mode: tag 'update' requires a value");
  t.is(msg({ path: '/x', mode: { '.tag': 'sideways' } }, 'files.UploadArg'), "mode: unknown tag 'sideways'");
  t.is(msg({ path: '/x', client_modified: '2020-01-01T00:00:00.000Z' }, 'files.UploadArg'), "client_modified: time data '2020-01-01T00:00:00.000Z' does not match format '%Y-%m-%dT%H:%M:%SZ'");
});

test('conform accepts a correct result and catches a missing field, an extra one, a missing or stray .tag', (t) => {
  t.notThrows(() => conform({ '.tag': 'file', ...FILE }, 'files.Metadata'));
  t.notThrows(() => conform(FILE, 'files.FileMetadata'));
  const { rev: _rev, ...noRev } = FILE;
  t.throws(() => conform(noRev, 'files.FileMetadata'), { message: "missing required field 'rev'" });
  t.throws(() => conform({ ...FILE, preview_type: 'file' }, 'files.FileMetadata'), { message: "field 'preview_type' is not in the specification" });
  t.throws(() => conform(FILE, 'files.Metadata'), { message: "missing '.tag' key" });
  t.throws(() => conform({ '.tag': 'file', ...FILE }, 'files.FileMetadata'), { message: "field '.tag' is not in the specification" });
  t.throws(() => conform({ ...FILE, size: -1 }, 'files.FileMetadata'), { message: 'size: -1 is not a valid UInt64' });
  t.throws(() => conform({ '.tag': 'path', path: { '.tag': 'nowhere' } }, 'files.GetMetadataError'), { message: "path: unknown tag 'nowhere'" });
  t.notThrows(() => conform({ '.tag': 'path', path: { '.tag': 'not_found' } }, 'files.GetMetadataError'));
});
