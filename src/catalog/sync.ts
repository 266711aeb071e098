/**
 * CatalogSync: keeps the RemoteMirror in step with Dropbox (the SyncPort).
 *
 * start(): when the saved state (`sreg_remote_state`: cursor, endpoint, account_id) is this
 * endpoint's and this account's, catch up with `list_folder/continue` from the saved cursor;
 * otherwise clear the mirror and list "" recursively. Each page is applied together with its
 * cursor in one transaction, so a crash mid-listing resumes where it stopped. Then the loop
 * starts and start() resolves. If a catch-up cannot reach Dropbox (network, 429, 5xx) the saved
 * mirror is used as it is and the loop retries; a first listing that fails rejects.
 *
 * With `catchUpInBackground` (the mount: it answers from the saved catalog at once), start()
 * resolves without waiting for the catch-up when the saved catalog is complete (a listing or
 * catch-up ran to !has_more; `complete` in the saved state, cleared when a first listing
 * starts) and is this endpoint's and this account's: the loop catches up first, applying its
 * pages as it applies a longpoll's, then longpolls. `caughtUp()` resolves once that first
 * catch-up ended (done, or failed and left to the loop's retries), so that the VFS lets no
 * change be based on the catalog as it was before the mount started. A fresh or partial
 * catalog, or another account's, is still listed before start() resolves.
 *
 * The loop: longpoll(cursor) → on changes, `continue` until !has_more (each page applied with
 * its cursor, then `onChange(paths)`); `backoff` is waited out before the next longpoll.
 * `reset` (from continue or longpoll): a full relist, kept in memory and swapped in by one
 * `replaceAll` transaction (readers never see an empty or half tree), then `onChange([''])`
 * ("" = anything may have changed). Any other error: logged, then a capped exponential wait
 * (1 s, 2 s, … 60 s) before trying again: the loop never dies and never spins.
 *
 * Concurrency: one loop; every network call is raced against the stop signal, so stop() returns
 * promptly (a longpoll already sent is abandoned, its answer ignored). No database work happens
 * after stop() resolves. lookup/children on the mirror never wait on any of this.
 */
import type { Database, Statement } from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DropboxClient, ListPage, Meta } from '../dropbox/client.js';
import { RemoteError } from '../dropbox/errors.js';
import type { SyncPort } from '../vfs/ports.js';
import type { RemoteMirror } from './mirror.js';

export type SyncClient = Pick<DropboxClient, 'listFolder' | 'listContinue' | 'longpoll' | 'currentAccount'>;

export interface CatalogSyncOptions {
  mirror: RemoteMirror;
  db: Database;
  client: SyncClient;
  /** Whose tree this is: a saved state from another endpoint (or account) is thrown away. */
  identity: { endpoint: string };
  /** Sent as the longpoll `timeout` (Dropbox: 30–480). Default 30. */
  longpollTimeoutSec?: number;
  /** `limit` of the first `list_folder` call (Dropbox: 1–2000, approximate). Default: unset. */
  pageLimit?: number;
  /** First and largest wait after a failed round of the loop. Default 1 s and 60 s. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  log?: (line: string) => void;
  /** Catch up with a complete saved catalog after start() resolved (see above). Default false. */
  catchUpInBackground?: boolean;
  /** After each applied page: the path_lower of every entry in it; [''] after a relist. */
  onChange?: (changedPathsLower: string[]) => void;
  nowMs?: () => number;
}

interface SavedState {
  cursor?: string;
  endpoint?: string;
  accountId?: string;
  /** '1' once a listing ran to !has_more (a first listing cut short leaves a cursor, not this). */
  complete?: string;
}

const KEYS = { cursor: 'cursor', endpoint: 'endpoint', accountId: 'account_id', complete: 'complete' } as const;

/** The transient failures a saved mirror can ride out at start. */
const TRANSIENT = new Set<RemoteError['code']>(['network', 'rate_limited', 'server', 'auth_expired']);

class AbortedError extends Error {
  override readonly name = 'AbortedError';
}

/** `p`, or a rejection as soon as `signal` aborts (then `p`'s outcome is ignored). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  p.catch(() => undefined);
  if (signal.aborted) return Promise.reject(new AbortedError('stopped'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortedError('stopped'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class CatalogSync implements SyncPort {
  private readonly mirror: RemoteMirror;
  private readonly db: Database;
  private readonly client: SyncClient;
  private readonly endpoint: string;
  private readonly longpollTimeoutSec: number;
  private readonly pageLimit: number | undefined;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly log: (line: string) => void;
  private readonly onChange: ((paths: string[]) => void) | undefined;
  private readonly now: () => number;
  private readonly catchUpInBackground: boolean;
  private readonly stmt: { get: Statement<[string], { value: string }>; set: Statement<[string, string]>; del: Statement<[string]> };

  private cursor: string | undefined;
  private accountId: string | undefined;
  /** The start-up sync still has to happen (start() rode out a failure on the saved mirror). */
  private needStartup = false;
  private needRelist = false;
  /** The loop's first job: the catch-up start() left to it (catchUpInBackground). */
  private needCatchUp = false;
  private caughtUpResolve: (() => void) | undefined;
  private caughtUpP: Promise<void> = Promise.resolve();
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private lastSyncMs = 0;
  private lastError: string | undefined;
  /** The mirror's size, counted when asked (count() is O(n)); undefined = count again. */
  private entries: number | undefined;

  constructor(opts: CatalogSyncOptions) {
    this.mirror = opts.mirror;
    this.db = opts.db;
    this.client = opts.client;
    this.endpoint = opts.identity.endpoint;
    this.longpollTimeoutSec = opts.longpollTimeoutSec ?? 30;
    this.pageLimit = opts.pageLimit;
    this.retryBaseMs = opts.retryBaseMs ?? 1000;
    this.retryMaxMs = opts.retryMaxMs ?? 60_000;
    this.log = opts.log ?? (() => undefined);
    this.onChange = opts.onChange;
    this.now = opts.nowMs ?? Date.now;
    this.catchUpInBackground = opts.catchUpInBackground ?? false;
    this.stmt = {
      get: this.db.prepare<[string], { value: string }>('SELECT value FROM sreg_remote_state WHERE key = ?'),
      set: this.db.prepare<[string, string]>(
        'INSERT INTO sreg_remote_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
      del: this.db.prepare<[string]>('DELETE FROM sreg_remote_state WHERE key = ?'),
    };
  }

  /** `known`: the account the caller has just checked (saves asking Dropbox again). */
  async start(known?: { accountId: string }): Promise<void> {
    if (this.loop) throw new Error('CatalogSync.start() was called twice');
    this.abort = new AbortController();
    const saved = this.loadState();
    this.entries = undefined;
    if (this.catchUpInBackground && known && saved.cursor !== undefined && saved.complete === '1' && saved.endpoint === this.endpoint && saved.accountId === known.accountId) {
      this.accountId = known.accountId;
      this.cursor = saved.cursor;
      this.needCatchUp = true;
      this.caughtUpP = new Promise<void>((resolve) => (this.caughtUpResolve = resolve));
      this.log('catalog: answering from the saved catalog; catching up with Dropbox in the background');
      this.loop = this.run();
      return;
    }
    try {
      await this.startup(saved, known);
    } catch (e) {
      const usable = saved.cursor !== undefined && saved.endpoint === this.endpoint && e instanceof RemoteError && TRANSIENT.has(e.code);
      if (!usable) throw e;
      this.lastError = message(e);
      this.log(`catalog: cannot reach Dropbox at start (${this.lastError}); using the saved catalog, retrying in the background`);
      this.needStartup = true;
    }
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    const loop = this.loop;
    this.loop = undefined;
    await loop;
    this.caughtUpEnded();
  }

  /**
   * Resolves once the catch-up from the saved cursor that start() left to the loop has ended:
   * done, or failed once (Dropbox unreachable: the saved catalog is used as it is, as start()
   * does without catchUpInBackground), or stopped. Resolved at once otherwise.
   */
  caughtUp(): Promise<void> {
    return this.caughtUpP;
  }

  private caughtUpEnded(): void {
    this.caughtUpResolve?.();
    this.caughtUpResolve = undefined;
  }

  status(): { lastSyncMs: number; lastError?: string; entries: number } {
    this.entries ??= this.mirror.count();
    return { lastSyncMs: this.lastSyncMs, entries: this.entries, ...(this.lastError === undefined ? {} : { lastError: this.lastError }) };
  }

  private get signal(): AbortSignal {
    return this.abort.signal;
  }

  private net<T>(p: Promise<T>): Promise<T> {
    return untilAborted(p, this.signal);
  }

  /** Catch-up from the saved cursor, or (new, or another endpoint or account) a first listing. */
  private async startup(saved: SavedState, known?: { accountId: string }): Promise<void> {
    const account = known ?? (await this.net(this.client.currentAccount()));
    this.accountId = account.accountId;
    const ours = saved.cursor !== undefined && saved.endpoint === this.endpoint && saved.accountId === account.accountId;
    if (ours && saved.cursor !== undefined) {
      this.cursor = saved.cursor;
      try {
        await this.catchUp();
        return;
      } catch (e) {
        if (!(e instanceof RemoteError && e.code === 'reset')) throw e;
        this.log('catalog: the saved cursor was reset by Dropbox; listing everything again');
        await this.relist();
        return;
      }
    }
    this.log(
      saved.cursor === undefined
        ? 'catalog: first listing of the remote tree'
        : 'catalog: the saved catalog belongs to another endpoint or account; listing everything again',
    );
    this.db.transaction(() => {
      this.mirror.clear();
      this.stmt.del.run(KEYS.cursor);
      this.stmt.del.run(KEYS.complete);
      this.stmt.set.run(KEYS.endpoint, this.endpoint);
      this.stmt.set.run(KEYS.accountId, account.accountId);
    }).immediate();
    this.cursor = undefined;
    let page = await this.net(this.client.listFolder('', true, this.pageLimit));
    this.commitPage(page, false);
    while (page.hasMore) {
      page = await this.net(this.client.listContinue(page.cursor));
      this.commitPage(page, false);
    }
    this.stmt.set.run(KEYS.complete, '1');
    this.synced();
  }

  /** `continue` from the cursor until !has_more, each page applied with its cursor. */
  private async catchUp(): Promise<void> {
    for (;;) {
      const from = this.cursor;
      if (from === undefined) throw new Error('catalog: no cursor to continue from');
      const page = await this.net(this.client.listContinue(from));
      this.commitPage(page, true);
      if (!page.hasMore) break;
    }
    // A first listing cut short resumes here: it is whole once it reaches !has_more.
    this.stmt.set.run(KEYS.complete, '1');
    this.synced();
  }

  /** A full listing kept in memory, then swapped in whole with its cursor. */
  private async relist(): Promise<void> {
    let page = await this.net(this.client.listFolder('', true, this.pageLimit));
    const all: Meta[] = [...page.entries];
    while (page.hasMore) {
      page = await this.net(this.client.listContinue(page.cursor));
      for (const e of page.entries) all.push(e);
    }
    if (this.signal.aborted) throw new AbortedError('stopped');
    const cursor = page.cursor;
    this.db.transaction(() => {
      this.mirror.replaceAll(all);
      this.saveIdentity(cursor);
      this.stmt.set.run(KEYS.complete, '1');
    }).immediate();
    this.cursor = cursor;
    this.needRelist = false;
    this.synced();
    this.notify(['']);
  }

  private commitPage(page: ListPage, notify: boolean): void {
    if (this.signal.aborted) throw new AbortedError('stopped');
    this.db.transaction(() => {
      this.mirror.applyPage(page.entries);
      this.saveIdentity(page.cursor);
    }).immediate();
    this.cursor = page.cursor;
    if (notify && page.entries.length) this.notify(page.entries.map((e) => e.pathLower));
  }

  private saveIdentity(cursor: string): void {
    this.stmt.set.run(KEYS.cursor, cursor);
    this.stmt.set.run(KEYS.endpoint, this.endpoint);
    if (this.accountId !== undefined) this.stmt.set.run(KEYS.accountId, this.accountId);
  }

  /** After a listing or catch-up: the mirror is in step (count() is O(n), once per batch). */
  private synced(): void {
    this.entries = undefined;
    this.lastSyncMs = this.now();
    this.lastError = undefined;
  }

  private notify(paths: string[]): void {
    try {
      this.onChange?.(paths);
    } catch (e) {
      this.log(`catalog: onChange failed: ${message(e)}`);
    }
  }

  private loadState(): SavedState {
    const get = (k: string): string | undefined => this.stmt.get.get(k)?.value;
    return { cursor: get(KEYS.cursor), endpoint: get(KEYS.endpoint), accountId: get(KEYS.accountId), complete: get(KEYS.complete) };
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.signal.aborted) {
      try {
        if (this.needStartup) {
          await this.startup(this.loadState());
          this.needStartup = false;
        }
        if (this.needRelist) await this.relist();
        if (this.needCatchUp) {
          const t0 = this.now();
          await this.catchUp();
          this.needCatchUp = false;
          this.caughtUpEnded();
          this.log(`catalog: caught up in the background in ${this.now() - t0} ms`);
        }
        const cursor = this.cursor;
        if (cursor === undefined) throw new Error('catalog: no cursor to follow changes from');
        const r = await this.net(this.client.longpoll(cursor, this.longpollTimeoutSec, this.signal));
        if (r.changes) {
          await this.catchUp();
          // A server that says "changes" without moving the cursor would make us spin.
          if (this.cursor === cursor) await this.wait(this.retryBaseMs);
        }
        failures = 0;
        this.lastError = undefined;
        if (r.backoffSec) await this.wait(r.backoffSec * 1000);
      } catch (e) {
        if (this.signal.aborted || e instanceof AbortedError) break;
        // The first catch-up failed: writes wait no longer (the saved catalog is used as it
        // is, as a start without catchUpInBackground would); the loop keeps trying it.
        this.caughtUpEnded();
        if (e instanceof RemoteError && e.code === 'reset') {
          this.needCatchUp = false; // the relist replaces the catch-up
          this.log('catalog: the cursor was reset by Dropbox; listing everything again');
          if (!this.needRelist) {
            this.needRelist = true;
            continue;
          }
        }
        failures++;
        this.lastError = message(e);
        const delayMs = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(failures - 1, 30));
        this.log(`catalog: sync failed (${this.lastError}); trying again in ${delayMs} ms`);
        await this.wait(delayMs);
      }
    }
  }

  /** Sleeps, or returns early when stopped. */
  private async wait(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.signal }).catch(() => undefined);
  }
}
