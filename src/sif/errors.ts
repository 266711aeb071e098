/** Errors of SIF reading, each with a stable `code` (DESIGN.md rule 3). File-system errors
 *  (ENOENT, EACCES, …) are not wrapped: they keep Node's own `code`. */

export type SifErrorCode =
  /** The file is not a SIF image (no `SIF_MAGIC` where the header has it). */
  | 'not_sif'
  /** A SIF header, descriptor or partition that contradicts itself or the file's size. */
  | 'corrupt'
  /** A SIF of another format version, or an image without a squashfs system partition. */
  | 'unsupported'
  /** A data object larger than the caller agreed to read into memory. */
  | 'too_large'
  /** `unsquashfs` is missing or failed for a reason other than the image. */
  | 'tool_failed';

export class SifError extends Error {
  override readonly name = 'SifError';
  constructor(
    readonly code: SifErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
