/**
 * upload/: the write-back queue of the mount.
 *
 * Purpose: a file closed on the mount is recorded in the upload journal (`sreg_uploads`) with
 * the spool file holding its bytes, and uploaded to Dropbox in the background; the mount shows
 * the pending bytes (pending/pendingChildren) until then. A crash (kill -9) loses nothing that
 * enqueue() returned for: start() resumes the journal. unmount drains it and refuses to drop
 * what it cannot upload (drain() rejects, with how much is left and why).
 *
 * Invariants:
 * - A row exists for every spool file of a closed file until it is in Dropbox (or deleted or
 *   superseded); a spool file is deleted only after its row is gone (committed), and never
 *   while a live row refers to it. start() removes spool files no row refers to that are older
 *   than the start (crash orphans): call it before the mount accepts writes.
 * - A row with a base revision (the file was opened from it) uploads with mode update of it
 *   and autorename: a change made elsewhere meanwhile stays, ours lands as a conflicted copy
 *   (logged). Once ours lands, the path's other rows from that base follow from our revision.
 *   A row without one (a new file) uploads with mode 'overwrite': the last close of a path
 *   wins, as on a local disk. A newer
 *   enqueue of a path deletes its older rows that are not uploading; one that is uploading
 *   finishes first, then the newer one goes. Never two uploads of one path at once.
 * - afterUpload(job, meta) is awaited before the row and the spool file are deleted; a crash in
 *   between uploads the file again (idempotent with overwrite).
 * - A failed attempt is counted in the row (attempts, last_error: a message, never a token) and
 *   retried after retryDelayMs(attempts) (capped exponential, 2 s → 5 min, jittered); while a
 *   drain waits, after at most 1 s. A failing job never holds a slot while it waits, so other
 *   jobs go on; nothing outside the worker ever waits on an upload (a rate-limit wait inside
 *   the client only delays that one job).
 * - retarget() (a pending file renamed), retargetTree() (a folder renamed: every row below
 *   follows, with the base revision the caller gives for each path) and cancel() (deleted)
 *   take effect in the journal at once; an upload in flight for the old path is aborted. If
 *   the abort comes too late, the file is in Dropbox under the old path: 'stray' (job, meta)
 *   says so. A rename avoids that with hold(): nothing starts at the held path meanwhile, and
 *   what is in flight there ends first (a single request lands as usual, a session upload is
 *   aborted and stays queued).
 * - One UploadQueue per database at a time (start() treats 'uploading' rows as a crash's).
 *
 * Concurrency: one JS thread. The journal is changed only in synchronous transactions, so the
 * sync methods (enqueue, pending, pendingChildren, retarget, cancel, status) see a consistent
 * journal and run on indexes (status and drain's checks count the whole journal). The worker
 * runs up to `concurrency` uploads, each an async task holding one row; file deletion is async
 * and happens after the commit that made the file garbage.
 *
 * Events: 'uploaded' (job, meta: FileMeta), 'failed' (job, error), 'stray' (job, meta).
 */
export { UploadQueue, type UploadQueueEvents, type UploadQueueOptions } from './queue.js';
export { UploadError, type UploadErrorCode } from './errors.js';
export { defaultRetryDelayMs } from './policy.js';
