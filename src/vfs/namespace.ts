/**
 * The namespace operations: unlink, mkdir, rmdir, rename. One place decides each from the
 * state of the paths involved (nodes.ts: open for write, pending upload, uploading, clean,
 * removed while open).
 *
 * Order of every operation: checks; the remote change (Dropbox first: if it fails, nothing
 * local changed and the caller gets the errno); then, synchronously, the local state follows
 * (nodes, upload journal, catalog). Removals are the exception: the name leaves the local
 * state first, so it is gone from listings at once and no flush can queue it meanwhile.
 *
 * - unlink: open handles keep working on the detached node, nothing of it is uploaded, an
 *   upload in flight lands first, its pending uploads are cancelled, and the remote revision
 *   this mount knows is deleted (parent_rev): a newer one made elsewhere stays.
 * - rename onto an existing file: the target is removed as by unlink (its queued upload and
 *   its open writers can never overwrite the moved file), then the source moves.
 * - case-only rename: the same node; Dropbox's move_v2 refuses it, so it goes through a
 *   temporary name (two moves). It never deletes anything.
 * - folder rename: the remote folder moves, then every node and pending upload below it.
 * - a version opened from a revision (a writer, a pending upload) keeps its revision check
 *   across a rename, of the file or of a folder above it: see movedBase().
 * - every rename first holds the source's uploads (UploadPort.hold): none starts, and those in
 *   flight end (and land, or go back to the queue) before the remote move. An upload that
 *   landed under the old name after the move would be a file (or a folder) that comes back.
 * - rename to `.fuse_hidden…` (libfuse 2 hiding a file removed while open): an unlink that
 *   keeps the hidden name resolvable for the open handles until libfuse unlinks it.
 */
import { randomBytes } from 'node:crypto';
import type { FileMeta, Meta } from '../dropbox/client.js';
import { RemoteError } from '../dropbox/errors.js';
import { enoent, VfsError } from './errors.js';
import type { Lookup } from './lookup.js';
import type { NodeTable, Spool } from './nodes.js';
import type { EntryInfo } from './ports.js';
import { checkName, dirOf, dropboxPath, isFuseHidden, isUnder, lowerOf, nameOf, parentOf, type VfsOptions } from './types.js';

/**
 * The base revision a local version (a writer, a pending upload) derived from `base` keeps
 * once its file has moved, by itself or with a folder above it. `before` is the catalog's
 * entry of the file just before the move, `after` the moved file's entry just after it.
 *
 * A move may give the file a new revision (the emulator does; dropbox-api.md: "don't assume
 * it survives a move"). A version opened from the revision that moved (base = before.rev)
 * derives from the moved one if that is the same file (id) with the same bytes (content_hash):
 * nobody changed it in between, so ours is the next version and must not conflict with it.
 * In every other case the base stays: a version opened from an older revision, or a file
 * another machine changed before or during the move, still conflicts (ours lands as a
 * "conflicted copy"), and nothing is overwritten. No base (a new file) stays none: overwrite.
 * A writer opened under the old name while the remote move was in flight is not in `before`:
 * it keeps its base, so at worst it lands as a conflicted copy.
 */
export function movedBase(base: string | undefined, before: EntryInfo | undefined, after: EntryInfo | undefined): string | undefined {
  if (base === undefined || before?.rev === undefined || base !== before.rev) return base;
  if (after?.rev === undefined || after.id !== before.id || after.contentHash !== before.contentHash) return base;
  return after.rev;
}

function setBase(s: Spool, base: string | undefined): void {
  if (base === undefined) delete s.baseRev;
  else s.baseRev = base;
}

export class Namespace {
  /**
   * Folders this mount renamed away or removed (lower case): an upload that was in flight
   * below one of them and landed anyway recreated it, and the stray clean-up removes it again.
   */
  private readonly goneFolders = new Set<string>();

  constructor(
    private readonly o: VfsOptions,
    private readonly nodes: NodeTable,
    private readonly look: Lookup,
  ) {}

  async unlink(fusePath: string): Promise<void> {
    const pl = lowerOf(fusePath);
    // libfuse's unlink of the hidden name at the last close (after our release): the file is
    // already gone.
    if (this.nodes.unhide(pl) || (isFuseHidden(fusePath) && !this.look.lookup(fusePath))) return;
    const e = this.look.mustLookup(fusePath);
    if (e.isFolder) throw new VfsError('EISDIR', `${fusePath}: is a folder (use rmdir)`);
    await this.removeFile(e);
  }

  /**
   * A file leaves the namespace: its node at once (open handles keep working, nothing of them
   * is uploaded); an upload of it in flight lands first (held: nothing new starts), then its
   * pending rows go and Dropbox deletes the revision this mount knows, and only that one.
   */
  private async removeFile(e: EntryInfo, hiddenLower?: string): Promise<void> {
    const node = this.nodes.get(e.pathLower);
    if (node && hiddenLower !== undefined) this.nodes.hide(node, hiddenLower, e);
    else if (node) this.nodes.detach(node, e);
    const hold = this.o.uploads.hold(e.pathLower);
    try {
      await hold.settled;
      this.o.uploads.cancel(e.pathLower);
      const remote = this.o.catalog.lookup(e.pathLower);
      if (remote) await this.deleteRemote(remote);
    } finally {
      hold.release();
    }
  }

  /**
   * delete_v2 of the revision the catalog knows (parent_rev). If Dropbox has another one (a
   * change made elsewhere, not seen here yet), that one stays: the change feed shows it.
   */
  private async deleteRemote(remote: EntryInfo): Promise<void> {
    try {
      await this.o.remote.delete(remote.pathDisplay, remote.isFolder ? undefined : remote.rev);
    } catch (err) {
      if (!(err instanceof RemoteError && err.code === 'conflict')) throw err;
      this.o.log(`${remote.pathDisplay} was changed in Dropbox since rev ${remote.rev}: not deleted there, the newer version stays`);
    }
    this.o.catalog.remove(remote.pathLower);
  }

  async mkdir(fusePath: string): Promise<void> {
    const p = dropboxPath(fusePath);
    checkName(p);
    if (this.look.lookup(fusePath)) throw new VfsError('EEXIST', `${fusePath}: exists`);
    this.look.folder(dirOf(fusePath));
    this.o.catalog.upsert(this.o.toEntry(await this.o.remote.createFolder(p)));
    this.goneFolders.delete(lowerOf(fusePath));
  }

  async rmdir(fusePath: string): Promise<void> {
    const e = this.look.mustLookup(fusePath);
    if (!e.isFolder) throw new VfsError('ENOTDIR', `${fusePath}: not a folder`);
    if (e.pathLower === '') throw new VfsError('EPERM', 'the root of the mount cannot be removed');
    if (this.look.readdir(fusePath).length > 0) throw new VfsError('ENOTEMPTY', `${fusePath}: not empty`);
    await this.o.remote.delete(e.pathDisplay || dropboxPath(fusePath));
    this.o.catalog.remove(e.pathLower);
    this.goneFolders.add(e.pathLower);
  }

  async rename(fromFuse: string, toFuse: string): Promise<void> {
    const first = this.look.mustLookup(fromFuse);
    const to = dropboxPath(toFuse);
    const toLower = lowerOf(toFuse);
    if (first.pathLower === '') throw new VfsError('EBUSY', 'the root of the mount cannot be renamed');
    if (isFuseHidden(to) && !first.isFolder) {
      // libfuse hides a file removed while open: that is the removal.
      await this.removeFile(first, toLower);
      return;
    }
    checkName(to);
    // No upload of the source (or below it) starts while the rename decides, and those in
    // flight end first: what they land is then moved with the rest, never left behind under
    // the old name (nor recreating an old folder).
    const hold = this.o.uploads.hold(first.pathLower);
    try {
      await hold.settled;
      await this.renameHeld(fromFuse, toFuse, to, toLower);
    } finally {
      hold.release();
    }
  }

  private async renameHeld(fromFuse: string, toFuse: string, to: string, toLower: string): Promise<void> {
    const src = this.look.mustLookup(fromFuse);
    this.look.folder(dirOf(toFuse));
    const same = src.pathLower === toLower;
    if (same && nameOf(src.pathDisplay) === nameOf(to)) return;
    if (src.isFolder && !same && isUnder(toLower, src.pathLower)) throw new VfsError('EINVAL', `cannot move ${fromFuse} into itself`);
    const dst = same ? undefined : this.look.lookup(toFuse);
    if (dst) {
      if (dst.isFolder && !src.isFolder) throw new VfsError('EISDIR', `${toFuse}: is a folder`);
      if (!dst.isFolder && src.isFolder) throw new VfsError('ENOTDIR', `${toFuse}: not a folder`);
      if (dst.isFolder) {
        if (this.look.readdir(toFuse).length > 0) throw new VfsError('ENOTEMPTY', `${toFuse}: not empty`);
        // Dropbox never moves onto an existing path: the empty target folder goes first.
        await this.o.remote.delete(dst.pathDisplay || to);
        this.o.catalog.remove(dst.pathLower);
      } else {
        await this.removeFile(dst);
      }
    }
    const remoteSrc = this.o.catalog.lookup(src.pathLower);
    const node = src.isFolder ? undefined : this.nodes.get(src.pathLower);
    const pending = src.isFolder ? undefined : this.o.uploads.pending(src.pathLower);
    if (!remoteSrc && !node && !pending) throw enoent(fromFuse);
    // What the catalog says of the files below a folder that have local versions, before the
    // move replaces those entries with the moved ones.
    const before = src.isFolder ? this.localVersionsBelow(src.pathLower) : undefined;
    const moved = remoteSrc ? await this.moveRemote(remoteSrc, to, same) : undefined;
    // The local state follows, synchronously: nothing can queue under the old path after this.
    // Nothing of the source is uploading (held): its rows are idle and simply follow.
    if (before) {
      const fromOf = (movedLower: string): string => src.pathLower + movedLower.slice(toLower.length);
      const baseAfter = (fromLower: string, base: string | undefined): string | undefined =>
        movedBase(base, before.get(fromLower), this.o.catalog.lookup(toLower + fromLower.slice(src.pathLower.length)));
      for (const n of this.nodes.moveTree(src.pathLower, to)) for (const s of n.spools()) setBase(s, baseAfter(fromOf(n.pathLower), s.baseRev));
      if (!same) this.goneFolders.add(src.pathLower);
      // Also for a case-only rename: the paths keep leading into the folder (Dropbox ignores
      // case), but the files' revisions may have changed with the move.
      this.o.uploads.retargetTree(src.pathLower, to, baseAfter);
      return;
    }
    const after = moved?.kind === 'file' ? this.o.toEntry(moved) : undefined;
    const srcNode = this.nodes.get(src.pathLower);
    if (srcNode) {
      this.nodes.move(srcNode, to);
      for (const s of srcNode.spools()) setBase(s, movedBase(s.baseRev, remoteSrc, after));
    }
    const p = this.o.uploads.pending(src.pathLower);
    if (p) this.o.uploads.retarget(src.pathLower, to, movedBase(p.baseRev, remoteSrc, after));
  }

  /** The catalog's entries of the files below a folder that are open for writing or pending. */
  private localVersionsBelow(folderLower: string): Map<string, EntryInfo> {
    const found = new Map<string, EntryInfo>();
    const note = (pl: string): void => {
      const e = this.o.catalog.lookup(pl);
      if (e && !e.isFolder) found.set(pl, e);
    };
    for (const n of this.nodes.writersUnder(folderLower)) note(n.pathLower);
    for (const p of this.o.uploads.pendingUnder(folderLower)) note(p.pathLower);
    return found;
  }

  /**
   * An upload renamed or cancelled while in flight landed anyway, at `meta`'s path: it goes,
   * unless that path is in use again (a node, a pending upload, or another revision in the
   * catalog), and so do the folders it recreated (ones this mount renamed away or removed,
   * if they are empty).
   */
  /**
   * A folder the mount removed or renamed away, or one below it: a stray upload landing at
   * `/x/y/f` after `x` was renamed recreates `/x/y` as well as `/x`.
   */
  private underGoneFolder(pl: string): boolean {
    for (let d = pl; d !== ''; d = parentOf(d)) if (this.goneFolders.has(d)) return true;
    return false;
  }

  async stray(meta: FileMeta): Promise<void> {
    const pl = meta.pathLower;
    const known = this.o.catalog.lookup(pl);
    if (this.nodes.get(pl) || this.o.uploads.pending(pl) || (known && known.rev !== meta.rev)) return;
    await this.o.remote.delete(meta.pathDisplay).catch((e: unknown) => {
      if (!(e instanceof RemoteError && e.code === 'not_found')) throw e;
    });
    this.o.catalog.remove(pl);
    this.o.log(`removed ${meta.pathDisplay}: it was renamed or deleted while it uploaded`);
    for (let d = parentOf(pl); d !== '' && this.underGoneFolder(d); d = parentOf(d)) {
      if (this.nodes.hasWriterUnder(d) || this.o.uploads.pendingChildren(d).length > 0) break;
      const { entries } = await this.o.remote.listAll(d, false);
      if (entries.length > 0) break;
      await this.o.remote.delete(d);
      this.o.catalog.remove(d);
      this.o.log(`removed the folder ${d}: only a stray upload had recreated it`);
    }
  }

  /** move_v2, and the catalog updated; a case-only rename goes through a temporary name. */
  private async moveRemote(remoteSrc: EntryInfo, to: string, caseOnly: boolean): Promise<Meta> {
    let moved: Meta;
    if (caseOnly) {
      const tmp = `${parentOf(to)}/.sreg-rename-${randomBytes(6).toString('hex')}`;
      const mid = await this.o.remote.move(remoteSrc.pathDisplay, tmp);
      try {
        moved = await this.o.remote.move(mid.kind === 'deleted' ? tmp : mid.pathDisplay, to);
      } catch (e) {
        // Put it back under its old name rather than leave it under the temporary one.
        await this.o.remote.move(tmp, remoteSrc.pathDisplay).catch(() => undefined);
        throw e;
      }
    } else {
      moved = await this.o.remote.move(remoteSrc.pathDisplay, to);
    }
    this.o.catalog.remove(remoteSrc.pathLower);
    if (moved.kind === 'folder') {
      this.o.catalog.upsert(this.o.toEntry(moved));
      const { entries } = await this.o.remote.listAll(moved.pathDisplay, true);
      for (const m of entries) if (m.kind !== 'deleted') this.o.catalog.upsert(this.o.toEntry(m));
    } else if (moved.kind === 'file') {
      this.o.catalog.upsert(this.o.toEntry(moved));
    }
    return moved;
  }
}
