#!/usr/bin/python3
"""Drives `sreg emulator` with Debian's python3-dropbox (the official Python SDK, 11.34).

Run by test/emulator/python-sdk.test.ts with DROPBOX_API_HOST, DROPBOX_API_CONTENT_HOST and
DROPBOX_API_NOTIFY_HOST set to the emulator's TLS listener, the token in SREG_TEST_TOKEN and
the throwaway certificate in SREG_TEST_CA. Each step asserts what the SDK got back and prints
`ok STEP`; any failure ends the script with a traceback and a non-zero exit.
"""
import os
import sys

import dropbox
from dropbox import files, sharing
from dropbox.exceptions import ApiError

dbx = dropbox.Dropbox(os.environ["SREG_TEST_TOKEN"], ca_certs=os.environ["SREG_TEST_CA"], max_retries_on_error=0, timeout=60)


def ok(step):
    print("ok " + step, flush=True)


def api_error(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ApiError as e:
        return e.error
    raise AssertionError("expected an ApiError from %s" % fn.__name__)


def download(path):
    _, res = dbx.files_download(path)
    return res.content


acct = dbx.users_get_current_account()
assert acct.account_id.startswith("dbid:") and len(acct.account_id) == 40, acct.account_id
assert acct.name.display_name, acct.name
ok("get_current_account")

a = dbx.files_upload(b"hello", "/py/a.txt")
assert a.size == 5 and a.path_display == "/py/a.txt", a
assert a.content_hash == "9595c9df90075148eb06860365df33584b75bff782a510c6cd4883a419833d50", a.content_hash
dbx.files_create_folder_v2("/py/sub")
dbx.files_upload(b"bee", "/py/sub/b.txt")
ok("upload")

page = dbx.files_list_folder("/py", limit=1)
names = [e.name for e in page.entries]
pages = 1
while page.has_more:
    page = dbx.files_list_folder_continue(page.cursor)
    names += [e.name for e in page.entries]
    pages += 1
assert sorted(names) == ["a.txt", "sub"], names
assert pages >= 2, pages
ok("list_folder limit + continue")

rec = dbx.files_list_folder("/py", recursive=True)
paths = sorted(e.path_lower for e in rec.entries)
assert "/py/sub/b.txt" in paths and "/py/a.txt" in paths, paths
ok("list_folder recursive")

# rclone's form for a remote rooted at the app folder.
slashed = dbx.files_list_folder("//py")
assert sorted(e.name for e in slashed.entries) == ["a.txt", "sub"], slashed
ok("list_folder //py")

f = dbx.files_get_metadata("/py/a.txt")
assert isinstance(f, files.FileMetadata) and f.size == 5 and f.rev, f
d = dbx.files_get_metadata("/py/sub")
assert isinstance(d, files.FolderMetadata) and d.path_lower == "/py/sub", d
err = api_error(dbx.files_get_metadata, "/py/missing")
assert err.is_path() and err.get_path().is_not_found(), err
ok("get_metadata file, folder, missing")

assert download("/py/a.txt") == b"hello"
ok("download")

# Upload session v1: start, append (v1), finish.
s = dbx.files_upload_session_start(b"a" * 10)
dbx.files_upload_session_append(b"b" * 10, s.session_id, 10)
m = dbx.files_upload_session_finish(b"c" * 5, files.UploadSessionCursor(s.session_id, 20), files.CommitInfo("/py/s1.bin"))
assert m.size == 25, m
assert download("/py/s1.bin") == b"a" * 10 + b"b" * 10 + b"c" * 5
err = api_error(dbx.files_upload_session_append, b"x", s.session_id, 3)
assert err.is_not_found() or err.is_incorrect_offset(), err
ok("upload session v1")

s = dbx.files_upload_session_start(b"1" * 7)
dbx.files_upload_session_append_v2(b"2" * 7, files.UploadSessionCursor(s.session_id, 7))
m = dbx.files_upload_session_finish(b"", files.UploadSessionCursor(s.session_id, 14), files.CommitInfo("/py/s2.bin"))
assert m.size == 14 and download("/py/s2.bin") == b"1" * 7 + b"2" * 7, m
err = api_error(dbx.files_upload_session_append_v2, b"x", files.UploadSessionCursor(s.session_id, 3))
assert err.is_not_found() or err.is_incorrect_offset(), err
ok("upload session v2")


def closed_session(data):
    s = dbx.files_upload_session_start(data, close=True)
    return files.UploadSessionFinishArg(files.UploadSessionCursor(s.session_id, len(data)), files.CommitInfo("/py/batch/%s.bin" % data.decode()))


launch = dbx.files_upload_session_finish_batch([closed_session(b"one"), closed_session(b"two")])
if launch.is_async_job_id():
    status = dbx.files_upload_session_finish_batch_check(launch.get_async_job_id())
    assert status.is_complete(), status
    entries = status.get_complete().entries
else:
    entries = launch.get_complete().entries
assert [e.get_success().name for e in entries] == ["one.bin", "two.bin"], entries
v2 = dbx.files_upload_session_finish_batch_v2([closed_session(b"three")])
assert v2.entries[0].is_success() and v2.entries[0].get_success().size == 5, v2
assert download("/py/batch/two.bin") == b"two"
ok("finish_batch v1 + check, finish_batch_v2")

c = dbx.files_copy_v2("/py/a.txt", "/py/copy.txt").metadata
assert c.path_display == "/py/copy.txt" and c.id != a.id, c
mv = dbx.files_move_v2("/py/copy.txt", "/py/moved.txt").metadata
assert mv.path_display == "/py/moved.txt", mv
gone = dbx.files_delete_v2("/py/moved.txt").metadata
assert gone.path_display == "/py/moved.txt", gone
err = api_error(dbx.files_get_metadata, "/py/moved.txt")
assert err.get_path().is_not_found(), err
c1 = dbx.files_copy("/py/a.txt", "/py/copy1.txt")
assert isinstance(c1, files.FileMetadata) and c1.name == "copy1.txt", c1
m1 = dbx.files_move("/py/copy1.txt", "/py/moved1.txt")
assert m1.name == "moved1.txt", m1
d1 = dbx.files_delete("/py/moved1.txt")
assert d1.name == "moved1.txt", d1
err = api_error(dbx.files_copy_v2, "/py/missing", "/py/x")
assert err.is_from_lookup() and err.get_from_lookup().is_not_found(), err
ok("copy/move/delete v2 and v1")

link = dbx.sharing_create_shared_link_with_settings("/py/a.txt")
assert isinstance(link, sharing.FileLinkMetadata) and link.url.startswith("https://"), link
err = api_error(dbx.sharing_create_shared_link_with_settings, "/py/a.txt")
assert err.is_shared_link_already_exists(), err
existing = err.get_shared_link_already_exists()
assert existing is not None and existing.get_metadata().url == link.url, existing
listed = dbx.sharing_list_shared_links(path="/py/a.txt", direct_only=True)
assert [l.url for l in listed.links] == [link.url], listed
v1 = dbx.sharing_create_shared_link("/py/a.txt")
assert v1.url == link.url and v1.path == "/py/a.txt", v1
fresh = dbx.sharing_create_shared_link("/py/sub/b.txt")
assert fresh.url != link.url, fresh
old = dbx.sharing_get_shared_links("/py/a.txt")
assert [l.url for l in old.links] == [link.url], old
every = dbx.sharing_get_shared_links()
assert sorted(l.url for l in every.links) == sorted([link.url, fresh.url]), every
ok("shared links: create, already exists, list, v1")

cursor = dbx.files_list_folder_get_latest_cursor("/py", recursive=True).cursor
quiet = dbx.files_list_folder_longpoll(cursor, timeout=30)
assert quiet.changes is False, quiet
dbx.files_upload(b"new", "/py/new.txt")
woke = dbx.files_list_folder_longpoll(cursor, timeout=30)
assert woke.changes is True, woke
changed = dbx.files_list_folder_continue(cursor)
assert [e.path_lower for e in changed.entries] == ["/py/new.txt"], changed.entries
ok("longpoll")

sys.exit(0)
