/**
 * The seams of the mount, declared by their consumer (the VFS). Each is implemented once for
 * real (catalog/, cache/, upload/) and can be implemented in memory for tests.
 *
 * Concurrency rule for every port: methods marked "sync" run on the event loop and must be
 * O(log n) or O(entries returned) (indexed SQLite, maps); everything that touches the network
 * or moves file bytes is async and never blocks the loop. The kernel waits on our one thread.
 */
import type { EventEmitter } from 'node:events';

/** A file or folder as the mount shows it. Paths are Dropbox paths: "" is the root, "/a/b" below. */
export interface EntryInfo {
  pathLower: string;
  /** For names shown to the user; only the last component's case is reliable. */
  pathDisplay: string;
  name: string;
  isFolder: boolean;
  /** Files only. */
  id?: string;
  rev?: string;
  size: number;
  contentHash?: string;
  /** server_modified, ms since the epoch (folders: the mount's start time). */
  mtimeMs: number;
}

/** The mirror of the remote tree (catalog/). */
export interface CatalogPort {
  /** sync */
  lookup(pathLower: string): EntryInfo | undefined;
  /** sync; the direct children of a folder, in name order */
  children(parentLower: string): EntryInfo[];
  /** sync; records a change we just made remotely, before the change feed echoes it */
  upsert(entry: EntryInfo): void;
  /** sync; removes a path and its subtree */
  remove(pathLower: string): void;
}

/** Keeps the catalog in step with Dropbox (catalog/sync). */
export interface SyncPort {
  /** First listing (or catch-up from the saved cursor); resolves when the catalog is usable. */
  start(): Promise<void>;
  /** Stops the longpoll loop. */
  stop(): Promise<void>;
  /** When the last change was applied, and the last error of the loop, if any. */
  status(): { lastSyncMs: number; lastError?: string; entries: number };
}

/** One revision of one remote file: what the block cache keys on. */
export interface FileRef {
  id: string;
  rev: string;
  size: number;
  contentHash: string;
}

export interface CacheStats {
  budgetBytes: number;
  usedBytes: number;
  blocks: number;
  /** reads served without waiting for the network / that had to wait */
  hits: number;
  misses: number;
  /** bytes fetched from Dropbox since start */
  fetchedBytes: number;
}

/** The block cache (cache/). */
export interface BlockCachePort {
  /**
   * Bytes [offset, offset+length) of the file (clamped to its size). `stream` identifies the
   * reader (an open handle) so that sequential readers get readahead. With `into`, the bytes
   * are written there and the result is `into`'s first bytes (no allocation, no copy); once
   * `intoGone` is aborted (its owner answered without us) nothing more is written into it and
   * the read rejects.
   */
  read(file: FileRef, offset: number, length: number, stream: number, into?: Buffer, intoGone?: AbortSignal): Promise<Buffer>;
  /** Tells the cache a reader is gone (its readahead state can go). sync */
  forget(stream: number): void;
  /** Takes a local file that is exactly this revision's bytes as cached blocks (after an upload). */
  adopt(file: FileRef, localPath: string): Promise<void>;
  /** sync */
  stats(): CacheStats;
  /** Persists the index; removes a temporary cache (SINGULARITY_DISABLE_CACHE). */
  close(): Promise<void>;
}

export interface PendingUpload {
  id: number;
  /** Dropbox path it will be uploaded to (display case). */
  path: string;
  pathLower: string;
  spoolFile: string;
  size: number;
  /** ms since the epoch when close() handed it over */
  queuedAtMs: number;
  state: 'queued' | 'uploading' | 'failed';
  attempts: number;
  lastError?: string;
  /**
   * The remote revision the file was opened from: it uploads with mode update of it, so a
   * change another machine made meanwhile is not overwritten (Dropbox keeps both: ours lands
   * as a "conflicted copy"). None: a new file, uploaded with mode overwrite.
   */
  baseRev?: string;
}

export interface UploadStatus {
  files: number;
  bytes: number;
  uploadedBytesInFlight: number;
  failing: { path: string; error: string }[];
}

/**
 * The write-back queue (upload/). Emits 'uploaded' (job: PendingUpload, meta: FileMeta) after
 * a file is in Dropbox (at meta's path: another one than job's for a conflicted copy), 'failed' (job, error) when an attempt fails (it is retried), and
 * 'stray' (job, meta) when a file renamed or deleted mid-upload landed under its old path anyway.
 */
export interface UploadPort extends EventEmitter {
  /**
   * Durably records a closed file (its spool file is already fsynced) and queues it. sync:
   * when it returns, the journal row is committed and a crash will not lose it.
   */
  enqueue(path: string, spoolFile: string, size: number, baseRev?: string): PendingUpload;
  /** sync: the newest pending upload of a path, if any (what the mount shows for it) */
  pending(pathLower: string): PendingUpload | undefined;
  /** sync: pending uploads whose parent folder is `parentLower` */
  pendingChildren(parentLower: string): PendingUpload[];
  /** sync: pending uploads anywhere below the folder `folderLower` (the newest row of each path) */
  pendingUnder(folderLower: string): PendingUpload[];
  /**
   * sync: a pending file was renamed (rsync's temp → final): upload it under the new path, as
   * an update of `baseRev` (the moved file's revision) or, without it, with overwrite
   */
  retarget(fromLower: string, toPath: string, baseRev?: string): boolean;
  /**
   * sync: a folder was renamed: its pending files follow it; returns how many. Each moved
   * file's upload is an update of `baseRevOf(its old path, lower case; its base revision)`
   * (undefined: overwrite); without `baseRevOf` each keeps the base it had.
   */
  retargetTree(fromLower: string, toPath: string, baseRevOf?: (fromPathLower: string, baseRev: string | undefined) => string | undefined): number;
  /** sync: a pending file was deleted before it was uploaded */
  cancel(pathLower: string): boolean;
  /**
   * sync: no upload of `pathLower` (a file, or a folder and everything below it) starts until
   * release() is called: a rename decides on those paths meanwhile. Uploads there already in
   * flight end first: a single-request one (which cannot be taken back once sent) finishes and
   * lands as usual, a session upload is aborted and stays queued. `settled` resolves once none
   * is in flight there; then the journal rows of those paths are all idle and the catalog has
   * what landed, so the rename can move both without any upload landing behind it.
   */
  hold(pathLower: string): { settled: Promise<void>; release: () => void };
  /**
   * Resolves once no upload of this path is in flight (at once if none is). After a cancel or
   * a retarget aborted one, this is when its outcome is settled: it reached Dropbox (a 'stray'
   * if the queue saw it) or not, and the caller can look. True if it waited for one.
   */
  whenSettled(pathLower: string): Promise<boolean>;
  /** Starts the worker (and resumes what a previous run left in the journal). */
  start(): void;
  /** Uploads everything pending; rejects (keeping the journal) if it cannot. */
  drain(onProgress?: (s: UploadStatus) => void): Promise<void>;
  /** sync */
  status(): UploadStatus;
  /** Stops the worker, aborting uploads in flight (they stay queued in the journal). */
  stop(): Promise<void>;
}
