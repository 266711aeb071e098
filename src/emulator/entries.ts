/**
 * The emulator's value types, shared by the namespace (namespace.ts) and its routes: an entry
 * row as stored in `entries`, the write modes and arguments of a commit, a cursor's scope, and
 * the stone serialization of an entry. A leaf: it imports only paths.ts and errors.ts's JSON
 * types (neither imports back), so no import cycle can pass through it.
 * Invariants: a folder row has no rev, size, content_hash, times or blob; a file row has all
 * of them; ids are `id:` + 22 url-safe base64 characters, kept by a move, new for a copy.
 */
import { randomBytes } from 'node:crypto';
import type { Json } from './errors.js';
import { baseName, lower, parentOf } from './paths.js';

export interface EntryRow {
  path_lower: string;
  parent_lower: string;
  path_display: string;
  name: string;
  id: string;
  is_folder: 0 | 1;
  rev: string | null;
  size: number | null;
  content_hash: string | null;
  client_modified: string | null;
  server_modified: string | null;
  blob: string | null;
}

export type WriteMode = { '.tag': 'add' } | { '.tag': 'overwrite' } | { '.tag': 'update'; update: string };

export interface CommitArgs {
  path: string;
  mode: WriteMode;
  autorename: boolean;
  strictConflict: boolean;
  clientModified?: string;
  blob: string;
  size: number;
  contentHash: string;
}

export interface CommitResult {
  entry: EntryRow;
  /** false when identical content was already there: the caller's blob is unused. */
  wrote: boolean;
  /** Blobs no longer referenced, to unlink. */
  released: string[];
}

/** Journal filter of a cursor. */
export interface Scope {
  pathLower: string;
  recursive: boolean;
}

export const wholeSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
export const newId = (): string => `id:${randomBytes(16).toString('base64url')}`;

export function folderRow(display: string): EntryRow {
  const pl = lower(display);
  return {
    path_lower: pl,
    parent_lower: parentOf(pl),
    path_display: display,
    name: baseName(display),
    id: newId(),
    is_folder: 1,
    rev: null,
    size: null,
    content_hash: null,
    client_modified: null,
    server_modified: null,
    blob: null,
  };
}

/** Stone serialization of an entry; `.tag` only where the declared type is `Metadata`. */
export function toMetadata(row: EntryRow, withTag: boolean): { [k: string]: Json } {
  const base: { [k: string]: Json } = withTag ? { '.tag': row.is_folder ? 'folder' : 'file' } : {};
  if (row.is_folder) {
    return { ...base, name: row.name, path_lower: row.path_lower, path_display: row.path_display, id: row.id };
  }
  return {
    ...base,
    name: row.name,
    path_lower: row.path_lower,
    path_display: row.path_display,
    id: row.id,
    client_modified: row.client_modified,
    server_modified: row.server_modified,
    rev: row.rev,
    size: row.size,
    is_downloadable: true,
    content_hash: row.content_hash,
  };
}
