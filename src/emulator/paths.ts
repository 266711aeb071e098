/**
 * Path rules of the app folder (dropbox-api.md §3): "" is the root and only where allowed,
 * "/" is refused with its own 400, other paths start with "/", lookups are case-insensitive
 * and case-preserving (`path_lower` is the key), empty components are `malformed_path`,
 * and some names are refused on write (`disallowed_name`).
 */
import { lookupFailed, writeFailed } from './errors.js';
export const ROOT_AS_SLASH = 'Specify the root folder as an empty string rather than as "/".';
export const ROOT_UNSUPPORTED = 'The root folder is unsupported.';

const DISALLOWED = new Set(['desktop.ini', 'thumbs.db', '.ds_store', 'icon\r', '.dropbox', '.dropbox.attr']);

export const lower = (p: string): string => p.toLowerCase();

export function parentOf(pathLower: string): string {
  const i = pathLower.lastIndexOf('/');
  return i <= 0 ? '' : pathLower.slice(0, i);
}

export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Splits "/a/b/c" into its components, refusing empty ones (`//`, a trailing `/`). */
export function components(p: string): string[] {
  if (p === '') return [];
  const parts = p.slice(1).split('/');
  if (parts.some((c) => c === '')) throw lookupFailed('malformed_path');
  return parts;
}

/** A name that may be written: not ignored by Dropbox, no trailing space, no `\`, no DEL, ≤ 255 chars. */
export function checkWritableName(name: string): void {
  if (DISALLOWED.has(name.toLowerCase())) throw writeFailed({ '.tag': 'disallowed_name' });
  if (name.length > 255 || name.endsWith(' ') || name.includes('\\') || name.includes('\x7f') || name === '.' || name === '..') {
    throw writeFailed({ '.tag': 'malformed_path' });
  }
}

/** Checks a path about to be written: well-formed and every component writable. */
export function checkWritablePath(p: string): string[] {
  let parts: string[];
  try {
    parts = components(p);
  } catch {
    throw writeFailed({ '.tag': 'malformed_path' });
  }
  parts.forEach(checkWritableName);
  return parts;
}
