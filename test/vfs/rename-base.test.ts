/**
 * A version opened from a Dropbox revision keeps its revision check across a rename of a
 * folder above it (src/vfs/namespace.ts movedBase): open for writing or pending upload, it is
 * uploaded as an update of the revision the moved file has, so another machine's change made
 * after the move stays and ours lands as a conflicted copy, while a file nobody else changed
 * does not conflict with itself. Run twice: with a move that keeps a file's revision, and with
 * one that gives it a new revision (what the emulator does; Dropbox's behaviour is unverified).
 * Also: a case-only folder rename (its files' revisions may change too), and a file renamed
 * after another machine changed it unseen (the moved file is not the revision ours derives
 * from, so ours still conflicts).
 */
import test, { type ExecutionContext } from 'ava';
import { memorySut, O_WRONLY, type MemorySut } from './memory-sut.js';

async function sut(t: ExecutionContext, newRevOnMove: boolean): Promise<MemorySut> {
  const s = await memorySut(t);
  s.ports.remote.newRevOnMove = newRevOnMove;
  return s;
}

function remoteFiles(s: MemorySut): [string, string][] {
  return [...s.ports.remote.snapshotFiles().values()].map((f): [string, string] => [f.path, f.bytes.toString()]).sort();
}

async function folderRenameKeepsRevisionCheck(t: ExecutionContext, newRevOnMove: boolean): Promise<void> {
  const s = await sut(t, newRevOnMove);
  const { vfs, ports } = s;
  for (const f of ['open', 'queued', 'quiet']) ports.remote.upload(`/d/sub/${f}.txt`, Buffer.from(`${f}-one`));
  // Open for writing from its revision, and still open across the rename.
  const w = await vfs.open('/d/sub/open.txt', O_WRONLY);
  await vfs.write(w, Buffer.from('OURS'), 0);
  // Closed: waiting in the upload queue with its base revision.
  const q = await vfs.open('/d/sub/queued.txt', O_WRONLY);
  await vfs.write(q, Buffer.from('OURS'), 0);
  await s.close(q);
  // Changed here only: nobody else touches it after the move.
  const quiet = await vfs.open('/d/sub/quiet.txt', O_WRONLY);
  await vfs.write(quiet, Buffer.from('OURS'), 0);
  await s.close(quiet);
  t.is(ports.uploads.pending('/d/sub/queued.txt')?.baseRev, ports.catalog.lookup('/d/sub/queued.txt')?.rev, 'queued as an update of its revision');

  await vfs.rename('/d', '/e');
  t.deepEqual(vfs.readdir('/e/sub').sort(), ['open.txt', 'queued.txt', 'quiet.txt']);
  // Another machine changes two of the moved files before ours are uploaded.
  ports.remote.upload('/e/sub/open.txt', Buffer.from('theirs'));
  ports.remote.upload('/e/sub/queued.txt', Buffer.from('theirs'));
  await s.close(w);
  await s.drain();

  t.deepEqual(remoteFiles(s), [
    ['/e/sub/open (conflicted copy).txt', 'OURS-one'],
    ['/e/sub/open.txt', 'theirs'],
    ['/e/sub/queued (conflicted copy).txt', 'OURSed-one'],
    ['/e/sub/queued.txt', 'theirs'],
    ['/e/sub/quiet.txt', 'OURSt-one'],
  ], 'their changes stay, ours are conflicted copies; the file nobody else changed is simply ours');
}

test('a folder renamed while files below are open for writing or pending upload: they keep their revision check (a move that keeps revisions)', async (t) => {
  await folderRenameKeepsRevisionCheck(t, false);
});

test('a folder renamed while files below are open for writing or pending upload: they keep their revision check (a move that gives new revisions)', async (t) => {
  await folderRenameKeepsRevisionCheck(t, true);
});

test('a case-only folder rename with a pending file below: no conflict with ourselves when the move gives new revisions', async (t) => {
  const s = await sut(t, true);
  const { vfs, ports } = s;
  ports.remote.upload('/Dir/f.txt', Buffer.from('one'));
  const w = await vfs.open('/Dir/f.txt', O_WRONLY);
  await vfs.write(w, Buffer.from('TWO'), 0);
  await s.close(w);
  await vfs.rename('/Dir', '/dir');
  await s.drain();
  t.deepEqual(remoteFiles(s), [['/dir/f.txt', 'TWO']]);
});

test('a file renamed after another machine changed it unseen: its pending version still conflicts, the change stays', async (t) => {
  const s = await sut(t, true);
  const { vfs, ports } = s;
  ports.remote.upload('/a.txt', Buffer.from('one'));
  const w = await vfs.open('/a.txt', O_WRONLY);
  await vfs.write(w, Buffer.from('OURS'), 0);
  await s.close(w);
  const feed = ports.remote.onChange;
  ports.remote.onChange = () => undefined; // the change feed has not brought it yet
  ports.remote.upload('/a.txt', Buffer.from('theirs'));
  ports.remote.onChange = feed;
  await vfs.rename('/a.txt', '/b.txt');
  await s.drain();
  t.deepEqual(remoteFiles(s), [['/b (conflicted copy).txt', 'OURS'], ['/b.txt', 'theirs']]);
});
