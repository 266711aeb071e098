/**
 * Image names: `collection/name:tag@version`, the Dropbox layout `/<collection>/<name>:<tag>.simg`
 * and the local storage file `<collection>-<name>:<tag>.simg` (sregistry.md "Names and URIs").
 *
 * Follows the Python client's `parse_image_name` (sregistry-cli `sregistry/utils/names.py`):
 * collection defaults to `library`, tag to `latest`, every part is lowercased, a `.simg`/`.sif`/
 * `.img` extension is dropped. Where that function is lax in ways that make unsafe or surprising
 * paths, `sreg` refuses instead:
 * - Python drops `.img|.simg|.sif` anywhere in the string (`a.simgx` → `ax`), in lowercase only;
 *   here only at the end, in any case (`x:red.SIMG` is `x:red`, Python's tag would be `red.simg`).
 * - Python strips any `scheme://` (`docker://`, `shub://`, …); here only `dropbox://`, any other
 *   scheme is an error (this client is Dropbox-only).
 * - Python reads a first part holding `.` or `:` as a registry host (`my.lab/tools` is
 *   `library/tools` from registry `my.lab`) and accepts deeper paths (`a/b/c/d`); here a name has at
 *   most one `/` and the part before it is always the collection.
 * - Python lets a tag contain `/` and a version contain `:`, `@`, `/`; here no part may hold `:`,
 *   `@`, `/` or `\`, whitespace or control characters, and `.`/`..` are not parts. Parts are also
 *   bounded so that the remote and storage file names fit in 255 bytes.
 * - Python stores `uri` as `collection/name:tag@` when the version is empty; here an empty version is
 *   no version.
 */

export interface ImageName {
  collection: string;
  name: string;
  tag: string;
  version?: string;
}

/** A name a person typed or a remote path could not be read as an image name. */
export class NameError extends Error {
  readonly code = 'bad_name';
  override readonly name = 'NameError';
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`'${input}' is not an image name: ${reason}`);
  }
}

export const DEFAULT_COLLECTION = 'library';
export const DEFAULT_TAG = 'latest';
const URI_PREFIX = 'dropbox://';
const USER_EXTENSIONS = ['.simg', '.sif', '.img'] as const;
export type RemoteExtension = '.simg' | '.sif';
const REMOTE_EXTENSIONS: readonly RemoteExtension[] = ['.simg', '.sif'];
/** The longest file name Linux and Dropbox take. */
const MAX_FILE_NAME_BYTES = 255;
/** `collection.name` is VARCHAR(150); `container.version` VARCHAR(250) (sregistry's models). */
const MAX_COLLECTION_CHARS = 150;
const MAX_VERSION_CHARS = 250;

const FORMAT_HINT = 'use collection/name:tag (collection and tag are optional)';
// Whitespace (incl. Unicode separators) and C0/C1 control characters.
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\s\u0000-\u001f\u007f-\u009f]/u;

/** Why `part` may not be a collection, name, tag or version; undefined when it may. */
function partProblem(part: string, what: string): string | undefined {
  if (part === '') return `the ${what} is empty`;
  if (part === '.' || part === '..') return `'${part}' cannot be a ${what}`;
  if (UNSAFE_CHARS.test(part)) return `the ${what} contains whitespace or a control character`;
  if (/[:@/\\]/.test(part)) return `the ${what} '${part}' contains ':', '@', '/' or '\\'`;
  return undefined;
}

/** Why the whole name is unusable (lengths); undefined when it is fine. */
function sizeProblem(n: ImageName): string | undefined {
  if (n.collection.length > MAX_COLLECTION_CHARS) return `the collection is longer than ${MAX_COLLECTION_CHARS} characters`;
  if (n.version !== undefined && n.version.length > MAX_VERSION_CHARS) {
    return `the version is longer than ${MAX_VERSION_CHARS} characters`;
  }
  if (Buffer.byteLength(storageFileName(n)) > MAX_FILE_NAME_BYTES) {
    return `collection, name and tag together are too long for a file name (${MAX_FILE_NAME_BYTES} bytes)`;
  }
  return undefined;
}

function stripSuffix(s: string, suffixes: readonly string[]): string {
  const lower = s.toLowerCase();
  for (const suffix of suffixes) if (lower.endsWith(suffix)) return s.slice(0, -suffix.length);
  return s;
}

/**
 * Parses `[dropbox://][collection/]name[:tag][@version][.simg|.sif|.img]`.
 * @throws NameError with a message that says what is wrong.
 */
export function parseImageUri(input: string): ImageName {
  const fail = (reason: string): never => {
    throw new NameError(input, reason);
  };
  let rest = input;
  if (rest.toLowerCase().startsWith(URI_PREFIX)) rest = rest.slice(URI_PREFIX.length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest)) fail('only dropbox:// URIs are Dropbox images');
  if (rest === '') fail(`it is empty: ${FORMAT_HINT}`);
  if (UNSAFE_CHARS.test(rest)) fail('it contains whitespace or a control character');
  rest = stripSuffix(rest, USER_EXTENSIONS);

  let version: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    version = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const slashes = rest.split('/');
  if (slashes.length > 2) fail(FORMAT_HINT);
  const [collection, nameTag] = slashes.length === 2 ? [slashes[0] ?? '', slashes[1] ?? ''] : [DEFAULT_COLLECTION, rest];
  const colon = nameTag.split(':');
  if (colon.length > 2) fail(`the name '${nameTag}' has more than one ':'`);
  const name = colon[0] ?? '';
  const tag = colon.length === 2 ? (colon[1] ?? '') : DEFAULT_TAG;

  const checks: [string, string][] = [
    [collection, 'collection'],
    [name, 'name'],
    [tag, 'tag'],
  ];
  if (version !== undefined) checks.push([version, 'version']);
  for (const [part, what] of checks) {
    const problem = partProblem(part, what);
    if (problem) fail(problem);
  }
  const parsed: ImageName = { collection: collection.toLowerCase(), name: name.toLowerCase(), tag: tag.toLowerCase() };
  if (version !== undefined) parsed.version = version.toLowerCase();
  const tooBig = sizeProblem(parsed);
  if (tooBig) fail(tooBig);
  return parsed;
}

/** `collection/name:tag`, plus `@version` when there is a (non-empty) version. */
export function formatUri(n: ImageName): string {
  const base = `${n.collection}/${n.name}:${n.tag}`;
  return n.version ? `${base}@${n.version}` : base;
}

/** Where the image lives in the app folder: `/<collection>/<name>:<tag>.simg` (the version is not part of it). */
export function remotePath(n: ImageName, ext: RemoteExtension = '.simg'): string {
  return `/${n.collection}/${n.name}:${n.tag}${ext}`;
}

/** What `pull` names the file under SREGISTRY_STORAGE: `<collection>-<name>:<tag>.simg`.
 *  Like the Python client's, `a-b/c` and `a/b-c` share a file name; kept for compatibility. */
export function storageFileName(n: ImageName): string {
  return `${n.collection}-${n.name}:${n.tag}.simg`;
}

interface RemoteImage {
  image: ImageName;
  /** The file name carried a `:tag` (`name:latest.simg`, not `name.simg`). */
  explicitTag: boolean;
  ext: RemoteExtension;
}

function readRemotePath(pathDisplay: string): RemoteImage | undefined {
  const segments = pathDisplay.split('/');
  if (segments.length !== 3 || segments[0] !== '') return undefined;
  const collection = segments[1] ?? '';
  const file = segments[2] ?? '';
  const ext = REMOTE_EXTENSIONS.find((e) => file.toLowerCase().endsWith(e));
  if (!ext) return undefined;
  const colon = file.slice(0, -ext.length).split(':');
  if (colon.length > 2) return undefined;
  const name = colon[0] ?? '';
  const tag = colon.length === 2 ? (colon[1] ?? '') : DEFAULT_TAG;
  if (partProblem(collection, 'collection') || partProblem(name, 'name') || partProblem(tag, 'tag')) return undefined;
  const image: ImageName = { collection: collection.toLowerCase(), name: name.toLowerCase(), tag: tag.toLowerCase() };
  if (sizeProblem(image)) return undefined;
  return { image, explicitTag: colon.length === 2, ext };
}

/**
 * The image a file in the app folder holds: `/c/n:t.simg` or `/c/n:t.sif` → c/n:t;
 * `/c/n.simg` → c/n:latest. Anything else (another depth or extension, a bad part) → undefined.
 */
export function imageFromRemotePath(pathDisplay: string): ImageName | undefined {
  return readRemotePath(pathDisplay)?.image;
}

export interface PickedImage {
  image: ImageName;
  /** The remote path that holds it (as given). */
  path: string;
}

/**
 * The images among `paths`, one per collection/name:tag. When several files hold the same
 * image the winner is, in this order of importance: a file naming its tag (`name:latest.simg`)
 * over one that doesn't (`name.simg`), then `.simg` over `.sif` (what this client and the Python
 * client push). So `n:latest.sif` beats `n.simg`. On a full tie the first path wins.
 * Result order: by first appearance of each image; paths that are not images are skipped.
 */
export function pickImages(paths: readonly string[]): PickedImage[] {
  const rank = (r: RemoteImage): number => (r.explicitTag ? 0 : 2) + (r.ext === '.simg' ? 0 : 1);
  const best = new Map<string, { remote: RemoteImage; path: string }>();
  for (const path of paths) {
    const remote = readRemotePath(path);
    if (!remote) continue;
    const key = formatUri(remote.image);
    const current = best.get(key);
    if (!current || rank(remote) < rank(current.remote)) best.set(key, { remote, path });
  }
  return [...best.values()].map(({ remote, path }) => ({ image: remote.image, path }));
}

/** The `url` sregistry records for an image in Dropbox (a download, as the Python client writes it). */
export const DOWNLOAD_URL = 'https://content.dropboxapi.com/2/files/download';
