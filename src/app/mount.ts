/**
 * `sreg mount`: the mount's lifecycle. Checks first (folder, FUSE, libfuse, token, not
 * mounted yet — a dead mount is cleared), then either serves in the foreground or starts a
 * background copy of itself and returns once the mount answers. Serving builds the pieces
 * (catalog + sync, block cache, upload queue, VFS), mounts, and answers the control socket.
 * Stopping (`sreg unmount`, SIGTERM, SIGINT) uploads what is pending first and refuses to drop
 * it; a file still open for writing also keeps the mount.
 */
import { spawn } from 'node:child_process';
import { existsSync, fstatSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { BlockCache } from '../cache/index.js';
import { CatalogSync, inspectFields, pythonJsonDumps, RegistryDb, RemoteMirror, toEntry } from '../catalog/index.js';
import type { Config } from '../config/index.js';
import { DropboxClient } from '../dropbox/client.js';
import { forceUnmount, mountFuse, raiseReadahead, unescapeMountPath } from '../fuse/index.js';
import { formatUri, imageFromRemotePath } from '../registry/names.js';
import { DOWNLOAD_URL } from '../registry/commands.js';
import { UsageError } from '../registry/errors.js';
import { UploadQueue } from '../upload/index.js';
import { Vfs, type CacheStats, type EntryInfo, type SyncPort, type UploadStatus } from '../vfs/index.js';
import { askControl, controlSocketPath, serveControl } from './control.js';

export interface MountOptions {
  mountpoint: string;
  cacheSizeBytes: number;
  foreground: boolean;
  debug: boolean;
}

interface Say {
  info(line: string): void;
  result(line: string): void;
}

/** The kernel's view: is something mounted on this path, and what type? */
export async function mountedType(mountpoint: string): Promise<string | undefined> {
  const text = await readFile('/proc/mounts', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [, where, type] = line.split(' ');
    if (where !== undefined && unescapeMountPath(where) === mountpoint) return type;
  }
  return undefined;
}

/**
 * A FUSE mount whose process died answers ENOTCONN: clear it so the folder is usable again.
 * Probed with readdir, which always reaches the filesystem (stat may be answered from the
 * kernel's attribute cache for a few seconds after the process died).
 */
async function clearIfDead(mountpoint: string): Promise<boolean> {
  const type = await mountedType(mountpoint);
  if (!type) return false;
  const dead = await readdir(mountpoint).then(
    () => false,
    (e: { code?: string }) => e.code === 'ENOTCONN' || e.code === 'ECONNABORTED' || e.code === 'EIO',
  );
  if (!dead) return false;
  await forceUnmount(mountpoint);
  return true;
}

export async function preflight(config: Config, mountpoint: string): Promise<void> {
  let st;
  try {
    st = await stat(mountpoint);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOTCONN') {
      await forceUnmount(mountpoint);
      return preflight(config, mountpoint);
    }
    throw new UsageError(code === 'ENOENT' ? `${mountpoint} does not exist: create it first (mkdir -p ${mountpoint})` : `cannot use ${mountpoint}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw new UsageError(`${mountpoint} is not a folder`);
  if (await clearIfDead(mountpoint)) return preflight(config, mountpoint);
  const type = await mountedType(mountpoint);
  if (type) throw new UsageError(`${mountpoint} is already mounted (${type}): 'sreg unmount ${mountpoint}' first`, 6, 'exists');
  if ((await readdir(mountpoint)).length > 0) throw new UsageError(`${mountpoint} is not empty: mount on an empty folder`);
  if (!existsSync('/dev/fuse')) {
    throw new UsageError('FUSE is not available here (/dev/fuse is missing): load the fuse kernel module, or give the container --device /dev/fuse');
  }
  try {
    await import('fuse-native');
  } catch (e) {
    throw new UsageError(`libfuse 2 cannot be loaded (${(e as Error).message.split('\n')[0]}): install it (Debian: apt-get install libfuse2 fuse)`);
  }
  if (!config.accessToken && !config.refreshToken) {
    throw new UsageError('no Dropbox token: set SREGISTRY_DROPBOX_TOKEN, or run `sreg backend login dropbox`', 4);
  }
}

export function logFileFor(config: Config, mountpoint: string): string {
  const safe = mountpoint.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+/, '');
  return path.join(config.cacheDir, 'sreg', 'logs', `mount-${safe || 'root'}.log`);
}

/** Starts `sreg mount DIR --foreground` detached and waits until the mount answers. */
export async function mountInBackground(config: Config, o: MountOptions, say: Say): Promise<void> {
  await preflight(config, o.mountpoint);
  const logFile = logFileFor(config, o.mountpoint);
  await mkdir(path.dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a', 0o600);
  const logStart = fstatSync(fd).size; // this mount's lines come after it
  const cli = fileURLToPath(new URL('../cli/index.js', import.meta.url));
  const args = [cli, 'mount', o.mountpoint, '--foreground', '--cache-size', String(o.cacheSizeBytes), ...(o.debug ? ['--debug'] : [])];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd], env: process.env });
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
      throw new UsageError(`the mount did not start (exit ${exited}). From ${logFile}:\n${tail}`, 1);
    }
    // Mounted, answering, and done setting up (kernel readahead, control socket): its "ready" line.
    if ((await mountedType(o.mountpoint)) === 'fuse.sreg' && (await stat(o.mountpoint).then(() => true, () => false)) && (await saidReady(logFile, logStart, o.mountpoint))) {
      child.unref();
      say.result(`mounted Dropbox on ${o.mountpoint} (pid ${child.pid}, log ${logFile}); stop it with: sreg unmount ${o.mountpoint}`);
      return;
    }
    await sleep(100);
  }
  child.kill('SIGTERM');
  throw new UsageError(`the mount did not answer within 120 s; see ${logFile}`, 1);
}

/** Has the log, past `from`, the mount's `ready: mounted on DIR` line? */
async function saidReady(logFile: string, from: number, mountpoint: string): Promise<boolean> {
  const text = await readFile(logFile).then((b) => b.subarray(from).toString('utf8'), () => '');
  return text.includes(` ready: mounted on ${mountpoint}\n`);
}

function humanBytes(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${n} bytes`;
}

/** Serves the mount in this process until it is unmounted. */
export async function serveMount(config: Config, o: MountOptions, log: (line: string) => void): Promise<void> {
  await preflight(config, o.mountpoint);
  const db = RegistryDb.open(config.databaseDir);
  const sqlite = db.sqlite;
  // A close() the journal accepted must survive a power loss too, not only a kill -9.
  sqlite.pragma('synchronous = FULL');
  const other = sqlite.prepare('SELECT mountpoint, pid FROM sreg_mounts').all() as { mountpoint: string; pid: number }[];
  for (const m of other) {
    if (m.pid !== process.pid && pidAlive(m.pid)) {
      db.close();
      throw new UsageError(`this registry is already mounted on ${m.mountpoint} (pid ${m.pid}): one mount per database; 'sreg unmount ${m.mountpoint}' first`, 6, 'exists');
    }
    sqlite.prepare('DELETE FROM sreg_mounts WHERE mountpoint = ?').run(m.mountpoint);
  }
  const client = new DropboxClient({
    endpoint: config.endpoint,
    accessToken: config.accessToken,
    refreshToken: config.refreshToken,
    appKey: config.appKey,
    appSecret: config.appSecret,
    workers: config.threads,
    timeoutMs: config.timeoutMs,
    log,
  });
  const account = await client.currentAccount();
  log(`connected to ${account.displayName}`);
  const base = path.join(config.cacheDir, 'sreg');
  const spoolDir = path.join(base, 'spool');
  const blocksDir = config.disableCache ? await mkdtemp(path.join(tmpdir(), 'sreg-cache-')) : path.join(base, 'blocks');
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });
  await mkdir(blocksDir, { recursive: true, mode: 0o700 });

  const started = Date.now();
  const mirror = new RemoteMirror(sqlite);
  const sync = new CatalogSync({ mirror, db: sqlite, client, identity: { endpoint: config.endpoint ?? 'https://api.dropboxapi.com' }, log });
  await sync.start();
  log(`catalog ready: ${sync.status().entries} entries in ${Date.now() - started} ms`);
  const cache = await BlockCache.open({
    db: config.disableCache ? null : sqlite,
    dir: blocksDir,
    budgetBytes: o.cacheSizeBytes,
    fetch: (f, s, e, into, signal) => client.readRange(`rev:${f.rev}`, s, e, { into, signal, deadlineMs: config.readDeadlineMs }),
    maxInFlight: config.threads,
    removeDirOnClose: config.disableCache,
    log,
  });
  const uploads = new UploadQueue({
    db: sqlite,
    spoolDir,
    client,
    log,
    afterUpload: async (job, meta) => {
      mirror.upsert(toEntry(meta, Date.now()));
      // The upload succeeded; failing to keep its bytes as cached blocks only costs a download later.
      await cache.adopt({ id: meta.id, rev: meta.rev, size: meta.size, contentHash: meta.contentHash }, job.spoolFile).catch((e: Error) => {
        log(`cache: could not keep ${job.path} as cached blocks: ${e.message}`);
      });
    },
  });
  let space = await client.spaceUsage().catch(() => ({ usedBytes: 0, allocatedBytes: 0 }));
  const spaceTimer = setInterval(() => {
    client.spaceUsage().then((s) => (space = s), () => undefined);
  }, 60_000);
  spaceTimer.unref();

  const inspectJson = (e: EntryInfo): string | undefined => {
    const n = imageFromRemotePath(e.pathDisplay);
    if (!n) return undefined;
    const rec = db.getContainer(n);
    const fields = rec && rec.version === e.contentHash
      ? inspectFields(rec)
      : {
          client: 'dropbox',
          collection: n.collection,
          image: null,
          metrics: { collection: n.collection, image: n.name, storage: `${n.collection}/${n.name}:${n.tag}.simg`, tag: n.tag, uri: formatUri(n), url: `${n.collection}/${n.name}`, version: null },
          name: n.name,
          tag: n.tag,
          uri: formatUri(n),
          url: DOWNLOAD_URL,
          version: e.contentHash ?? null,
        };
    return pythonJsonDumps(fields, { indent: 4, sortKeys: true });
  };

  const vfs = new Vfs({
    catalog: mirror,
    cache,
    uploads,
    remote: client,
    spoolDir,
    owner: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
    toEntry: (m) => toEntry(m, Date.now()),
    inspectJson,
    space: () => space,
    log,
  });
  uploads.on('failed', (job: { path: string }, e: Error) => log(`upload of ${job.path} failed (will retry): ${e.message}`));
  // Renamed or deleted while uploading, and it landed anyway: that old path should not exist.
  uploads.on('stray', (job: { path: string }, meta: { pathDisplay: string }) => {
    client.delete(meta.pathDisplay).then(
      () => log(`removed ${meta.pathDisplay}: ${job.path} was renamed or deleted while it uploaded`),
      (e: Error) => log(`could not remove the stray ${meta.pathDisplay}: ${e.message}`),
    );
  });
  uploads.start();
  const mounted = await mountFuse(o.mountpoint, vfs, { log, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, debug: o.debug });
  await raiseReadahead(o.mountpoint, log);
  const socketPath = controlSocketPath(o.mountpoint);
  sqlite
    .prepare('INSERT OR REPLACE INTO sreg_mounts (mountpoint, pid, log_file, control_socket, started_at_ms) VALUES (?, ?, ?, ?, ?)')
    .run(o.mountpoint, process.pid, logFileFor(config, o.mountpoint), socketPath, Date.now());

  const status = (): Omit<MountStatus, 'state'> => ({
    mountpoint: o.mountpoint,
    pid: process.pid,
    account: account.displayName,
    endpoint: config.endpoint ?? 'Dropbox',
    cache: cache.stats(),
    uploads: uploads.status(),
    openForWriting: vfs.openWriteCount(),
    sync: sync.status(),
  });

  let stopping: Promise<void> | undefined;
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  const stop = (progress: (p: unknown) => void): Promise<void> => {
    if (stopping) return stopping;
    const attempt = (async () => {
      try {
        const open = vfs.openWriteCount();
        if (open > 0) throw new Error(`${open} file(s) are still open for writing on ${o.mountpoint}: close them (let cp/rsync finish), then unmount`);
        const before = uploads.status();
        if (before.files > 0) log(`uploading ${before.files} pending file(s), ${humanBytes(before.bytes)}, before unmounting`);
        await uploads.drain((s) => progress(s));
        await mounted.unmount();
        await sync.stop();
        await uploads.stop();
        await cache.close();
        clearInterval(spaceTimer);
        sqlite.prepare('DELETE FROM sreg_mounts WHERE mountpoint = ?').run(o.mountpoint);
        control.close();
        client.close();
        db.close();
        // ru_maxrss: the process's peak resident memory over its whole life (benchmarks read it here).
        log(`unmounted ${o.mountpoint} (peak memory ${(process.resourceUsage().maxRSS / 1024).toFixed(1)} MiB)`);
        finished();
      } catch (e) {
        log(`not unmounted: ${(e as Error).message}`);
        throw e;
      }
    })();
    stopping = attempt;
    // A refused stop (uploads failing, a file open) can be asked again later.
    attempt.catch(() => {
      if (stopping === attempt) stopping = undefined;
    });
    return attempt;
  };
  const control = await serveControl(socketPath, async (req, progress) => {
    if (req.cmd === 'status') return status();
    await stop(progress);
    return { unmounted: o.mountpoint };
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      log(`${sig}: unmounting (pending uploads first)`);
      stop((p) => log(`draining: ${JSON.stringify(p)}`)).catch((e: Error) => log(`${sig}: not unmounted: ${e.message}`));
    });
  }
  log(`ready: mounted on ${o.mountpoint}`);
  await done;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/** `sreg unmount DIR`: asks the mount to drain and unmount; clears a dead one. */
export async function unmount(config: Config, mountpoint: string, say: Say): Promise<void> {
  const db = RegistryDb.open(config.databaseDir);
  try {
    const row = db.sqlite.prepare('SELECT pid, control_socket FROM sreg_mounts WHERE mountpoint = ?').get(mountpoint) as { pid: number; control_socket: string } | undefined;
    if (row && pidAlive(row.pid)) {
      const res = await askControl(row.control_socket, { cmd: 'unmount' }, (p) => {
        const s = p as { files?: number; bytes?: number };
        if (s.files) say.info(`uploading: ${s.files} file(s), ${humanBytes(s.bytes ?? 0)} left`);
      });
      if (!res.ok) throw new UsageError(`not unmounted: ${res.error ?? 'unknown reason'}`, 5);
      say.result(`unmounted ${mountpoint}`);
      return;
    }
    const type = await mountedType(mountpoint);
    if (row) db.sqlite.prepare('DELETE FROM sreg_mounts WHERE mountpoint = ?').run(mountpoint);
    if (row) await unlink(row.control_socket).catch(() => undefined);
    if (type) {
      await forceUnmount(mountpoint);
      const pending = (db.sqlite.prepare('SELECT count(*) AS n FROM sreg_uploads').get() as { n: number }).n;
      say.result(`cleared a dead mount on ${mountpoint}${pending ? `; ${pending} upload(s) it had accepted will finish at the next sreg mount` : ''}`);
      return;
    }
    throw new UsageError(`${mountpoint} is not mounted`, 3, 'not_found');
  } finally {
    db.close();
  }
}

export interface MountStatus {
  mountpoint?: string;
  state: string;
  pid?: number;
  log?: string;
  account?: string;
  endpoint?: string;
  cache?: CacheStats;
  uploads?: UploadStatus;
  openForWriting?: number;
  sync?: ReturnType<SyncPort['status']>;
  pendingUploads?: number;
  pendingBytes?: number;
  note?: string;
}

/** `sreg status`: every mount of this database, its cache and upload queue. */
export async function mountStatus(config: Config): Promise<MountStatus[]> {
  const db = RegistryDb.open(config.databaseDir);
  try {
    const rows = db.sqlite.prepare('SELECT mountpoint, pid, control_socket, log_file FROM sreg_mounts').all() as {
      mountpoint: string;
      pid: number;
      control_socket: string;
      log_file: string;
    }[];
    const out: MountStatus[] = [];
    for (const r of rows) {
      if (!pidAlive(r.pid)) {
        out.push({ mountpoint: r.mountpoint, pid: r.pid, state: 'dead (run sreg unmount to clear it)', log: r.log_file });
        continue;
      }
      const res = await askControl(r.control_socket, { cmd: 'status' }).catch((e: Error) => ({ ok: false, error: e.message, result: undefined }));
      out.push({ mountpoint: r.mountpoint, pid: r.pid, ...(res.result as Partial<MountStatus>), state: res.ok ? 'mounted' : `not answering (${res.error})`, log: r.log_file });
    }
    const pending = db.sqlite.prepare('SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM sreg_uploads').get() as { n: number; bytes: number };
    if (rows.length === 0 && pending.n > 0) {
      out.push({ state: 'not mounted', pendingUploads: pending.n, pendingBytes: pending.bytes, note: 'they resume at the next sreg mount' });
    }
    return out;
  } finally {
    db.close();
  }
}
