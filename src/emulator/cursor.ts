/**
 * list_folder cursors: opaque to clients, self-describing to us. A cursor names the scope
 * (path, recursive), the journal position, the epoch (reset-cursors changes it, and so does a
 * new --root) and, while an initial listing is being paged, the last key returned.
 */
import { badRequest } from './errors.js';

export interface Cursor {
  e: string;
  p: string;
  r: boolean;
  /** journal seq: changes after it are still to be sent */
  s: number;
  /** listing in progress: last path_lower sent */
  a?: string;
  /** page size */
  l: number;
}

export function encodeCursor(c: Cursor): string {
  return `AA${Buffer.from(JSON.stringify(c)).toString('base64url')}`;
}

export function decodeCursor(route: string, text: string): Cursor {
  try {
    if (!text.startsWith('AA')) throw new Error('prefix');
    const c = JSON.parse(Buffer.from(text.slice(2), 'base64url').toString()) as Cursor;
    if (typeof c.e !== 'string' || typeof c.p !== 'string' || typeof c.s !== 'number' || typeof c.l !== 'number') throw new Error('shape');
    return c;
  } catch {
    throw badRequest(route, 'Invalid "cursor" parameter: this is not a cursor that list_folder returned.');
  }
}
