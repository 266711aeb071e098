/**
 * SIF images (the Singularity Image Format, sylabs/sif v2 layout): the global header and
 * descriptors, small data objects, and the `inspect` attributes of an image.
 *
 * Invariants: only the header region (128 bytes + the descriptor table) is read to describe an
 * image, never the whole file; every offset and size is checked against the file's size before
 * use; data objects are read into memory only under a cap (1 MiB by default). Squashfs contents
 * come from `unsquashfs` child processes (async spawn, output capped), never a mount.
 * Concurrency: no shared state; each call opens and closes its own file handle.
 */
export { SifError, type SifErrorCode } from './errors.js';
export {
  ARCH_NAMES, DATA_TYPE_NAMES, DESCRIPTOR_BYTES, DataType, FS_TYPE_NAMES, FsType, HEADER_BYTES,
  PART_TYPE_NAMES, PartType, SIF_MAGIC,
} from './format.js';
export {
  primaryPartition,
  readDescriptorData,
  readSif,
  type PrimaryPartition,
  type SifDescriptor,
  type SifInfo,
  type SifPartition,
} from './header.js';
export { SINGULARITY_PATHS, inspectImage, type InspectAttributes } from './inspect.js';
export { MAX_CAT_BYTES, catSquashfsFile } from './squashfs.js';
