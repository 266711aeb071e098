/**
 * Where a path's bytes are now, for the handles that open it: the spool file of its newest
 * writer or of its pending upload (bytes not in Dropbox yet), else a remote revision read
 * through the block cache; and the remote revision a new writer derives from (its base).
 *
 * Invariants:
 * - Local bytes win over the catalog: a writer whose bytes changed since they were journaled,
 *   then the newest pending upload, then the catalog's revision.
 * - The catalog is read through our own landed revisions (landed.ts): an older revision of
 *   ours that the change feed delivers late is never taken for another machine's change.
 * - A spool file can vanish between the look and its open (the upload worker deletes it once
 *   its bytes are in Dropbox): withSource() looks again, and then finds them remotely.
 * Concurrency: one JS thread; the looks are synchronous, the copies and downloads async.
 */
import { copyFile, open } from 'node:fs/promises';
import { VfsError } from './errors.js';
import { LandedRevs } from './landed.js';
import type { NodeTable } from './nodes.js';
import type { EntryInfo, FileRef } from './ports.js';
import type { VfsOptions } from './types.js';

/** A path's bytes: a spool file, or a remote revision (and its entry). */
export type Source = { local: string } | { file: FileRef; entry: EntryInfo };

export class Sources {
  /** Our recent revisions per path, to read the catalog through (see LandedRevs). */
  private readonly landed = new LandedRevs();
  /** Reader ids of the block cache for downloads into a spool file (negative: never a handle's). */
  private nextStream = 1;

  constructor(
    private readonly o: VfsOptions,
    private readonly nodes: NodeTable,
  ) {}

  /**
   * The spool file holding a path's bytes when they are not in Dropbox yet. A writer whose
   * bytes were handed to the journal and not changed since (closed, not released yet) is not
   * one: the queue deletes that file once it is uploaded; the journal row or the catalog says.
   */
  private localBytes(e: EntryInfo): string | undefined {
    const w = (this.nodes.getHidden(e.pathLower) ?? this.nodes.get(e.pathLower))?.writer();
    if (w && !(w.spool.committed && !w.spool.dirty)) return w.spool.path;
    return this.o.uploads.pending(e.pathLower)?.spoolFile;
  }

  /** Where a path's bytes are now. */
  source(fusePath: string, e: EntryInfo): Source {
    const local = this.localBytes(e);
    if (local) return { local };
    const remote = (e.rev && this.nodes.getHidden(e.pathLower) ? e : this.catalogEntry(e.pathLower)) ?? e;
    return { file: remoteRef(fusePath, remote), entry: remote };
  }

  /**
   * `use` on the path's bytes. A spool file can be uploaded and deleted between the look and
   * its open (the upload worker does not wait for us): then the bytes are in Dropbox, and the
   * next look finds them there.
   */
  async withSource<T>(fusePath: string, e: EntryInfo, use: (at: Source) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const at = this.source(fusePath, e);
      try {
        return await use(at);
      } catch (err) {
        if (!('local' in at) || (err as { code?: string }).code !== 'ENOENT' || attempt >= 5) throw err;
      }
    }
  }

  /** The remote revision the path's current bytes derive from (see Spool.baseRev). */
  baseRevOf(e: EntryInfo): string | undefined {
    const w = (this.nodes.getHidden(e.pathLower) ?? this.nodes.get(e.pathLower))?.writer();
    if (w) return w.spool.baseRev;
    const p = this.o.uploads.pending(e.pathLower);
    if (p) return p.baseRev;
    return this.catalogEntry(e.pathLower)?.rev;
  }

  /** Copies the path's current bytes into a new spool file. */
  async copyCurrentBytes(fusePath: string, e: EntryInfo, spoolPath: string): Promise<void> {
    await this.withSource(fusePath, e, async (at) => {
      if ('local' in at) await copyFile(at.local, spoolPath);
      else await this.download(at.file, spoolPath);
    });
  }

  private async download(file: FileRef, spoolPath: string): Promise<void> {
    const out = await open(spoolPath, 'w', 0o600);
    const stream = -this.nextStream++;
    try {
      const step = 4 * 1024 * 1024;
      for (let off = 0; off < file.size; off += step) {
        const buf = await this.o.cache.read(file, off, Math.min(step, file.size - off), stream);
        await out.write(buf, 0, buf.length, off);
      }
    } finally {
      this.o.cache.forget(stream);
      await out.close();
    }
  }

  /**
   * An upload of ours landed at `pathLower` as `entry`: the writers still open there derive
   * from it now (their next upload is an update of it; between this mount's versions the last
   * close wins).
   */
  uploaded(pathLower: string, entry: EntryInfo): void {
    const n = this.nodes.get(pathLower);
    if (n) for (const s of n.spools()) s.baseRev = entry.rev ?? '';
    this.landed.record(pathLower, entry);
  }

  private catalogEntry(pathLower: string): EntryInfo | undefined {
    return this.landed.through(pathLower, this.o.catalog.lookup(pathLower));
  }
}

function remoteRef(fusePath: string, e: EntryInfo): FileRef {
  if (!e.id || !e.rev || e.contentHash === undefined) throw new VfsError('EIO', `${fusePath}: the catalog has no revision for it`);
  return { id: e.id, rev: e.rev, size: e.size, contentHash: e.contentHash };
}
