/** Errors of the write-back queue, each with a stable `code` (DESIGN.md rule 3). */

export type UploadErrorCode =
  /** enqueue() got a path that is not a Dropbox file path ("/a/b"). */
  | 'bad_path'
  /** enqueue() got a spool file outside the queue's spool folder, or a bad size. */
  | 'bad_spool'
  /** drain() gave up: every file still pending has failed since the drain began. */
  | 'drain_failed'
  /** drain() was waiting when stop() was called. */
  | 'stopped';

export class UploadError extends Error {
  override readonly name = 'UploadError';
  constructor(
    readonly code: UploadErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
