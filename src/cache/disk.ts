/**
 * Block files: `<dir>/<rev>/<index>`, written to a temporary name and renamed, read with
 * positional reads through the handle cache, removed in the background. A removal of a path
 * finishes before a new block file is renamed onto that path, so an eviction can never delete
 * the block that replaced it. A written file's stamp (`ino:size:mtime ns`, from its handle once
 * written) and a sealed file's identity (the stamp and its ctime in ns, after an fsync) are what
 * kept.ts compares to trust a kept block without reading it.
 */
import type { BigIntStats } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { BLOCK_FILE_NAME, blockPath, blockRange, PROBE_FILE_NAME, probeFileName, REV_DIR_NAME, revDir, TEMP_FILE_NAME } from './blocks.js';
import { bufferFor, readFully } from '../util/read.js';
import { DIRECT_FLAGS, type DirectWrites } from './direct.js';
import { CacheError } from './errors.js';
import { FdCache } from './fds.js';

export interface ScanResult {
  /** Paths of block files found. */
  blocks: Set<string>;
  /** Temporary files left by a crash. */
  temps: string[];
  /** Rev folders found. */
  dirs: string[];
}

export class BlockFiles {
  private readonly knownDirs = new Set<string>();
  private readonly pendingUnlinks = new Map<string, Promise<void>>();
  private readonly fds: FdCache;
  private seq = 0;

  constructor(
    readonly dir: string,
    private readonly log: (line: string) => void,
    maxOpenFiles = 32,
    /** Direct writes of the data that sits in its aligned buffers (direct.ts). */
    private readonly direct?: DirectWrites,
  ) {
    this.fds = new FdCache(maxOpenFiles);
  }

  path(rev: string, index: number): string {
    return blockPath(this.dir, rev, index);
  }

  /** Writes a block file; returns its stamp (see fileStamp). */
  async write(rev: string, index: number, data: Uint8Array): Promise<string> {
    const folder = revDir(this.dir, rev);
    const final = this.path(rev, index);
    const tmp = `${final}.tmp-${process.pid}-${++this.seq}`;
    let stamp: string;
    try {
      if (!this.knownDirs.has(folder)) {
        await mkdir(folder, { recursive: true });
        this.knownDirs.add(folder);
      }
      stamp = await writeWhole(tmp, data, this.direct);
      await this.pendingUnlinks.get(final);
      await rename(tmp, final);
    } catch (e) {
      this.knownDirs.delete(folder);
      await rm(tmp, { force: true }).catch(() => undefined);
      throw e;
    }
    this.fds.invalidate(final);
    return stamp;
  }

  /**
   * Makes a block file durable (fsync) and returns its identity, or undefined if it is not the
   * file whose stamp is `stamp` any more (or cannot be synced).
   */
  async seal(rev: string, index: number, stamp: string): Promise<string | undefined> {
    let fh: FileHandle | undefined;
    try {
      fh = await open(this.path(rev, index), 'r');
      await fh.sync();
      const st = await fh.stat({ bigint: true });
      return fileStamp(st) === stamp ? fileIdentity(st) : undefined;
    } catch {
      return undefined;
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /** The identity of a block file now (undefined if it cannot be stat'ed). */
  async identity(rev: string, index: number): Promise<string | undefined> {
    try {
      return fileIdentity(await stat(this.path(rev, index), { bigint: true }));
    } catch {
      return undefined;
    }
  }

  /**
   * Bytes [from, to) of a block file, into `into` when given (its first to - from bytes: no
   * allocation, no copy); rejects (code ESHORT) if the file is shorter.
   */
  read(rev: string, index: number, from: number, to: number, into?: Buffer): Promise<Buffer> {
    const file = this.path(rev, index);
    return this.fds.use(file, async (fh) => {
      const out = bufferFor(to - from, into);
      if ((await readFully(fh, out, from)) < out.length) throw Object.assign(new Error(`${file} is shorter than its index says`), { code: 'ESHORT' });
      return out;
    });
  }

  /** Removes a block file in the background (tracked until done). */
  remove(rev: string, index: number): void {
    this.removePath(this.path(rev, index));
  }

  removePath(file: string): void {
    this.fds.invalidate(file);
    const job: Promise<void> = (this.pendingUnlinks.get(file) ?? Promise.resolve())
      .then(() => unlink(file))
      .catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') this.log(`cache: cannot remove ${file}: ${e.message}`);
      })
      .finally(() => {
        if (this.pendingUnlinks.get(file) === job) this.pendingUnlinks.delete(file);
      });
    this.pendingUnlinks.set(file, job);
  }

  /** Waits for the removals in progress. */
  async settle(): Promise<void> {
    while (this.pendingUnlinks.size > 0) await Promise.all([...this.pendingUnlinks.values()]);
  }

  /** What the cache folder holds (names that are not the cache's are left alone). */
  async scan(): Promise<ScanResult> {
    const out: ScanResult = { blocks: new Set(), temps: [], dirs: [] };
    for (const d of await readdir(this.dir, { withFileTypes: true })) {
      // A crash's probe file (ours may be in use: DirectWrites.prepare runs alongside).
      if (d.isFile() && PROBE_FILE_NAME.test(d.name) && d.name !== probeFileName(process.pid)) out.temps.push(path.join(this.dir, d.name));
      if (!d.isDirectory() || !REV_DIR_NAME.test(d.name)) continue;
      const folder = path.join(this.dir, d.name);
      out.dirs.push(folder);
      for (const f of await readdir(folder, { withFileTypes: true })) {
        if (!f.isFile()) continue;
        if (BLOCK_FILE_NAME.test(f.name)) out.blocks.add(path.join(folder, f.name));
        else if (TEMP_FILE_NAME.test(f.name)) out.temps.push(path.join(folder, f.name));
      }
    }
    return out;
  }

  /** Removes rev folders that are empty (others stay). */
  async removeEmptyDirs(dirs: string[]): Promise<void> {
    await this.settle();
    for (const folder of dirs) {
      await rmdir(folder).catch(() => undefined);
      this.knownDirs.delete(folder);
    }
  }

  closeFiles(): void {
    this.fds.closeAll();
  }
}

/**
 * Writes `data` as a new file in as few write calls as the kernel takes (one for a 4 MiB block),
 * with O_DIRECT when it sits in one of the aligned buffers (direct.ts), else through the page cache:
 * fs.promises.writeFile writes in 512 KiB pieces, eight trips through the thread pool per block
 * (3.6 % of the mount's event loop on a cold read, profiled with scripts/bench-cold.sh).
 */
async function writeWhole(file: string, data: Uint8Array, direct?: DirectWrites): Promise<string> {
  if (direct?.aligned(data)) {
    try {
      return await writeNew(file, direct.padded(data), DIRECT_FLAGS, data.length);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      direct.refused();
    }
  }
  return writeNew(file, data, 'w', data.length);
}

/** Writes `bytes` as the new file `file` (opened with `flags`), cut to `length`; its stamp. */
async function writeNew(file: string, bytes: Uint8Array, flags: string | number, length: number): Promise<string> {
  const fh = await open(file, flags, 0o666);
  try {
    for (let off = 0; off < bytes.length; ) {
      const { bytesWritten } = await fh.write(bytes, off, bytes.length - off, off);
      if (bytesWritten <= 0) throw Object.assign(new Error(`${file}: the disk took no bytes`), { code: 'EIO' });
      off += bytesWritten;
    }
    if (bytes.length !== length) await fh.truncate(length);
    return fileStamp(await fh.stat({ bigint: true }));
  } finally {
    await fh.close();
  }
}

/** What identifies the file a block was written to: inode, size and modification time (ns). */
export const fileStamp = (st: BigIntStats): string => `${st.ino}:${st.size}:${st.mtimeNs}`;
/**
 * The stamp and the change time (ns), which no one can set back (utimes can set mtime): any
 * write, truncate, chmod or rename of the file after it was sealed changes one of them.
 */
export const fileIdentity = (st: BigIntStats): string => `${fileStamp(st)}:${st.ctimeNs}`;

/** Block `b` of a local file of `size` bytes, with positional reads (into `into` when given). */
export async function readLocalBlock(fh: FileHandle, file: string, size: number, b: number, into?: Buffer): Promise<Buffer> {
  const { start, end } = blockRange(size, b);
  const out = bufferFor(end - start, into);
  let got: number;
  try {
    got = await readFully(fh, out, start);
  } catch (e) {
    throw new CacheError('local_io', `cannot adopt ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (got < out.length) throw new CacheError('local_io', `cannot adopt ${file}: it ended at ${start + got} bytes`);
  return out;
}
