/**
 * A real kernel mount as a system under test for the namespace model (test/vfs/ops.ts): every
 * operation is a syscall (node:fs) on `MNT/<run folder>`, made by this process, several file
 * descriptors open at once; another machine's changes go to the emulator through the official
 * SDK and are waited for on the mount; a crash is kill -9 of the mount process, `fusermount -uz`
 * of the dead mount, and a new mount on the same state (its journal finishes what close
 * accepted); a drain waits until Dropbox holds what the model says (or gives up and returns
 * what it holds, for the runner to report).
 */
import { constants } from 'node:fs';
import { open, readdir, rename, mkdir, rmdir, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Dropbox } from 'dropbox';
import type { Mounted } from '../helpers/mount.js';
import { lower, nameOf, type Model } from '../vfs/model.js';
import type { Op, Sut } from '../vfs/ops.js';
import { sh, sleep, upload, waitFor } from './helpers.js';

export type RemoteTree = { files: Map<string, { path: string; bytes: Buffer }>; folders: string[] };

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
  private readonly fhs = new Map<number, { fh: FileHandle; write: boolean }>();
  private next = 1;
  private markers = 0;
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

  private fh(h: number): { fh: FileHandle; write: boolean } {
    const f = this.fhs.get(h);
    if (!f) throw errno('EBADF');
    return f;
  }

  private keep(fh: FileHandle, write: boolean): number {
    const h = this.next++;
    this.fhs.set(h, { fh, write });
    return h;
  }

  async openWrite(p: string, trunc: boolean): Promise<number> {
    // Read and write: the model reads through write handles too.
    const fh = await open(this.on(p), constants.O_RDWR | constants.O_CREAT | (trunc ? constants.O_TRUNC : 0), 0o644);
    return this.keep(fh, true);
  }

  async openRead(p: string): Promise<number> {
    const fh = await open(this.on(p), constants.O_RDONLY);
    // open(2) of a folder for reading succeeds (opendir); the model's "open a file" is EISDIR.
    if ((await fh.stat()).isDirectory()) {
      await fh.close();
      throw errno('EISDIR');
    }
    return this.keep(fh, false);
  }

  async write(h: number, off: number, data: Buffer): Promise<number> {
    return (await this.fh(h).fh.write(data, 0, data.length, off)).bytesWritten;
  }

  async read(h: number, off: number, len: number): Promise<Buffer> {
    const buf = Buffer.alloc(len);
    const { bytesRead } = await this.fh(h).fh.read(buf, 0, len, off);
    return buf.subarray(0, bytesRead);
  }

  async ftruncate(h: number, size: number): Promise<void> {
    const f = this.fh(h);
    // ftruncate(2) of a descriptor not open for writing: the kernel answers EINVAL (the model: EBADF).
    if (!f.write) throw errno('EBADF');
    await f.fh.truncate(size);
  }

  async close(h: number): Promise<void> {
    const f = this.fh(h);
    this.fhs.delete(h);
    await f.fh.close();
  }

  async fsync(h: number): Promise<void> {
    await this.fh(h).fh.sync();
  }

  truncate(p: string, size: number): Promise<void> {
    return truncate(this.on(p), size);
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

  /**
   * What the mount shows at a path, found the way a user sees it: each component matched in its
   * folder's listing (never cached by the kernel), then stat of the name as listed. A stat of
   * another case of a name would show what the kernel cached of that name for up to 5 s
   * (another inode to it): a known limit, see the test's header.
   */
  async stat(p: string): Promise<{ isFolder: boolean; size: number } | undefined> {
    let at = '';
    for (const part of p.split('/').filter(Boolean)) {
      let names: string[];
      try {
        names = await readdir(this.on(at || '/'));
      } catch (e) {
        if (codeOf(e) === 'ENOENT' || codeOf(e) === 'ENOTDIR') return undefined;
        throw e;
      }
      const name = names.find((n) => n.toLowerCase() === part.toLowerCase());
      if (name === undefined) return undefined;
      at = `${at}/${name}`;
    }
    try {
      const s = await stat(this.on(at));
      return { isFolder: s.isDirectory(), size: s.size };
    } catch (e) {
      if (codeOf(e) === 'ENOENT' || codeOf(e) === 'ENOTDIR') return undefined;
      throw e;
    }
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
  }

  async remoteUpload(p: string, bytes: Buffer): Promise<void> {
    await upload(this.dbx, this.root + p, bytes);
    await this.barrier(p, (s) => s?.isFolder === false && s.size === bytes.length);
  }

  async remoteDelete(p: string): Promise<void> {
    await this.dbx.filesDeleteV2({ path: this.root + p });
    await this.barrier(p, (s) => s === undefined);
  }

  /** Closes every descriptor this process still holds (a failed run, or a dead mount's). */
  async closeAll(): Promise<void> {
    const all = [...this.fhs.values()];
    this.fhs.clear();
    await Promise.all(all.map((f) => f.fh.close().catch(() => undefined)));
  }

  async crash(): Promise<void> {
    this.crashes++;
    const child = this.m.child();
    if (!child || child.exitCode !== null || child.signalCode !== null) throw new Error('no live mount process to kill');
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
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
    return op.k === 'rename' && want === 'EINVAL' && got === 'ENOTDIR' && model.shown(op.to)?.kind === 'file';
  }

  errnoOf(e: unknown): string {
    return codeOf(e);
  }
}
