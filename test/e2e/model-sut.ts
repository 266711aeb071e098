/**
 * A real kernel mount as a system under test for the namespace model (test/vfs/ops.ts): every
 * operation is a syscall (node:fs) on `MNT/<run folder>`, made by this process, several file
 * descriptors open at once; another machine's changes go to the emulator through the official
 * SDK and are waited for on the mount; a crash is kill -9 of the mount process, `fusermount -uz`
 * of the dead mount, and a new mount on the same state (its journal finishes what close
 * accepted); a drain waits until Dropbox holds what the model says (or gives up and returns
 * what it holds, for the runner to report).
 */
import { mkdir, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Dropbox } from 'dropbox';
import type { Mounted } from '../helpers/mount.js';
import { dirOf, lower, nameOf, type Model } from '../vfs/model.js';
import type { Op, Sut } from '../vfs/ops.js';
import { FdHolder } from './fd-holder.js';
import { sh, sleep, upload, waitFor } from './helpers.js';

export type RemoteTree = { files: Map<string, { path: string; bytes: Buffer }>; folders: string[] };

/** truncate(2) of a path; prints the errno's name when it fails. */
const TRUNCATE = 'truncate($ARGV[0], $ARGV[1]) and exit 0; for my $k (keys %!) { if ($!{$k}) { print $k; last } } exit 1';

/** Where remote-change barriers go: outside every run folder. */
const MARKERS = '/zz-markers';

function codeOf(e: unknown): string {
  return (e as { code?: string })?.code ?? (e as Error)?.message ?? String(e);
}

const errno = (code: string): Error => Object.assign(new Error(code), { code });

/** What a remote folder holds, relative to it (keys lower case), files with their bytes. */
export async function remoteTree(dbx: Dropbox, root: string): Promise<RemoteTree> {
  const files = new Map<string, { path: string; bytes: Buffer }>();
  const folders: string[] = [];
  let r;
  try {
    r = (await dbx.filesListFolder({ path: root, recursive: true })).result;
  } catch (e) {
    if (/not_found/.test(JSON.stringify((e as { error?: unknown }).error ?? ''))) return { files, folders };
    throw e;
  }
  const entries = [...r.entries];
  while (r.has_more) {
    r = (await dbx.filesListFolderContinue({ cursor: r.cursor })).result;
    entries.push(...r.entries);
  }
  const cut = root.length;
  for (const e of entries) {
    const key = e.path_lower!.slice(cut);
    if (key === '') continue;
    if (e['.tag'] === 'folder') folders.push(key);
    else if (e['.tag'] === 'file') {
      const d = await dbx.filesDownload({ path: e.path_lower! });
      files.set(key, { path: e.path_display!.slice(cut), bytes: (d.result as unknown as { fileBinary: Buffer }).fileBinary });
    }
  }
  return { files, folders: folders.sort() };
}

/** Does the remote tree hold exactly the model's files (bytes, name case) and folders? */
export function sameAsModel(t: RemoteTree, m: { files: Map<string, { path: string; bytes: Buffer }>; folders: Map<string, string> | string[]; looseCase?: Set<string> }): boolean {
  const wantFolders = Array.isArray(m.folders) ? [...m.folders].sort() : [...m.folders.keys()].sort();
  if (JSON.stringify(t.folders) !== JSON.stringify(wantFolders)) return false;
  if (t.files.size !== m.files.size) return false;
  for (const [k, f] of m.files) {
    const r = t.files.get(k);
    if (!r || !r.bytes.equals(f.bytes)) return false;
    if (nameOf(r.path) !== nameOf(f.path) && !m.looseCase?.has(k)) return false;
  }
  return true;
}

export class MountSut implements Sut {
  private readonly fds = new Map<number, { fd: number; write: boolean }>();
  private holder = new FdHolder();
  private next = 1;
  private markers = 0;
  /** Set by the test: the mount runs the fuse-native adapter (libfuse 2 hides open targets itself). */
  libfuse2Hides = false;
  /** Set by the test for each run: its folder (Dropbox path, '/r7') and the runner's model. */
  root = '';
  model: Model | undefined;
  crashes = 0;
  /** The mount's entryTimeout and attrTimeout (5 s, src/fuse/index.ts), and a margin. */
  readonly kernelCacheMs = 5_500;

  constructor(
    private readonly m: Mounted,
    private readonly dbx: Dropbox,
    private readonly drainDeadlineMs: number,
  ) {}

  private on(p: string): string {
    return path.join(this.m.dir, this.root, p);
  }

  private fd(h: number): { fd: number; write: boolean } {
    const f = this.fds.get(h);
    if (!f) throw errno('EBADF');
    return f;
  }

  private keep(fd: number, write: boolean): number {
    const h = this.next++;
    this.fds.set(h, { fd, write });
    return h;
  }

  async openWrite(p: string, trunc: boolean): Promise<number> {
    // Read and write: the model reads through write handles too.
    return this.keep(await this.holder.call<number>('openW', this.on(p), trunc), true);
  }

  async openRead(p: string): Promise<number> {
    return this.keep(await this.holder.call<number>('openR', this.on(p)), false);
  }

  write(h: number, off: number, data: Buffer): Promise<number> {
    return this.holder.call<number>('write', this.fd(h).fd, off, data.toString('base64'));
  }

  async read(h: number, off: number, len: number): Promise<Buffer> {
    return Buffer.from(await this.holder.call<string>('read', this.fd(h).fd, off, len), 'base64');
  }

  async ftruncate(h: number, size: number): Promise<void> {
    const f = this.fd(h);
    // ftruncate(2) of a descriptor not open for writing: the kernel answers EINVAL (the model: EBADF).
    if (!f.write) throw errno('EBADF');
    await this.holder.call('ftruncate', f.fd, size);
  }

  async close(h: number): Promise<void> {
    const f = this.fd(h);
    this.fds.delete(h);
    await this.holder.call('close', f.fd);
  }

  async fsync(h: number): Promise<void> {
    await this.holder.call('fsync', this.fd(h).fd);
  }

  /**
   * truncate(2) of the path itself (perl's truncate): node's truncate(path) is an open, an
   * ftruncate and a close, another descriptor, which on this mount writes a copy of its own
   * while another writer is open (README: close).
   */
  async truncate(p: string, size: number): Promise<void> {
    const r = await sh('perl', ['-e', TRUNCATE, this.on(p), String(size)], { timeoutMs: 60_000 });
    if (r.code !== 0) throw errno(r.stdout.trim() || `truncate: ${r.stderr}`);
  }

  unlink(p: string): Promise<void> {
    return unlink(this.on(p));
  }

  mkdir(p: string): Promise<void> {
    return mkdir(this.on(p));
  }

  rmdir(p: string): Promise<void> {
    return rmdir(this.on(p));
  }

  rename(from: string, to: string): Promise<void> {
    return rename(this.on(from), this.on(to));
  }

  async stat(p: string): Promise<{ isFolder: boolean; size: number } | undefined> {
    return (await this.statAll([p]))[0];
  }

  /**
   * What the mount shows at these paths: GNU stat --cached=never (statx with
   * AT_STATX_FORCE_SYNC), so the kernel asks the mount each time instead of answering from what
   * it cached of a name (for 5 s, each case of a name being another inode to it). One process
   * for all the paths of a step.
   */
  async statAll(paths: string[]): Promise<({ isFolder: boolean; size: number } | undefined)[]> {
    const r = await sh('stat', ['--cached=never', '-c', '%s|%F|%n', '--', ...paths.map((p) => this.on(p))], { timeoutMs: 60_000 });
    const found = new Map<string, { isFolder: boolean; size: number }>();
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      const [size, kind, name] = line.split('|');
      found.set(name!, { isFolder: kind === 'directory', size: Number(size) });
    }
    for (const line of r.stderr.split('\n').filter(Boolean)) {
      if (!/No such file or directory|Not a directory/.test(line)) throw new Error(`stat on the mount: ${r.stderr}`);
    }
    if (r.code !== 0 && r.stderr.trim() === '') throw new Error(`stat on the mount exited with ${r.code}`);
    return paths.map((p) => found.get(this.on(p)));
  }

  readdir(p: string): Promise<string[]> {
    return readdir(this.on(p));
  }

  openHandles(): undefined {
    return undefined;
  }

  /** Unknown from outside: a case-only rename of a file with bytes not yet in Dropbox may end in either case. */
  uploading(p: string): boolean {
    return this.model?.dirty.has(lower(p)) ?? false;
  }

  /**
   * Another machine's change is seen by the mount once a marker uploaded after it is (the change
   * feed is in order), and the kernel has let go of what it cached of the path (attributes and
   * names are cached for a second).
   */
  private async barrier(p: string, want: (s: { isFolder: boolean; size: number } | undefined) => boolean): Promise<void> {
    const marker = `${MARKERS}/m${++this.markers}`;
    await upload(this.dbx, marker, Buffer.alloc(0));
    await waitFor(`marker ${marker} on the mount`, () => stat(path.join(this.m.dir, marker)).then(() => true), 30_000, 20);
    await waitFor(`${this.root}${p} on the mount as another machine left it`, async () => (want(await this.stat(p)) ? true : undefined), 30_000, 20);
    // The kernel may still hold names of the path's other cases (each another name to it, for
    // the entry timeout): what it does through one that is stale is answered ESTALE by the
    // mount, and it looks again (src/fuse/stale.ts). Nothing is dropped here.
  }

  /**
   * Another machine writes under the names as they are (the emulator gives an overwrite the
   * case of the path it was sent; what Dropbox does there is unverified, and not what this tests).
   */
  async remoteUpload(p: string, bytes: Buffer): Promise<void> {
    const m = this.model!;
    const asIs = m.files.get(lower(p))?.path ?? `${m.shown(dirOf(p))?.path ?? dirOf(p)}/${nameOf(p)}`;
    await upload(this.dbx, this.root + asIs, bytes);
    await this.barrier(p, (s) => s?.isFolder === false && s.size === bytes.length);
  }

  /**
   * The kernel may hold the deleted name (or another case of it) as a file for the entry
   * timeout, and decides some calls from that alone (`mv f dir` is EISDIR without asking the
   * mount): the mount promises another machine's changes within that time (README
   * Semantics), so the test waits it out instead of dropping the kernel's caches.
   */
  async remoteDelete(p: string): Promise<void> {
    await this.dbx.filesDeleteV2({ path: this.root + p });
    await this.barrier(p, (s) => s === undefined);
    await sleep(this.kernelCacheMs);
  }

  /** Closes every descriptor still open (a failed run's): the holder process goes, a new one comes when needed. */
  async closeAll(): Promise<void> {
    this.fds.clear();
    await this.holder.stop();
  }

  async crash(): Promise<void> {
    this.crashes++;
    const child = this.m.child();
    if (!child || child.exitCode !== null || child.signalCode !== null) throw new Error('no live mount process to kill');
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    // Only now the descriptors go (their closes reach no one: the mount is dead).
    await this.closeAll();
    const u = await sh('fusermount', ['-uz', this.m.dir], { timeoutMs: 30_000 });
    if (u.code !== 0) throw new Error(`fusermount -uz of the dead mount: ${u.stderr}`);
    await this.m.remount();
  }

  /** Waits until Dropbox holds what the model says (the uploads drained), or gives up and returns what it holds. */
  async drain(): Promise<RemoteTree> {
    const m = this.model!;
    const end = Date.now() + this.drainDeadlineMs;
    for (;;) {
      const t = await remoteTree(this.dbx, this.root);
      if (sameAsModel(t, m) || Date.now() > end) return t;
      await sleep(100);
    }
  }

  /**
   * The kernel checks a rename before the mount sees it, each case of a name being another
   * file to it: a folder renamed onto a file below itself through another case (`mv a A/f`) is
   * ENOTDIR there (a folder onto a file), where the model, seeing one file, says EINVAL.
   */
  alsoRight(op: Op, got: string, want: string, model: Model): boolean {
    if (op.k !== 'rename') return false;
    if (want === 'EINVAL' && got === 'ENOTDIR' && model.shown(op.to)?.kind === 'file') return true;
    // A target that is an ancestor of the source: the kernel says ENOTEMPTY before it looks at kinds (`mv A/f A`).
    if (want === 'EISDIR' && got === 'ENOTEMPTY' && lower(op.from).startsWith(`${lower(op.to)}/`)) return true;
    // fuse-native only (libfuse 2 cannot invalidate the kernel's entries): for up to 5 s the
    // kernel may still hold a removed source under another case as a file and refuse `mv F dir`
    // itself (seed 191290567, path 29:3:2:5:5:8:8:5: `mv f a/c/F; mv F a/c`), with ENOTEMPTY
    // when the target is the source's own folder (seeds 661650591, path 22:2:0:4:10:5: `rm
    // a/c/F; mv a/c/f a/c`, the kernel holding a/c/f from a stat; 813793403, path
    // 23:5:4:5:4:6:5). README: names in other cases.
    const refused = got === 'EISDIR' || got === 'ENOTDIR' || (got === 'ENOTEMPTY' && lower(op.from).startsWith(`${lower(op.to)}/`));
    return this.libfuse2Hides && want === 'ENOENT' && refused && !model.shown(op.from);
  }

  /**
   * Known bugs of the fuse-native adapter (libfuse 2's high-level API hides an open target as
   * `.fuse_hidden…` before it calls the mount's rename, so the mount cannot tell it from a
   * removal), not run there so that the rest is checked; each with the seed that found it
   * (SREG_MODEL_SEED=… SREG_MODEL_PATH=… of test/e2e/model-mount.test.ts). The native adapter
   * decides the hiding itself and runs them (src/fuse3/ops.ts, RENAME).
   * - a case-only rename (`mv F f`) while the file is open under the target's case: the hide of
   *   the "existing target" `f` removes the file itself; the rename then fails ENOENT
   *   (seed 1194942342, path 1:2:0:1:3:8:8:3:3). Skipped: case-only renames of an open file.
   * - the same hiding before a rename that then fails: `mv a/F A/g` with g open and a/F just
   *   removed through another case (the kernel still had a/F cached): the rename answers ENOENT,
   *   and g is gone (seed 280835310, path 17:2:3:4:6:9:15:15:8:8). Skipped: renames of a
   *   missing source onto an open file.
   * - `mv f f` after `mv F b/F` (seed 768772662, path 17:1:3:5:5:8:9:8:8:8:8:6:6:5): the
   *   kernel still holds `f` (the stale other case), revalidates the target, finds it gone and
   *   sends RENAME f → f; libfuse 2's high-level rename locks the source and the target node,
   *   the same node, and waits for itself: the call never reaches the mount and never returns.
   *   The native adapter answers it (ESTALE: the source is gone, so ENOENT). Skipped: a rename
   *   onto its own name.
   */
  knownBug(op: Op, model: Model): boolean {
    if (!this.libfuse2Hides) return false;
    if (op.k !== 'rename') return false;
    if (op.from === op.to) return true;
    const open = (p: string): boolean => (model.nodes.get(lower(p))?.refs ?? 0) > 0;
    if (lower(op.from) === lower(op.to)) return open(op.from);
    // libfuse's nodes are names: an open file renamed away leaves its old name "open" to
    // libfuse, which hides that name (the moved file itself) when it is a later target
    // (seed 1927088207: `A/F` open, `mv a/f f`, `mv f A/F` answers ENOENT). Skipped: renames of an open file.
    return open(op.from) || (!model.shown(op.from) && open(op.to));
  }

  errnoOf(e: unknown): string {
    return codeOf(e);
  }
}
