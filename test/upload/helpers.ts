/**
 * Shared pieces of the upload-queue tests: a temporary mount state database and spool folder (always
 * removed), spool files, a fake client that records calls and can be delayed, gated or made to
 * fail, and a polling wait (its limit only turns a hang into a failure).
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Database } from 'better-sqlite3';
import { MountStateDb } from '../../src/catalog/mount-state.js';
import type { CommitInfo, FileMeta, TransferOptions } from '../../src/dropbox/client.js';
import { readFile } from 'node:fs/promises';

export interface Env {
  dir: string;
  reg: MountStateDb;
  db: Database;
  spoolDir: string;
}

export async function setup(t: ExecutionContext): Promise<Env> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-upload-test-'));
  const reg = MountStateDb.open(dir);
  const spoolDir = path.join(dir, 'spool');
  await mkdir(spoolDir);
  t.teardown(async () => {
    reg.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { dir, reg, db: reg.durable, spoolDir };
}

/** Writes a spool file and returns its path. */
export async function spool(spoolDir: string, name: string, content: string | Buffer): Promise<string> {
  const file = path.join(spoolDir, name);
  await writeFile(file, content);
  return file;
}

export interface Row {
  id: number;
  path: string;
  path_lower: string;
  parent_lower: string;
  spool: string;
  size: number;
  state: string;
  attempts: number;
  last_error: string | null;
  base_rev: string | null;
}

export const rows = (db: Database): Row[] => db.prepare('SELECT * FROM sreg_uploads ORDER BY id').all() as Row[];

export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** `p`, or a rejection as soon as `signal` aborts (as the real client does). */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export interface Call {
  n: number;
  file: string;
  size: number;
  path: string;
  mode: CommitInfo['mode'];
  content: string;
  signal: AbortSignal | undefined;
  onBytes: ((n: number) => void) | undefined;
  startedAtMs: number;
  outcome?: 'ok' | 'failed' | 'aborted';
}

/** A stand-in for DropboxClient.upload. `behavior` runs per call: throw to fail it. */
export class FakeClient {
  readonly calls: Call[] = [];
  running = 0;
  maxRunning = 0;
  /** Times two calls of one path (case-insensitive) overlapped. */
  samePathOverlaps = 0;
  private readonly runningPaths = new Map<string, number>();
  behavior: (c: Call) => Promise<void> | void = () => undefined;

  async upload(file: string, size: number, commit: CommitInfo, o: TransferOptions = {}): Promise<FileMeta> {
    const key = commit.path.toLowerCase();
    const call: Call = {
      n: this.calls.length + 1,
      file,
      size,
      path: commit.path,
      mode: commit.mode,
      content: '',
      signal: o.signal,
      onBytes: o.onBytes,
      startedAtMs: Date.now(),
    };
    this.calls.push(call); // in the order the queue started them
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const same = this.runningPaths.get(key) ?? 0;
    if (same > 0) this.samePathOverlaps++;
    this.runningPaths.set(key, same + 1);
    try {
      call.content = await readFile(file, 'utf8');
      await this.behavior(call);
      call.outcome = 'ok';
      return {
        kind: 'file',
        name: path.posix.basename(commit.path),
        pathLower: key,
        pathDisplay: commit.path,
        id: `id:fake${call.n}`,
        rev: `0151${String(call.n).padStart(5, '0')}`,
        size,
        contentHash: 'fake',
        serverModified: '2024-01-01T00:00:00Z',
        clientModified: '2024-01-01T00:00:00Z',
      };
    } catch (e) {
      call.outcome = o.signal?.aborted ? 'aborted' : 'failed';
      throw e;
    } finally {
      this.running--;
      this.runningPaths.set(key, (this.runningPaths.get(key) ?? 1) - 1);
    }
  }
}

/** Calls are held until released, one by one or all; an abort rejects a held call. */
export class Gate {
  private readonly held: { call: Call; release: () => void }[] = [];
  open = false;

  readonly behavior = (c: Call): Promise<void> => {
    if (this.open) return Promise.resolve();
    const d = deferred();
    this.held.push({ call: c, release: () => d.resolve() });
    return abortable(d.promise, c.signal);
  };

  get heldCount(): number {
    return this.held.length;
  }

  releaseAll(): void {
    this.open = true;
    for (const h of this.held.splice(0)) h.release();
  }

  release(path: string): void {
    const i = this.held.findIndex((h) => h.call.path === path);
    const h = this.held.splice(i, 1)[0];
    if (i < 0 || !h) throw new Error(`no held upload of ${path}`);
    h.release();
  }
}

/** Polls `cond` every 5 ms; fails after `limitMs` (a guard against hangs, not a timing check). */
export async function waitFor(cond: () => boolean, what: string, limitMs = 15_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets every pending immediate and timer of 0 ms run (the queue picks work on setImmediate). */
export const ticks = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
