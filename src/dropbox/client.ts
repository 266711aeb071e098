/**
 * DropboxClient: the one way `sreg` talks to Dropbox. RPC routes go through the official SDK
 * (10.34, on our endpoint-aware fetch); content routes stream through Transport. Every call
 * passes the retry policy (retry.ts) and the token source (auth.ts), and fails as a
 * RemoteError naming its route.
 */
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Dropbox, DropboxAuth } from 'dropbox';
import { TokenSource, type Credentials } from './auth.js';
import { downloadRanges, fetchRange, fetchRangeInto } from './download.js';
import { RangeReader, type BodySink } from './range-socket.js';
import { endpointFetch, type FetchLike } from './endpoint.js';
import { describeBody, fromHttp, localError, notTheApi, RemoteError } from './errors.js';
import { Transport } from './http.js';
import { extraCaContext } from './tls-ca.js';
import { DEFAULT_RETRY, withRetries, type RetryOptions } from './retry.js';
import { SINGLE_REQUEST_MAX_BYTES, uploadFile, type CommitInfo, type RawFileMetadata } from './upload.js';

const require = createRequire(import.meta.url);

export type { CommitInfo, RawFileMetadata };

export interface ClientOptions extends Credentials {
  /** http(s)://host:port that stands in for every Dropbox host (the emulator); unset = Dropbox. */
  endpoint?: string;
  /** Parallel transfer workers (SREGISTRY_PYTHON_THREADS). */
  workers: number;
  /** Connect, response-header and idle-body timeout of every request (SREGISTRY_DROPBOX_TIMEOUT). */
  timeoutMs?: number;
  retry?: Partial<RetryOptions>;
  /** For --debug: one line per retry. */
  log?: (line: string) => void;
}

export interface FileMeta {
  kind: 'file';
  name: string;
  pathLower: string;
  pathDisplay: string;
  id: string;
  rev: string;
  size: number;
  contentHash: string;
  serverModified: string;
  clientModified: string;
}
export interface FolderMeta {
  kind: 'folder';
  name: string;
  pathLower: string;
  pathDisplay: string;
  id: string;
}
export interface DeletedMeta {
  kind: 'deleted';
  name: string;
  pathLower: string;
  pathDisplay: string;
}
export type Meta = FileMeta | FolderMeta | DeletedMeta;

export interface ListPage {
  entries: Meta[];
  cursor: string;
  hasMore: boolean;
}

export interface TransferOptions {
  onBytes?: (n: number) => void;
  signal?: AbortSignal;
}

type Raw = Record<string, unknown>;

/** Does `value` have every path in `fields` (`name/display_name`; and is it an object at all)? */
function hasFields(value: unknown, fields: readonly string[]): boolean {
  if (value === null && fields.length === 0) return true; // a void route's `null`
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  return fields.every((f) => f.split('/').reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Raw)[k] : undefined), value) !== undefined);
}

export function toMeta(raw: Raw, kind?: Meta['kind']): Meta {
  const tag = (kind ?? raw['.tag']) as Meta['kind'];
  const base = { name: String(raw.name), pathLower: String(raw.path_lower), pathDisplay: String(raw.path_display) };
  if (tag === 'deleted') return { kind: 'deleted', ...base };
  if (tag === 'folder') return { kind: 'folder', ...base, id: String(raw.id) };
  return {
    kind: 'file',
    ...base,
    id: String(raw.id),
    rev: String(raw.rev),
    size: Number(raw.size),
    contentHash: typeof raw.content_hash === 'string' ? raw.content_hash : '',
    serverModified: String(raw.server_modified),
    clientModified: String(raw.client_modified),
  };
}

export class DropboxClient {
  readonly tokens: TokenSource;
  /** The SDK, loaded at the first RPC call (a mount's `status`/`unmount` never load it). */
  private sdkP: Promise<{ sdk: Dropbox; auth: DropboxAuth }> | undefined;
  private readonly transport: Transport;
  /** The mount's block fetches: sockets that read into the cache's buffers. */
  private readonly ranges: RangeReader;
  private readonly retry: RetryOptions;
  private readonly fetch: FetchLike;

  constructor(readonly opts: ClientOptions) {
    // Extra CAs of a mount process (tls-ca.ts): read only when something here speaks TLS.
    const tlsUsed = opts.endpoint === undefined || new URL(opts.endpoint).protocol === 'https:';
    const secureContext = tlsUsed ? extraCaContext((line) => opts.log?.(line)) : undefined;
    this.fetch = endpointFetch(opts.endpoint, opts.timeoutMs, secureContext);
    this.tokens = new TokenSource(opts, this.fetch);
    this.transport = new Transport(opts.endpoint, opts.workers + 2, opts.timeoutMs, secureContext);
    this.ranges = new RangeReader(opts.endpoint, opts.workers + 2, opts.timeoutMs, secureContext);
    this.retry = {
      ...DEFAULT_RETRY,
      ...opts.retry,
      onExpired: (used) => this.tokens.expired(used),
      onRetry: (e, attempt, delayMs) => opts.log?.(`retry ${attempt} of ${e.route} in ${delayMs} ms: ${e.message}`),
      endpointLabel: this.transport.label,
    };
  }

  close(): void {
    this.transport.close();
    this.ranges.close();
  }

  private loadSdk(): Promise<{ sdk: Dropbox; auth: DropboxAuth }> {
    // Through require, as node-fetch (endpoint.ts), which the SDK's DropboxAuth requires anyway.
    this.sdkP ??= Promise.resolve().then(() => require('dropbox') as typeof import('dropbox')).then(({ Dropbox, DropboxAuth }) => {
      // The SDK gets only the current access token: refreshing is ours (single flight, on 401 too).
      const auth = new DropboxAuth({ fetch: this.fetch });
      return { sdk: new Dropbox({ auth, fetch: this.fetch }), auth };
    });
    return this.sdkP;
  }

  /**
   * An RPC call through the SDK, with the policy. The answer must be a JSON object with
   * `fields` (paths like `name/display_name`): anything else (HTML, broken JSON) is "not the API", never a TypeError.
   */
  private rpc<T>(route: string, call: (dbx: Dropbox) => Promise<{ result: unknown }>, fields: readonly string[] = [], signal?: AbortSignal): Promise<T> {
    return withRetries(
      route,
      async (attempt) => {
        const { sdk, auth } = await this.loadSdk();
        attempt.token = await this.tokens.get();
        auth.setAccessToken(attempt.token);
        const result = (await call(sdk)).result;
        if (!hasFields(result, fields)) throw notTheApi(route, describeBody(result), this.transport.label);
        return result as T;
      },
      { ...this.retry, signal },
    );
  }

  async currentAccount(): Promise<{ accountId: string; displayName: string; email: string }> {
    const r = await this.rpc<{ account_id: string; name: { display_name: string }; email: string }>('users/get_current_account', (d) =>
      d.usersGetCurrentAccount(), ['account_id', 'name/display_name'],
    );
    return { accountId: r.account_id, displayName: r.name.display_name, email: r.email };
  }

  /** Fails with insufficient_space when `size` bytes cannot fit in the account's free space. */
  async checkSpace(dropboxPath: string, size: number): Promise<void> {
    const { usedBytes, allocatedBytes } = await this.spaceUsage();
    if (allocatedBytes <= 0) return; // unknown allocation (team space without a limit): let Dropbox decide
    const freeBytes = Math.max(0, allocatedBytes - usedBytes);
    if (size <= freeBytes) return;
    const gb = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`);
    throw new RemoteError(
      'insufficient_space',
      'users/get_space_usage',
      `not enough space in Dropbox for ${dropboxPath}: it needs ${gb(size)}, ${gb(freeBytes)} of ${gb(allocatedBytes)} is free (nothing was sent)`,
    );
  }

  async spaceUsage(): Promise<{ usedBytes: number; allocatedBytes: number }> {
    const r = await this.rpc<{ used: number; allocation: { allocated?: number } }>('users/get_space_usage', (d) => d.usersGetSpaceUsage(), ['used', 'allocation']);
    return { usedBytes: r.used, allocatedBytes: r.allocation.allocated ?? 0 };
  }

  /** Metadata of a path, or undefined when nothing is there. */
  async getMetadata(p: string): Promise<FileMeta | FolderMeta | undefined> {
    const raw = await this.rawMetadata(p);
    return raw && (toMeta(raw) as FileMeta | FolderMeta);
  }

  private async rawMetadata(p: string): Promise<Raw | undefined> {
    try {
      return await this.rpc<Raw>('files/get_metadata', (d) => d.filesGetMetadata({ path: p }), ['.tag', 'path_lower']);
    } catch (e) {
      if (e instanceof RemoteError && e.code === 'not_found') return undefined;
      throw e;
    }
  }

  async listFolder(p: string, recursive: boolean, limit?: number): Promise<ListPage> {
    const r = await this.rpc<{ entries: Raw[]; cursor: string; has_more: boolean }>('files/list_folder', (d) =>
      d.filesListFolder({ path: p, recursive, ...(limit ? { limit } : {}) }), ['entries', 'cursor', 'has_more'],
    );
    return { entries: r.entries.map((e) => toMeta(e)), cursor: r.cursor, hasMore: r.has_more };
  }

  async listContinue(cursor: string): Promise<ListPage> {
    const r = await this.rpc<{ entries: Raw[]; cursor: string; has_more: boolean }>('files/list_folder/continue', (d) =>
      d.filesListFolderContinue({ cursor }), ['entries', 'cursor', 'has_more'],
    );
    return { entries: r.entries.map((e) => toMeta(e)), cursor: r.cursor, hasMore: r.has_more };
  }

  /** Every entry under `p` (all pages) and the cursor to follow changes from. */
  async listAll(p: string, recursive: boolean): Promise<{ entries: Meta[]; cursor: string }> {
    let page = await this.listFolder(p, recursive);
    const entries = [...page.entries];
    while (page.hasMore) {
      page = await this.listContinue(page.cursor);
      entries.push(...page.entries);
    }
    return { entries, cursor: page.cursor };
  }

  async latestCursor(p: string, recursive: boolean): Promise<string> {
    const r = await this.rpc<{ cursor: string }>('files/list_folder/get_latest_cursor', (d) =>
      d.filesListFolderGetLatestCursor({ path: p, recursive }), ['cursor'],
    );
    return r.cursor;
  }

  /**
   * Waits for changes after `cursor` (no token needed). Plain fetch rather than the SDK, so
   * that `signal` really aborts the open request (the SDK 10.34 has no per-call signal).
   */
  async longpoll(cursor: string, timeoutSec = 30, signal?: AbortSignal): Promise<{ changes: boolean; backoffSec?: number }> {
    const route = 'files/list_folder/longpoll';
    const r = await withRetries(
      route,
      async () => {
        const res = await this.fetch(`https://notify.dropboxapi.com/2/${route}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ cursor, timeout: timeoutSec }),
          signal: signal as never,
          // It waits by design: up to `timeout` plus Dropbox's jitter of up to 90 s, then our own timeout.
          timeout: (timeoutSec + 90) * 1000 + (this.opts.timeoutMs ?? 30_000),
        });
        const text = await res.text();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* plain-text error */
        }
        if (!res.ok) throw fromHttp(route, res.status, body, res.headers.get('retry-after'));
        if (!hasFields(body, ['changes'])) throw notTheApi(route, describeBody(body), this.transport.label);
        return body as { changes: boolean; backoff?: number };
      },
      { ...this.retry, signal },
    );
    return { changes: r.changes, backoffSec: r.backoff };
  }

  /** delete_v2; with `parentRev` (a file), a file of another revision is not deleted: 'conflict'. */
  async delete(p: string, parentRev?: string): Promise<Meta> {
    const arg = parentRev === undefined ? { path: p } : { path: p, parent_rev: parentRev };
    const r = await this.rpc<{ metadata: Raw }>('files/delete_v2', (d) => d.filesDeleteV2(arg), ['metadata']);
    return toMeta(r.metadata);
  }

  async move(from: string, to: string): Promise<Meta> {
    const r = await this.rpc<{ metadata: Raw }>('files/move_v2', (d) => d.filesMoveV2({ from_path: from, to_path: to }), ['metadata']);
    return toMeta(r.metadata);
  }

  async createFolder(p: string): Promise<FolderMeta> {
    const r = await this.rpc<{ metadata: Raw }>('files/create_folder_v2', (d) => d.filesCreateFolderV2({ path: p }), ['metadata']);
    return toMeta(r.metadata, 'folder') as FolderMeta;
  }

  /** The shared link of a path: a new one, or the one that already exists. */
  async shareLink(p: string): Promise<string> {
    try {
      const r = await this.rpc<{ url: string }>('sharing/create_shared_link_with_settings', (d) => d.sharingCreateSharedLinkWithSettings({ path: p }), ['url']);
      return r.url;
    } catch (e) {
      if (!(e instanceof RemoteError) || e.tags[0] !== 'shared_link_already_exists') throw e;
      const existing = await this.listSharedLinks(p, true);
      if (existing[0]) return existing[0];
      throw e;
    }
  }

  /** URLs of links to exactly `p` (directOnly) or to it and its ancestors. */
  async listSharedLinks(p: string, directOnly: boolean): Promise<string[]> {
    const r = await this.rpc<{ links: { url: string; path_lower?: string }[] }>('sharing/list_shared_links', (d) =>
      d.sharingListSharedLinks({ path: p, direct_only: directOnly }), ['links'],
    );
    return r.links.map((l) => l.url);
  }

  async revokeSharedLink(url: string): Promise<void> {
    await this.rpc('sharing/revoke_shared_link', (d) => d.sharingRevokeSharedLink({ url }));
  }

  /**
   * Downloads a file into `dest` (atomically: a hidden partial file in the same folder,
   * renamed over `dest` once the content_hash checks out; removed on any failure).
   */
  async download(p: string, dest: string, o: TransferOptions = {}): Promise<FileMeta> {
    const meta = await this.getMetadata(p);
    if (!meta) throw new RemoteError('not_found', 'files/get_metadata', `${p} does not exist in Dropbox`);
    if (meta.kind !== 'file') throw new RemoteError('not_found', 'files/get_metadata', `${p} is a folder, not a file`);
    const dir = path.dirname(dest);
    const partial = path.join(dir, `.${path.basename(dest)}.sreg-partial-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw localError('create the folder', dir, e);
    }
    let fh;
    try {
      fh = await open(partial, 'wx', 0o644);
    } catch (e) {
      throw localError('write into', dir, e);
    }
    try {
      await downloadRanges({
        transport: this.transport,
        token: () => this.tokens.get(),
        retry: this.retry,
        source: `rev:${meta.rev}`,
        size: meta.size,
        contentHash: meta.contentHash,
        file: fh,
        fileLabel: dest,
        workers: this.opts.workers,
        onBytes: o.onBytes,
        signal: o.signal,
      });
      try {
        await fh.sync();
      } catch (e) {
        throw localError('write', dest, e);
      }
      await fh.close();
      fh = undefined;
      await rename(partial, dest).catch((e: unknown) => Promise.reject(localError('write', dest, e)));
      return meta;
    } catch (e) {
      await fh?.close().catch(() => undefined);
      await unlink(partial).catch(() => undefined);
      if (e instanceof RemoteError && e.code === 'not_found' && e.route === 'files/download') {
        throw new RemoteError('not_found', 'files/download', `${p} changed or was deleted while it was being downloaded; try again`);
      }
      throw e;
    }
  }

  /** Bytes [start, end) of a revision (`rev:…` or a path), in memory: for one cache block. */
  /** With `deadlineMs`, an outage (unreachable, stalled, 5xx) is ridden out until then (reads through the mount). */
  readRange(source: string, start: number, end: number, o: { signal?: AbortSignal; into?: Buffer; deadlineMs?: number } = {}): Promise<Buffer> {
    const retry = o.deadlineMs === undefined ? this.retry : { ...this.retry, deadlineMs: o.deadlineMs };
    return fetchRange({ reader: this.ranges, token: () => this.tokens.get(), retry, source, start, end, signal: o.signal, into: o.into });
  }

  /** Like readRange, with the bytes going into `sink`'s rooms in turn (one request for a run of cache blocks). */
  readRangeInto(source: string, start: number, end: number, sink: BodySink, o: { signal?: AbortSignal; deadlineMs?: number } = {}): Promise<void> {
    const retry = o.deadlineMs === undefined ? this.retry : { ...this.retry, deadlineMs: o.deadlineMs };
    return fetchRangeInto({ reader: this.ranges, token: () => this.tokens.get(), retry, source, start, end, signal: o.signal }, sink);
  }

  /**
   * Uploads a local file of `size` bytes to `commit.path`. A file that needs an upload session
   * is first checked against the account's free space (users/get_space_usage): one that cannot
   * fit fails at once, not after all its bytes were sent.
   */
  async upload(file: string, size: number, commit: CommitInfo, o: TransferOptions = {}): Promise<FileMeta> {
    if (size > SINGLE_REQUEST_MAX_BYTES) await this.checkSpace(commit.path, size);
    const raw = await uploadFile({
      transport: this.transport,
      token: () => this.tokens.get(),
      retry: this.retry,
      file,
      size,
      commit,
      workers: this.opts.workers,
      lookup: async (p) => {
        const raw = await this.rawMetadata(p);
        return raw?.['.tag'] === 'file' ? (raw as unknown as RawFileMetadata) : undefined;
      },
      onBytes: o.onBytes,
      signal: o.signal,
    });
    return toMeta(raw as unknown as Raw, 'file') as FileMeta;
  }
}
