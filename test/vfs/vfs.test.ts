/**
 * Unit tests of src/vfs over the in-memory ports: the node states, remove while open
 * (also libfuse's .fuse_hidden rename), case-only rename, the share-link cache keyed by file
 * and revision, fstat from the handle, and the clean-up of a stray upload's recreated folder.
 */
import test from 'ava';
import { Vfs } from '../../src/vfs/index.js';
import { memorySut, O_WRONLY } from './memory-sut.js';

const sut = memorySut;


test('a path goes absent → open-for-write → pending-upload → uploading → clean', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  t.is(vfs.stateOf('/f'), 'absent');
  const fd = await vfs.create('/f');
  t.is(vfs.stateOf('/f'), 'open-for-write');
  await vfs.write(fd, Buffer.from('abc'), 0);
  await s.close(fd);
  t.is(vfs.stateOf('/f'), 'pending-upload');
  const id = await ports.uploads.begin();
  t.is(vfs.stateOf('/f'), 'uploading');
  ports.uploads.finish(id!);
  t.is(vfs.stateOf('/f'), 'clean');
  t.is(ports.remote.snapshotFiles().get('/f')?.bytes.toString(), 'abc');
});

test('unlink while open for writing: gone from lookups and listings at once, the handle works, nothing is uploaded', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  const fd = await vfs.create('/t');
  await vfs.write(fd, Buffer.from('data'), 0);
  await vfs.unlink('/t');
  t.is(vfs.lookup('/t'), undefined);
  t.deepEqual(vfs.readdir('/'), []);
  t.is(await vfs.write(fd, Buffer.from('more'), 4), 4);
  t.is((await vfs.read(fd, 0, 100)).toString(), 'datamore');
  t.is(vfs.fgetattr(fd).size, 8, 'fstat from the handle');
  await s.close(fd);
  await s.drain();
  t.is(ports.remote.snapshotFiles().size, 0);
  t.is(vfs.openCount(), 0);
});

test('libfuse hiding a removed open file (rename to .fuse_hidden…) is the removal: never listed, never uploaded', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  const w = await vfs.create('/a');
  await vfs.write(w, Buffer.from('hello'), 0);
  await s.close(w);
  await s.drain();
  const r = await vfs.open('/a', 0);
  await vfs.rename('/a', '/.fuse_hidden0000000100000001');
  t.deepEqual(vfs.readdir('/'), []);
  t.is(vfs.lookup('/a'), undefined);
  t.is(vfs.getattr('/.fuse_hidden0000000100000001').size, 5, 'libfuse can still stat the hidden name');
  t.is((await vfs.read(r, 0, 10)).toString(), 'hello');
  await s.close(r);
  await vfs.unlink('/.fuse_hidden0000000100000001');
  await s.drain();
  t.deepEqual([...ports.remote.snapshotFiles().keys()], []);
});

test('a case-only rename moves the file (through a temporary name) and deletes nothing', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  ports.remote.upload('/Foo.simg', Buffer.from('image'));
  await vfs.rename('/Foo.simg', '/foo.simg');
  t.deepEqual(vfs.readdir('/'), ['foo.simg']);
  const files = ports.remote.snapshotFiles();
  t.deepEqual([...files.values()].map((f) => [f.path, f.bytes.toString()]), [['/foo.simg', 'image']]);
});

test('rename onto a file whose upload is queued and whose writer is open: the move wins', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  ports.remote.upload('/src', Buffer.from('moved'));
  const w = await vfs.create('/dst');
  await vfs.write(w, Buffer.from('stale'), 0);
  await vfs.flush(w);
  const w2 = await vfs.open('/dst', O_WRONLY);
  await vfs.rename('/src', '/dst');
  await vfs.write(w2, Buffer.from('late'), 0);
  await s.close(w);
  await s.close(w2);
  await s.drain();
  t.deepEqual([...ports.remote.snapshotFiles().values()].map((f) => [f.path, f.bytes.toString()]), [['/dst', 'moved']]);
});

test('share_url is remembered per file and revision: rm and a new upload under the name give the new link', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  ports.remote.upload('/x.simg', Buffer.from('one'));
  const first = (await vfs.xattr.get('/x.simg', 'user.sregistry.share_url')).toString();
  await vfs.unlink('/x.simg');
  ports.remote.upload('/x.simg', Buffer.from('two'));
  t.false(vfs.xattr.list('/x.simg').includes('user.sregistry.share_url'), 'no link known for the new file yet');
  const second = (await vfs.xattr.get('/x.simg', 'user.sregistry.share_url')).toString();
  t.not(second, first);
  t.deepEqual(await ports.remote.listSharedLinks('/x.simg'), [second]);
});

test('an upload renamed away with its folder and landing anyway is removed, and so is the folder it recreated', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  await vfs.mkdir('/old');
  const w = await vfs.create('/old/x');
  await vfs.write(w, Buffer.from('x'), 0);
  await s.close(w);
  const id = await ports.uploads.begin();
  await vfs.rename('/old', '/new');
  ports.uploads.finish(id!, { landAnyway: true });
  await s.drain();
  t.deepEqual(ports.remote.folderKeys().sort(), ['/new']);
  t.deepEqual([...ports.remote.snapshotFiles().keys()], ['/new/x']);
});

test('a reader of a file another machine deleted keeps its revision and a clean end of file', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  ports.remote.upload('/r', Buffer.from('revision'));
  const fd = await vfs.open('/r', 0);
  ports.remote.deleteNow('/r');
  t.deepEqual(vfs.readdir('/'), [], 'gone from the listing');
  t.is(vfs.getattr('/r').size, 8, 'the kernel can still refresh the open file by path');
  t.is((await vfs.read(fd, 8, 100)).length, 0);
  t.is((await vfs.read(fd, 0, 100)).toString(), 'revision');
  await s.close(fd);
  t.is(vfs.lookup('/r'), undefined);
});

test('caughtUp: until the catalog has caught up, reads answer at once and changes wait; then the changes run', async (t) => {
  const s = await sut(t);
  const fd = await s.vfs.create('/f');
  await s.vfs.write(fd, Buffer.from('abc'), 0);
  await s.close(fd);
  await s.drain();
  let open!: () => void;
  const caughtUp = new Promise<void>((r) => (open = r));
  const vfs = new Vfs({ ...s.ports.options, caughtUp: () => caughtUp });
  // Reads: at once, from the catalog as it is.
  t.deepEqual(vfs.readdir('/'), ['f']);
  const r = await vfs.open('/f', 0);
  t.is((await vfs.read(r, 0, 10)).toString(), 'abc');
  await vfs.release(r);
  // Changes: held until the catch-up is over.
  const done: string[] = [];
  const changes = [
    vfs.create('/g').then(async (h) => { done.push('create'); await vfs.release(h); }),
    vfs.open('/f', O_WRONLY).then(async (h) => { done.push('open for writing'); await vfs.release(h); }),
    vfs.mkdir('/d').then(() => done.push('mkdir')),
  ];
  for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
  t.deepEqual(done, [], 'no change ran before the catch-up');
  t.is(vfs.lookup('/d'), undefined);
  open();
  await Promise.all(changes);
  t.deepEqual([...done].sort(), ['create', 'mkdir', 'open for writing']);
  await vfs.rename('/d', '/e');
  await vfs.unlink('/g');
  t.truthy(vfs.lookup('/e'));
  t.is(vfs.lookup('/g'), undefined);
  await s.vfs.settled();
});

test('a folder renamed while an upload below it is in flight waits for it; nothing comes back under the old name', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  await vfs.mkdir('/old');
  await vfs.mkdir('/old/sub');
  const w = await vfs.create('/old/sub/x');
  await vfs.write(w, Buffer.from('x'), 0);
  await s.close(w);
  ports.uploads.holdInFlight = true;
  const id = await ports.uploads.begin();
  let done = false;
  const renaming = vfs.rename('/old', '/new').then(() => (done = true));
  for (let i = 0; i < 5; i++) await Promise.resolve();
  t.false(done, 'the rename waits for the upload in flight');
  ports.uploads.finish(id!);
  await renaming;
  // At once, before any clean-up or drain: the old folder must not be there.
  t.deepEqual(vfs.readdir('/'), ['new']);
  t.deepEqual(ports.remote.folderKeys().sort(), ['/new', '/new/sub']);
  t.deepEqual([...ports.remote.snapshotFiles().keys()], ['/new/sub/x']);
  await s.drain();
  t.deepEqual(ports.remote.folderKeys().sort(), ['/new', '/new/sub']);
  t.deepEqual([...ports.remote.snapshotFiles().entries()].map(([k, f]) => [k, f.bytes.toString()]), [['/new/sub/x', 'x']]);
});

test('mv of a file whose upload is in flight: it lands, then moves; mv of another file onto the old name is not overwritten by it', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  ports.remote.upload('/c', Buffer.from('other'));
  const w = await vfs.create('/a');
  await vfs.write(w, Buffer.from('mine'), 0);
  await s.close(w);
  ports.uploads.holdInFlight = true;
  const id = await ports.uploads.begin();
  // mv a b; mv c a, as far as they get before the upload of a ends (landing although renamed).
  const steps = (async () => {
    await vfs.rename('/a', '/b');
    await vfs.rename('/c', '/a');
  })();
  await new Promise((r) => setImmediate(r));
  ports.uploads.finish(id!, { landAnyway: true });
  await steps;
  t.deepEqual(vfs.readdir('/').sort(), ['a', 'b']);
  await s.drain();
  t.deepEqual(
    [...ports.remote.snapshotFiles().entries()].map(([k, f]) => [k, f.bytes.toString()]).sort(),
    [['/a', 'other'], ['/b', 'mine']],
  );
});

test('open after close, while the writer is not released yet and its upload already removed the spool file: the uploaded bytes', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  const w = await vfs.create('/f');
  await vfs.write(w, Buffer.from('closed'), 0);
  // close(2) is FLUSH; the kernel sends RELEASE later, after close has returned.
  await vfs.flush(w);
  ports.uploads.finish((await ports.uploads.begin())!);
  await ports.uploads.settled();
  const r = await vfs.open('/f', 0);
  t.is((await vfs.read(r, 0, 100)).toString(), 'closed');
  const w2 = await vfs.open('/f', O_WRONLY);
  await vfs.write(w2, Buffer.from('C'), 0);
  await s.close(w2);
  await s.close(r);
  await vfs.release(w);
  await s.drain();
  t.is(ports.remote.snapshotFiles().get('/f')?.bytes.toString(), 'Closed');
});

test('a file rewritten from the revision it was opened at, changed meanwhile on another machine: both are kept, ours as a conflicted copy', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  ports.remote.upload('/f.txt', Buffer.from('one'));
  const w = await vfs.open('/f.txt', O_WRONLY);
  await vfs.write(w, Buffer.from('ours'), 0);
  await s.close(w);
  ports.remote.upload('/f.txt', Buffer.from('theirs'));
  await s.drain();
  t.deepEqual(
    [...ports.remote.snapshotFiles().values()].map((f) => [f.path, f.bytes.toString()]).sort(),
    [['/f (conflicted copy).txt', 'ours'], ['/f.txt', 'theirs']],
  );
});

test('our own successive versions never conflict: a writer open across its upload, a reopen while pending, a rename while pending', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  ports.remote.upload('/a', Buffer.from('0000'));
  const w = await vfs.open('/a', O_WRONLY);
  await vfs.write(w, Buffer.from('1'), 0);
  await vfs.flush(w);
  ports.uploads.finish((await ports.uploads.begin())!);
  await vfs.write(w, Buffer.from('2'), 1);
  await vfs.flush(w);
  const w2 = await vfs.open('/a', O_WRONLY);
  await vfs.write(w2, Buffer.from('3'), 2);
  await s.close(w2);
  await vfs.release(w);
  await vfs.rename('/a', '/b');
  await s.drain();
  t.deepEqual([...ports.remote.snapshotFiles().values()].map((f) => [f.path, f.bytes.toString()]), [['/b', '1230']]);
});

test('rm of a file another machine changed since this mount saw it: that newer version stays in Dropbox', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  ports.remote.upload('/g', Buffer.from('one'));
  const feed = ports.remote.onChange;
  ports.remote.onChange = () => undefined; // the change feed has not brought the next change yet
  ports.remote.upload('/g', Buffer.from('theirs'));
  ports.remote.onChange = feed;
  await vfs.unlink('/g');
  t.is(vfs.lookup('/g'), undefined);
  t.is(ports.remote.snapshotFiles().get('/g')?.bytes.toString(), 'theirs');
});

test('the change feed bringing an older revision of ours after a newer one landed: reads give the newest, a rewrite does not conflict with ourselves', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  const w = await vfs.create('/f');
  await vfs.write(w, Buffer.from('one'), 0);
  await s.close(w);
  await s.drain();
  const older = ports.catalog.lookup('/f')!;
  const w2 = await vfs.open('/f', O_WRONLY);
  await vfs.write(w2, Buffer.from('two'), 0);
  await s.close(w2);
  await s.drain();
  ports.catalog.upsert(older); // a list_folder/continue answered before the last upload, applied after it
  const r = await vfs.open('/f', 0);
  t.is((await vfs.read(r, 0, 10)).toString(), 'two');
  await s.close(r);
  const w3 = await vfs.open('/f', O_WRONLY);
  await vfs.write(w3, Buffer.from('X'), 0);
  await s.close(w3);
  await s.drain();
  t.deepEqual([...ports.remote.snapshotFiles().values()].map((f) => [f.path, f.bytes.toString()]), [['/f', 'Xwo']]);
});

test('truncate(2) of a path with a writer open on it (through another case): what the path shows is the truncated writer', async (t) => {
  const s = await sut(t);
  const { vfs } = s;
  s.ports.remote.upload('/a/f', Buffer.alloc(10, 1));
  const w = await vfs.open('/A/f', 2 /* O_RDWR */);
  await vfs.truncate('/A/F', 0);
  t.is(vfs.getattr('/a/f').size, 0);
  t.is(vfs.fgetattr(w).size, 0);
  await s.close(w);
  t.is(vfs.getattr('/a/f').size, 0);
});

test('a rename of a path onto itself is a no-op, also while the file is open for writing and after a rename through another case', async (t) => {
  const s = await sut(t);
  const { vfs, ports } = s;
  await vfs.mkdir('/b');
  const w = await vfs.create('/f');
  await vfs.write(w, Buffer.from('abc'), 0);
  await vfs.rename('/f', '/f');
  t.deepEqual(vfs.readdir('/').sort(), ['b', 'f']);
  await vfs.rename('/F', '/b/F');
  await t.throwsAsync(vfs.rename('/f', '/f'), { message: /no such file/ });
  await vfs.rename('/b/F', '/b/F');
  await s.close(w);
  await s.drain();
  t.deepEqual([...ports.remote.snapshotFiles().values()].map((f) => [f.path, f.bytes.toString()]), [['/b/F', 'abc']]);
});
