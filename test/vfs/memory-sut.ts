/** The VFS over the in-memory ports (src/vfs/memory), as a system under test for ops.ts. */
import { constants } from 'node:fs';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { errnoOf, Vfs } from '../../src/vfs/index.js';
import { memoryVfsPorts, type MemoryPorts } from '../../src/vfs/memory/index.js';
import type { Sut } from './ops.js';

export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_TRUNC = 0o1000;

export class MemorySut implements Sut {
  readonly ports: MemoryPorts;
  readonly vfs: Vfs;

  constructor(readonly spoolDir: string) {
    this.ports = memoryVfsPorts(spoolDir);
    this.vfs = new Vfs(this.ports.options);
  }

  async openWrite(p: string, trunc: boolean): Promise<number> {
    // What the kernel does for open(O_WRONLY|O_CREAT[|O_TRUNC]): create when the name is missing.
    if (this.vfs.lookup(p)) return this.vfs.open(p, O_WRONLY | (trunc ? O_TRUNC : 0));
    return this.vfs.create(p);
  }

  openRead(p: string): Promise<number> {
    return this.vfs.open(p, 0);
  }

  write(h: number, off: number, data: Buffer): Promise<number> {
    return this.vfs.write(h, data, off);
  }

  read(h: number, off: number, len: number): Promise<Buffer> {
    return this.vfs.read(h, off, len);
  }

  ftruncate(h: number, size: number): Promise<void> {
    return this.vfs.ftruncate(h, size);
  }

  async close(h: number): Promise<void> {
    try {
      await this.vfs.flush(h);
    } finally {
      await this.vfs.release(h);
    }
  }

  /** What the FUSE layer does for fsync(2): a flush (src/fuse/ops.ts). */
  fsync(h: number): Promise<void> {
    return this.vfs.flush(h);
  }

  truncate(p: string, size: number): Promise<void> {
    return this.vfs.truncate(p, size);
  }

  unlink(p: string): Promise<void> {
    return this.vfs.unlink(p);
  }

  mkdir(p: string): Promise<void> {
    return this.vfs.mkdir(p);
  }

  rmdir(p: string): Promise<void> {
    return this.vfs.rmdir(p);
  }

  async rename(from: string, to: string): Promise<void> {
    // What the kernel does for a name onto itself (the same string): nothing, once it exists.
    if (from === to) return void this.vfs.getattr(from);
    await this.vfs.rename(from, to);
  }

  stat(p: string): Promise<{ isFolder: boolean; size: number } | undefined> {
    const e = this.vfs.lookup(p);
    return Promise.resolve(e && { isFolder: e.isFolder, size: e.size });
  }

  readdir(p: string): Promise<string[]> {
    return Promise.resolve(this.vfs.readdir(p));
  }

  openHandles(): number {
    return this.vfs.openCount();
  }

  uploading(p: string): boolean {
    return this.ports.uploads.pending(p.toLowerCase())?.state === 'uploading';
  }

  remoteUpload(p: string, bytes: Buffer): Promise<void> {
    this.ports.remote.upload(p, bytes);
    return Promise.resolve();
  }

  remoteDelete(p: string): Promise<void> {
    this.ports.remote.deleteNow(p);
    return Promise.resolve();
  }

  async uploadBegin(): Promise<void> {
    await this.ports.uploads.begin();
  }

  uploadFinish(which: number, fail: boolean, land: boolean, occupied: (pathLower: string) => boolean): void {
    this.ports.uploads.landDetached = land;
    const ids = this.ports.uploads.inFlight();
    if (ids.length === 0) return;
    const id = ids[which % ids.length]!;
    const job = this.ports.uploads.job(id);
    // Known gap: a detached upload landing on a path that holds another file now overwrites it
    // (mode overwrite) before the stray is seen; not generated (see the report of issue 7).
    this.ports.uploads.finish(id, { fail, landAnyway: land && job !== undefined && !occupied(job.pathLower) });
  }

  async drain(): Promise<{ files: Map<string, { path: string; bytes: Buffer }>; folders: string[] }> {
    await this.ports.uploads.drain();
    await this.vfs.settled();
    await this.ports.uploads.settled();
    return { files: this.ports.remote.snapshotFiles(), folders: this.ports.remote.folderKeys() };
  }

  errnoOf(e: unknown): string {
    return errnoOf(e);
  }
}

/**
 * A fresh spool folder per test file (in /dev/shm where there is one: the VFS fsyncs spool
 * files at every close, which thousands of sequences would wait for on a disk); removed at the end.
 */
export async function spoolFolder(): Promise<{ dir: string; files: () => Promise<string[]>; remove: () => Promise<void> }> {
  const base = await access('/dev/shm', constants.W_OK).then(() => '/dev/shm', () => tmpdir());
  const dir = await mkdtemp(path.join(base, 'sreg-vfs-spool-'));
  return { dir, files: () => readdir(dir), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A MemorySut on a spool folder of its own, removed when the test ends. */
export async function memorySut(t: { teardown(fn: () => unknown): void }): Promise<MemorySut> {
  const spool = await spoolFolder();
  t.teardown(spool.remove);
  return new MemorySut(spool.dir);
}
