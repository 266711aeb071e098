/** Path helpers of the journal, and what of an error may be stored in it. */
import path from 'node:path';
import { UploadError } from './errors.js';

/** Dropbox's key for a path (the catalog and the VFS lower-case the same way). */
export const lowerOf = (p: string): string => p.toLowerCase();

/** "/a/b" → "/a"; "/a" → "" (the root). */
export function parentOf(pathLower: string): string {
  const i = pathLower.lastIndexOf('/');
  return i <= 0 ? '' : pathLower.slice(0, i);
}

/** Is `pathLower` `folderLower` itself or below it? ("" is the root: everything is below it.) */
export const isUnder = (pathLower: string, folderLower: string): boolean => pathLower === folderLower || pathLower.startsWith(`${folderLower}/`);

/** A file path as Dropbox takes it: "/" then non-empty components. Throws `bad_path`. */
export function checkFilePath(p: string): void {
  if (!p.startsWith('/') || p.endsWith('/') || p.includes('//')) {
    throw new UploadError('bad_path', `not a Dropbox file path: ${JSON.stringify(p)}`);
  }
}

/** The absolute path of `file`, which must lie inside `dir`. Throws `bad_spool`. */
export function insideDir(dir: string, file: string): string {
  const abs = path.resolve(dir, file);
  const rel = path.relative(path.resolve(dir), abs);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new UploadError('bad_spool', `spool file ${file} is not inside the spool folder ${dir}`);
  }
  return abs;
}

/** `toPath` + the components of `p` below `fromLower` (whose component count is used, not its length). */
export function rebase(p: string, fromLower: string, toPath: string): string {
  const depth = fromLower.split('/').length;
  return [toPath, ...p.split('/').slice(depth)].join('/');
}

const MAX_ERROR_CHARS = 500;

/** A one-line message for the journal and the logs: never a token, never a huge body. */
export function describeError(e: unknown): string {
  const raw = e instanceof Error ? e.message || e.name : String(e);
  const clean = raw
    .replace(/(bearer\s+)[^\s"',;]+/gi, '$1[redacted]')
    .replace(/((?:access_token|refresh_token|token|secret)["']?\s*[=:]\s*["']?)[^\s"'&,;}]+/gi, '$1[redacted]')
    .replace(/\s+/g, ' ')
    .trim();
  return clean.length > MAX_ERROR_CHARS ? `${clean.slice(0, MAX_ERROR_CHARS - 1)}…` : clean;
}
