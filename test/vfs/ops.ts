/**
 * The operations of the namespace model test, their generator (fast-check), and one runner
 * that applies a sequence to a system under test and to the Model, comparing after every step
 * (each call's result or errno, what every path of the universe shows, every folder's names,
 * the number of open handles) and, after a drain, what the remote holds.
 */
import fc from 'fast-check';
import { ErrnoResult, lower, Model, nameOf, type MFd } from './model.js';

/** Folders and files the sequences use: few enough that names collide (and differ in case only). */
export const DIRS = ['/a', '/A', '/b', '/a/c', '/b/c'];
export const FILES = ['', '/a', '/A', '/b', '/a/c'].flatMap((d) => ['f', 'F', 'g'].map((n) => `${d}/${n}`));
const ALL = [...FILES, ...DIRS];

export type Op =
  | { k: 'openW'; p: string; trunc: boolean }
  | { k: 'openR'; p: string }
  | { k: 'write'; fd: number; off: number; len: number; byte: number }
  | { k: 'read'; fd: number; off: number; len: number }
  | { k: 'ftrunc'; fd: number; size: number }
  | { k: 'close'; fd: number }
  | { k: 'fsync'; fd: number }
  | { k: 'trunc'; p: string; size: number }
  | { k: 'rename'; from: string; to: string }
  | { k: 'unlink'; p: string }
  | { k: 'mkdir'; p: string }
  | { k: 'rmdir'; p: string }
  | { k: 'remoteUp'; p: string; len: number; byte: number }
  | { k: 'remoteDel'; p: string }
  | { k: 'begin' }
  | { k: 'finish'; which: number; fail: boolean; land: boolean }
  | { k: 'drain' }
  /** kill -9 of the mount, then recovery (a real mount only) */
  | { k: 'crash' };

/** Every sequence starts here: three folders, two remote files, one uploaded and one pending. */
export const PRELUDE: Op[] = [
  { k: 'mkdir', p: '/a' },
  { k: 'mkdir', p: '/b' },
  { k: 'mkdir', p: '/a/c' },
  { k: 'remoteUp', p: '/a/f', len: 10, byte: 1 },
  { k: 'remoteUp', p: '/F', len: 7, byte: 2 },
  { k: 'openW', p: '/b/g', trunc: true },
  { k: 'write', fd: 0, off: 0, len: 12, byte: 3 },
  { k: 'close', fd: 0 },
  { k: 'drain' },
  { k: 'openW', p: '/a/c/F', trunc: true },
  { k: 'write', fd: 0, off: 0, len: 5, byte: 4 },
  { k: 'close', fd: 0 },
];

const file = fc.constantFrom(...FILES);
const dir = fc.constantFrom(...DIRS);
const fdIx = fc.nat(7);
const small = fc.nat(48);

export function opArb(o: { uploads: boolean; crashes?: boolean }): fc.Arbitrary<Op> {
  const list: fc.WeightedArbitrary<Op>[] = [
    { weight: 6, arbitrary: fc.record({ k: fc.constant('openW' as const), p: file, trunc: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('openR' as const), p: file }) },
    { weight: 6, arbitrary: fc.record({ k: fc.constant('write' as const), fd: fdIx, off: small, len: fc.integer({ min: 1, max: 24 }), byte: fc.nat(255) }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('read' as const), fd: fdIx, off: small, len: fc.integer({ min: 1, max: 64 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('ftrunc' as const), fd: fdIx, size: small }) },
    { weight: 5, arbitrary: fc.record({ k: fc.constant('close' as const), fd: fdIx }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('fsync' as const), fd: fdIx }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('trunc' as const), p: file, size: small }) },
    { weight: 5, arbitrary: fc.record({ k: fc.constant('rename' as const), from: fc.constantFrom(...ALL), to: fc.constantFrom(...ALL) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('rename' as const), from: file, to: file }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('unlink' as const), p: file }) },
    { weight: 4, arbitrary: fc.record({ k: fc.constant('mkdir' as const), p: dir }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('rmdir' as const), p: dir }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('remoteUp' as const), p: file, len: fc.integer({ min: 0, max: 30 }), byte: fc.nat(255) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('remoteDel' as const), p: file }) },
    { weight: 1, arbitrary: fc.constant({ k: 'drain' as const }) },
  ];
  if (o.uploads) {
    list.push({ weight: 3, arbitrary: fc.constant({ k: 'begin' as const }) });
    list.push({ weight: 3, arbitrary: fc.record({ k: fc.constant('finish' as const), which: fc.nat(3), fail: fc.boolean(), land: fc.boolean() }) });
  }
  if (o.crashes) list.push({ weight: 1, arbitrary: fc.constant({ k: 'crash' as const }) });
  return fc.oneof(...list);
}

/** What a test runs the sequences against (the VFS over memory ports, or a real mount). */
export interface Sut {
  openWrite(p: string, trunc: boolean): Promise<number>;
  openRead(p: string): Promise<number>;
  write(h: number, off: number, data: Buffer): Promise<number>;
  read(h: number, off: number, len: number): Promise<Buffer>;
  ftruncate(h: number, size: number): Promise<void>;
  close(h: number): Promise<void>;
  fsync(h: number): Promise<void>;
  truncate(p: string, size: number): Promise<void>;
  unlink(p: string): Promise<void>;
  mkdir(p: string): Promise<void>;
  rmdir(p: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** undefined when the path does not exist */
  stat(p: string): Promise<{ isFolder: boolean; size: number } | undefined>;
  readdir(p: string): Promise<string[]>;
  /** stat of many paths at once, where that is cheaper */
  statAll?(paths: string[]): Promise<({ isFolder: boolean; size: number } | undefined)[]>;
  openHandles(): number | undefined;
  /** Is the path's upload in flight right now? */
  uploading(p: string): boolean;
  remoteUpload(p: string, bytes: Buffer): Promise<void>;
  remoteDelete(p: string): Promise<void>;
  uploadBegin?(): Promise<void>;
  /** Ends an upload in flight; `land`: a detached one lands anyway, unless `occupied` says its path holds a file now. */
  uploadFinish?(which: number, fail: boolean, land: boolean, occupied: (pathLower: string) => boolean): void;
  /** kill -9 of the mount, its dead mount cleared, mounted again on the same state (every open descriptor is gone). */
  crash?(): Promise<void>;
  /** Uploads everything; returns what the remote holds: files (key → display path, bytes) and folder keys. */
  drain(): Promise<{ files: Map<string, { path: string; bytes: Buffer }>; folders: string[] }>;
  /** A real mount: how long the kernel may show a name's cached attributes (a mismatch is looked at again after it). */
  kernelCacheMs?: number;
  /** A real mount: another answer the kernel may give where the model's does not apply to it (the kernel sees each case of a name as another file). */
  alsoRight?(op: Op, got: string, want: string, model: Model): boolean;
  /** A case this system under test is known to get wrong (listed with its seed where defined): not run. */
  knownBug?(op: Op, model: Model): boolean;
  /** errno code of a failure */
  errnoOf(e: unknown): string;
}


async function attempt<T>(sut: Sut, f: () => Promise<T>): Promise<T | ErrnoResult> {
  try {
    return await f();
  } catch (e) {
    return new ErrnoResult(sut.errnoOf(e));
  }
}

const show = (r: unknown): string => (r instanceof ErrnoResult ? r.errno : 'OK');

export class Runner {
  readonly model = new Model();
  private readonly fds: { m: MFd; h: number }[] = [];
  readonly trace: string[] = [];
  /** Outcomes by operation ("rename OK", "rename ENOENT", …), to see what the sequences exercised. */
  static readonly tally = new Map<string, number>();

  private count(op: Op, got: unknown): void {
    let k = `${op.k} ${show(got)}`;
    if (op.k === 'rename' && show(got) === 'OK') {
      const s = this.model.shown(op.to);
      k += op.from.toLowerCase() === op.to.toLowerCase() ? ' (case-only)' : s?.kind === 'folder' ? ' (folder)' : '';
    }
    Runner.tally.set(k, (Runner.tally.get(k) ?? 0) + 1);
  }

  constructor(private readonly sut: Sut) {}

  private fail(step: string, what: string): never {
    throw new Error(`${what}\nafter: ${step}\ntrace:\n  ${this.trace.join('\n  ')}`);
  }

  private expectSame(step: string, got: unknown, want: unknown): void {
    const op = JSON.parse(step.split('\n')[0]!) as Op;
    this.count(op, got);
    if (show(got) !== show(want) && !this.sut.alsoRight?.(op, show(got), show(want), this.model)) this.fail(step, `result ${show(got)}, model says ${show(want)}`);
  }

  async step(op: Op): Promise<void> {
    const s = this.sut;
    const m = this.model;
    const fdOf = (i: number): { m: MFd; h: number } | undefined => this.fds[i % Math.max(1, this.fds.length)];
    const label = JSON.stringify(op);
    if (s.knownBug?.(op, m)) return;
    this.trace.push(label);
    switch (op.k) {
      case 'openW':
      case 'openR': {
        const want = op.k === 'openW' ? m.openWrite(op.p, op.trunc) : m.openRead(op.p);
        const got = await attempt(s, () => (op.k === 'openW' ? s.openWrite(op.p, op.trunc) : s.openRead(op.p)));
        if (want instanceof ErrnoResult || got instanceof ErrnoResult) {
          // The model opened a handle the SUT did not (or the reverse): a mismatch either way.
          this.expectSame(label, got, want);
          break;
        }
        this.fds.push({ m: want, h: got });
        this.count(op, got);
        break;
      }
      case 'write': {
        const f = fdOf(op.fd);
        if (!f) return void this.trace.pop();
        const data = Buffer.alloc(op.len, op.byte);
        const want = m.write(f.m, op.off, data);
        const got = await attempt(s, () => s.write(f.h, op.off, data));
        this.expectSame(label, got, want);
        if (typeof got === 'number' && got !== op.len) this.fail(label, `wrote ${got} of ${op.len} bytes`);
        break;
      }
      case 'read': {
        const f = fdOf(op.fd);
        if (!f) return void this.trace.pop();
        const want = m.read(f.m, op.off, op.len);
        const got = await attempt(s, () => s.read(f.h, op.off, op.len));
        if (got instanceof ErrnoResult) this.fail(label, `read failed: ${got.errno}`);
        if (want && !want.equals(got)) this.fail(label, `read ${got.toString('hex')}, model says ${want.toString('hex')}`);
        break;
      }
      case 'ftrunc': {
        const f = fdOf(op.fd);
        if (!f) return void this.trace.pop();
        this.expectSame(label, await attempt(s, () => s.ftruncate(f.h, op.size)), m.ftruncate(f.m, op.size));
        break;
      }
      case 'fsync': {
        const f = fdOf(op.fd);
        if (!f) return void this.trace.pop();
        m.fsync(f.m);
        this.expectSame(label, await attempt(s, () => s.fsync(f.h)), undefined);
        break;
      }
      case 'close': {
        const f = fdOf(op.fd);
        if (!f) return void this.trace.pop();
        this.fds.splice(this.fds.indexOf(f), 1);
        m.close(f.m);
        this.expectSame(label, await attempt(s, () => s.close(f.h)), undefined);
        break;
      }
      case 'trunc':
        this.expectSame(label, await attempt(s, () => s.truncate(op.p, op.size)), m.truncate(op.p, op.size));
        break;
      case 'unlink':
        this.expectSame(label, await attempt(s, () => s.unlink(op.p)), m.unlink(op.p));
        break;
      case 'mkdir':
        this.expectSame(label, await attempt(s, () => s.mkdir(op.p)), m.mkdir(op.p));
        break;
      case 'rmdir':
        this.expectSame(label, await attempt(s, () => s.rmdir(op.p)), m.rmdir(op.p));
        break;
      case 'rename': {
        const uploading = s.uploading(op.from);
        const want = m.rename(op.from, op.to, uploading);
        this.expectSame(label, await attempt(s, () => s.rename(op.from, op.to)), want);
        break;
      }
      case 'remoteUp':
        if (!m.remoteWritable(op.p)) return void this.trace.pop();
        m.remoteUpload(op.p, Buffer.alloc(op.len, op.byte));
        await s.remoteUpload(op.p, Buffer.alloc(op.len, op.byte));
        break;
      case 'remoteDel':
        if (!m.remoteWritable(op.p) || !m.files.has(lower(op.p))) return void this.trace.pop();
        m.remoteDelete(op.p);
        await s.remoteDelete(op.p);
        break;
      case 'begin':
        if (!s.uploadBegin) return void this.trace.pop();
        await s.uploadBegin();
        break;
      case 'finish':
        if (!s.uploadFinish) return void this.trace.pop();
        s.uploadFinish(op.which, op.fail, op.land, (pl) => m.shown(pl)?.kind === 'file' || m.nodes.has(pl));
        break;
      case 'drain':
        await this.drainAndCompare(label);
        break;
      case 'crash':
        if (!s.crash) return void this.trace.pop();
        this.fds.length = 0;
        m.crash();
        await s.crash();
        await this.drainAndCompare(label);
        break;
    }
    await this.checkShown(label);
  }

  /** Every path of the universe shows what the model says; every folder lists the model's names. */
  async checkShown(label: string): Promise<void> {
    let diff = await this.shownDiff();
    const wait = this.sut.kernelCacheMs;
    if (diff && wait !== undefined) {
      // A real mount: the kernel caches a name's attributes and lookup for a while, each case
      // of a name apart (another inode): once that has passed, what it shows must be right.
      const first = diff.replace(/^(readdir )?\/\S*/, '$1P').replace(/\d+/g, 'N').replace(/\[.*/, '');
      const end = Date.now() + wait;
      while (diff && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 200));
        diff = await this.shownDiff();
      }
      if (!diff) Runner.tally.set(`stale kernel cache (${first} after ${label.slice(0, 60)})`, (Runner.tally.get(`stale kernel cache (${first} after ${label.slice(0, 60)})`) ?? 0) + 1);
    }
    if (diff) this.fail(label, diff);
    const open = this.sut.openHandles();
    if (open !== undefined && open !== this.fds.length) this.fail(label, `${open} handles open, model says ${this.fds.length}`);
  }

  private async shownDiff(): Promise<string | undefined> {
    const paths = [...FILES, ...DIRS];
    const all = this.sut.statAll ? await this.sut.statAll(paths) : await Promise.all(paths.map((p) => this.sut.stat(p)));
    for (const [i, p] of paths.entries()) {
      const want = this.model.shown(p);
      const got = all[i];
      if (!want && !got) continue;
      if (!want || !got) return `${p}: ${got ? 'exists' : 'missing'}, model says ${want ? 'exists' : 'missing'}`;
      if (got.isFolder !== (want.kind === 'folder')) return `${p}: folder=${got.isFolder}, model says ${want.kind}`;
      if (want.kind === 'file' && got.size !== want.bytes.length) return `${p}: size ${got.size}, model says ${want.bytes.length}`;
    }
    for (const d of ['', ...DIRS]) {
      if (this.model.shown(d)?.kind !== 'folder') continue;
      const got = (await this.sut.readdir(d || '/')).sort();
      const want = this.model.children(lower(d));
      const norm = (names: string[]): string[] => names.map((n) => (this.loose(d, n) ? n.toLowerCase() : n)).sort();
      if (JSON.stringify(norm(got)) !== JSON.stringify(norm(want))) return `readdir ${d || '/'}: ${JSON.stringify(got)}, model says ${JSON.stringify(want)}`;
    }
    return undefined;
  }

  private loose(d: string, name: string): boolean {
    return this.model.looseCase.has(lower(`${d}/${name}`));
  }

  /** Drains the uploads and compares what the remote holds with the model's files and folders. */
  async drainAndCompare(label: string): Promise<void> {
    const { files, folders } = await this.sut.drain();
    const m = this.model;
    const want = [...m.files.keys()].sort();
    const got = [...files.keys()].sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) this.fail(label, `remote files ${JSON.stringify(got)}, model says ${JSON.stringify(want)}`);
    for (const [k, f] of m.files) {
      const r = files.get(k)!;
      if (!r.bytes.equals(f.bytes)) this.fail(label, `remote ${k}: ${r.bytes.toString('hex')}, model says ${f.bytes.toString('hex')}`);
      if (nameOf(r.path) !== nameOf(f.path) && !m.looseCase.has(k)) this.fail(label, `remote ${k} is named ${nameOf(r.path)}, model says ${nameOf(f.path)}`);
    }
    const wantFolders = [...m.folders.keys()].sort();
    if (JSON.stringify([...folders].sort()) !== JSON.stringify(wantFolders)) this.fail(label, `remote folders ${JSON.stringify(folders.sort())}, model says ${JSON.stringify(wantFolders)}`);
    m.dirty.clear();
  }

  /** Closes every handle, drains, compares: the end of every sequence. */
  async finish(): Promise<void> {
    while (this.fds.length > 0) await this.step({ k: 'close', fd: 0 });
    await this.step({ k: 'drain' });
  }
}
