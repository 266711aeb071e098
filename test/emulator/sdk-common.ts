/**
 * Shared checks for the SDK conformance suite (test/emulator/sdk-*.test.ts): the Stone shapes
 * and formats of /work/shared/dropbox-api.md (§1–§4), asserted the same way in every file.
 */
import { posix } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Dropbox } from 'dropbox';
import { contentHash } from '../../src/dropbox/content-hash.js';
import { sdkError } from '../helpers/emulator.js';

/** §3: whole-second UTC timestamps. */
export const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
/** §3: lowercase hex, at least 9 chars. */
export const REV = /^[0-9a-f]{9,}$/;
/** §3: `id:` + opaque base64url. */
export const ID = /^id:[A-Za-z0-9_=-]+$/;

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** §2: `error_summary` = tag chain + `/` + 0–3 dots. */
export function summaryRe(chain: string): RegExp {
  return new RegExp(`^${escapeRe(chain)}/\\.{0,3}$`);
}

/**
 * A JSON error envelope (401/403/409/429) with the given status: checks the envelope's keys,
 * its Content-Type and its `error_summary` against `chain`; returns the envelope.
 */
export async function apiError(
  t: ExecutionContext,
  p: Promise<unknown>,
  status: number,
  chain: string | RegExp,
): Promise<{ error_summary: string; error: any }> {
  const e = await sdkError(p);
  t.is(e.status, status, `body: ${JSON.stringify(e.error)}`);
  t.is(typeof e.error, 'object', `expected a JSON envelope, got ${JSON.stringify(e.error)}`);
  const env: { error_summary: string; error: any } = typeof e.error === 'object' && e.error !== null ? e.error : {};
  t.regex(String(e.headers?.get?.('content-type') ?? ''), /^application\/json\b/);
  for (const k of Object.keys(env)) t.true(['error_summary', 'error', 'user_message'].includes(k), `unexpected envelope key ${k}`);
  t.regex(String(env.error_summary), typeof chain === 'string' ? summaryRe(chain) : chain);
  return env;
}

/** A 409 whose `error` must be exactly `error` (Stone shape, §1). */
export async function expect409(t: ExecutionContext, p: Promise<unknown>, error: unknown, chain: string): Promise<void> {
  const env = await apiError(t, p, 409, chain);
  t.deepEqual(env.error, error);
}

/** §2: 400 is plain text (the SDK hands it over as a string). */
export async function expect400(t: ExecutionContext, p: Promise<unknown>): Promise<string> {
  const e = await sdkError(p);
  t.is(e.status, 400, `body: ${JSON.stringify(e.error)}`);
  t.is(typeof e.error, 'string', `expected plain text, got ${JSON.stringify(e.error)}`);
  t.regex(String(e.headers?.get?.('content-type') ?? ''), /^text\/plain\b/);
  t.true(String(e.error).length > 0);
  return String(e.error);
}

const FILE_ONLY = ['rev', 'size', 'client_modified', 'server_modified', 'content_hash', 'is_downloadable'];

/** §4 FileMetadata; `tagged` says whether `.tag: file` must be there (§1) or absent. */
export function checkFile(
  t: ExecutionContext,
  m: any,
  exp: { tagged: boolean; path?: string; content?: Uint8Array },
): void {
  t.is(typeof m, 'object');
  if (exp.tagged) t.is(m['.tag'], 'file');
  else t.false('.tag' in m, `unexpected .tag in ${JSON.stringify(m)}`);
  t.regex(String(m.id), ID);
  t.regex(String(m.rev), REV);
  t.regex(String(m.client_modified), TS);
  t.regex(String(m.server_modified), TS);
  t.is(typeof m.name, 'string');
  t.false(String(m.name).includes('/'));
  t.is(typeof m.size, 'number');
  t.not(m.is_downloadable, false);
  if (m.content_hash !== undefined) t.regex(String(m.content_hash), /^[0-9a-f]{64}$/);
  if (exp.path !== undefined) {
    t.is(m.path_display, exp.path);
    t.is(m.path_lower, exp.path.toLowerCase());
    t.is(m.name, posix.basename(exp.path));
  } else {
    t.is(m.path_lower, String(m.path_display).toLowerCase());
    t.is(posix.basename(String(m.path_display)), m.name);
  }
  if (exp.content !== undefined) {
    t.is(m.size, exp.content.length);
    t.is(m.content_hash, contentHash(exp.content));
  }
}

/** §4 FolderMetadata; no file-only fields. */
export function checkFolder(t: ExecutionContext, m: any, exp: { tagged: boolean; path?: string }): void {
  t.is(typeof m, 'object');
  if (exp.tagged) t.is(m['.tag'], 'folder');
  else t.false('.tag' in m, `unexpected .tag in ${JSON.stringify(m)}`);
  t.regex(String(m.id), ID);
  t.is(typeof m.name, 'string');
  for (const k of FILE_ONLY) t.false(k in m, `folder metadata has ${k}`);
  if (exp.path !== undefined) {
    t.is(m.path_display, exp.path);
    t.is(m.path_lower, exp.path.toLowerCase());
    t.is(m.name, posix.basename(exp.path));
  }
}

/** Upload through the SDK. A fresh arg object each call: SDK 10.34 deletes `contents` from it. */
export async function up(dbx: Dropbox, path: string, content: Uint8Array | string, extra: Record<string, unknown> = {}): Promise<any> {
  const contents = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content);
  const res = await dbx.filesUpload({ path, contents, ...extra });
  return res.result;
}

/** Download through the SDK: metadata (Dropbox-API-Result), bytes, status and headers. */
export async function down(dbx: Dropbox, path: string): Promise<{ meta: any; bytes: Buffer; status: number; headers: any }> {
  const res = await dbx.filesDownload({ path });
  const result = res.result as any;
  const bytes = result.fileBinary as Buffer;
  const meta = { ...result };
  delete meta.fileBinary;
  return { meta, bytes, status: res.status, headers: res.headers };
}

/** A list_folder entry: the fields every tagged Metadata has, the rest loosely typed. */
export interface Entry {
  '.tag': string;
  name: string;
  path_lower: string;
  path_display: string;
  id?: string;
  rev?: string;
  [k: string]: any;
}

export interface Listing {
  pages: any[];
  entries: Entry[];
  cursor: string;
}

/** list_folder then continue while has_more (bounded). */
export async function listAll(dbx: Dropbox, arg: Record<string, unknown>): Promise<Listing> {
  const first = (await dbx.filesListFolder(arg as any)).result as any;
  return follow(dbx, first);
}

/** continue from `cursor` until has_more is false (bounded). */
export async function drain(dbx: Dropbox, cursor: string): Promise<Listing> {
  const first = (await dbx.filesListFolderContinue({ cursor })).result as any;
  return follow(dbx, first);
}

async function follow(dbx: Dropbox, first: any): Promise<Listing> {
  const pages = [first];
  let page = first;
  while (page.has_more === true) {
    if (pages.length > 500) throw new Error('more than 500 pages: has_more never turns false');
    page = (await dbx.filesListFolderContinue({ cursor: page.cursor })).result as any;
    pages.push(page);
  }
  return { pages, entries: pages.flatMap((p) => p.entries as Entry[]), cursor: page.cursor };
}

/** Deterministic pseudo-random bytes (no Math.random: reproducible failures). */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
