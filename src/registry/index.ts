/**
 * The registry: image names and URIs, and (as they land) the commands' logic — push, pull,
 * search, share, … — on top of `dropbox/` and `catalog/`.
 *
 * Invariants: every name that reaches Dropbox or the disk went through `parseImageUri` or
 * `imageFromRemotePath`, so its parts are lowercase and hold no `/`, `:`, `@`, `\`, whitespace
 * or control characters, and are never `.` or `..`. Names are plain values: no I/O here, nothing
 * to share between concurrent callers.
 */
export {
  DEFAULT_COLLECTION,
  DEFAULT_TAG,
  NameError,
  formatUri,
  imageFromRemotePath,
  parseImageUri,
  pickImages,
  remotePath,
  storageFileName,
  type ImageName,
  type PickedImage,
  type RemoteExtension,
} from './names.js';
