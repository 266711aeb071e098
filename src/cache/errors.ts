/** Errors of the block cache, each with a stable `code` (DESIGN.md rule 3). A failed fetch is
 *  not wrapped: the reads that needed the block reject with the fetch's own error (a
 *  RemoteError), which the VFS maps to an errno. */

export type CacheErrorCode =
  /** A revision's blocks did not match its content_hash twice in a row (or a local file given
   *  to `adopt` does not match it). */
  | 'corrupt'
  /** `fetch` answered with a different number of bytes than the block has. */
  | 'bad_fetch'
  /** `adopt` could not read the local file, or it is not `file.size` bytes long. */
  | 'local_io'
  /** A negative or fractional offset or length. */
  | 'invalid_range'
  /** The cache was used after `close()`. */
  | 'closed';

export class CacheError extends Error {
  override readonly name = 'CacheError';
  constructor(
    readonly code: CacheErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
