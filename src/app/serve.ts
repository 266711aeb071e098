/**
 * `sreg mount DIR --foreground`: builds the mount's pieces (state database, catalog + sync,
 * block cache, upload queue, VFS), mounts, records itself in the mounts registry and answers
 * the control socket, until it is stopped. Each piece is registered with the Lifecycle as it
 * is built, so that any failure or an early SIGTERM takes down exactly what exists.
 * Stopping (`sreg unmount`, SIGTERM, SIGINT) uploads what is pending first and refuses to drop
 * it; a file still open for writing also keeps the mount.
 */
import { mkdir, mkdtemp, rmdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BlockCache } from '../cache/index.js';
import { CatalogSync, inspectFields, pythonJsonDumps, RegistryDb, RemoteMirror, toEntry } from '../catalog/index.js';
import type { Config } from '../config/index.js';
import { DropboxClient } from '../dropbox/client.js';
import { DOWNLOAD_URL, formatUri, imageFromRemotePath } from '../registry/names.js';
import { UploadQueue } from '../upload/index.js';
import { Vfs, type EntryInfo } from '../vfs/index.js';
import { newControlSocketPath, serveControl } from './control.js';
import type { MountOptions } from './daemon.js';
import { Lifecycle } from './lifecycle.js';
import type { MountStatus } from './mount-clients.js';
import type { MountLog } from './mount-log.js';
import { logFileFor, openMountState, stateDirOf } from './mount-state.js';
import { loadFuse, mountChecks } from './preflight.js';
import { detachDeadMount, processStart } from './procfs.js';
import { parentChannel } from './ready-signal.js';
import { trace } from '../util/trace.js';

const humanBytes = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${n} bytes`);

/** Serves the mount in this process until it is unmounted. */
export async function serveMount(config: Config, o: MountOptions, mlog: MountLog): Promise<void> {
  const life = new Lifecycle(mlog);
  const log = (line: string): void => mlog.info(line);
  try {
    await serve(config, o, mlog, life);
  } catch (e) {
    await life.unwind();
    throw e;
  } finally {
    life.dispose();
  }
  // ru_maxrss: the process's peak resident memory over its whole life (benchmarks read it here).
  log(`unmounted ${o.mountpoint} (peak memory ${(process.resourceUsage().maxRSS / 1024).toFixed(1)} MiB)`);
}

async function serve(config: Config, o: MountOptions, mlog: MountLog, life: Lifecycle): Promise<void> {
  const log = (line: string): void => mlog.info(line);
  trace('serve');
  const state = openMountState(config);
  life.defer('the mount state database', () => state.close());
  await mountChecks(config, o.mountpoint, state, log);
  life.checkpoint();
  const db = RegistryDb.open(config.databaseDir);
  life.defer('sregistry.db', () => db.close());
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
  life.defer('the Dropbox client', () => client.close());
  // Whose Dropbox this is decides whether the saved catalog may be served, so nothing is mounted
  // before the answer; meanwhile (a round trip, a TLS handshake with Dropbox) libfuse is loaded
  // and the block cache opened. A failure is thrown where it is awaited, below.
  const accountP = client.currentAccount();
  accountP.catch(() => undefined);
  const fuse = await loadFuse(o.fuse, log);
  log(`FUSE adapter: ${fuse.label}`);
  trace('fuse loaded');
  life.checkpoint();
  const base = stateDirOf(config);
  const spoolDir = path.join(base, 'spool');
  const blocksDir = config.disableCache ? await mkdtemp(path.join(tmpdir(), 'sreg-cache-')) : path.join(base, 'blocks');
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });
  await mkdir(blocksDir, { recursive: true, mode: 0o700 });
  const cache = await BlockCache.open({
    db: config.disableCache ? null : state.db.fast,
    dir: blocksDir,
    budgetBytes: o.cacheSizeBytes,
    fetch: (f, s, e, into, signal) => client.readRange(`rev:${f.rev}`, s, e, { into, signal, deadlineMs: config.readDeadlineMs }),
    fetchRun: (f, s, e, sink, signal) => client.readRangeInto(`rev:${f.rev}`, s, e, sink, { signal, deadlineMs: config.readDeadlineMs }),
    maxInFlight: config.threads,
    directWrites: config.cacheDirectWrites,
    removeDirOnClose: config.disableCache,
    log,
  });
  life.defer('the block cache', () => cache.close());
  trace('block cache');
  const account = await accountP;
  log(`connected to ${account.displayName}`);
  trace('account');
  life.checkpoint();

  const started = Date.now();
  const mirror = new RemoteMirror(state.db.fast);
  // A complete saved catalog is served at once; its catch-up with Dropbox runs in the background.
  const sync = new CatalogSync({ mirror, db: state.db.fast, client, identity: { endpoint: config.endpoint ?? 'https://api.dropboxapi.com' }, log, catchUpInBackground: true });
  await sync.start(account);
  life.defer('the catalog sync', () => sync.stop());
  log(`catalog ready: ${sync.status().entries} entries in ${Date.now() - started} ms`);
  trace('catalog');
  life.checkpoint();
  const uploads = new UploadQueue({
    db: state.db.durable,
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
  // Asked in the background: statfs shows no size for the moment it takes.
  let space = { usedBytes: 0, allocatedBytes: 0 };
  client.spaceUsage().then((s) => (space = s), () => undefined);
  const spaceTimer = setInterval(() => {
    client.spaceUsage().then((s) => (space = s), () => undefined);
  }, 60_000);
  spaceTimer.unref();
  life.defer('the space poll', () => clearInterval(spaceTimer));

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

  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const vfs = new Vfs({ catalog: mirror, cache, uploads, remote: client, spoolDir, owner: { uid, gid }, toEntry: (m) => toEntry(m, Date.now()), inspectJson, space: () => space, log, caughtUp: () => sync.caughtUp() });
  uploads.on('failed', (job: { path: string }, e: Error) => log(`upload of ${job.path} failed (will retry): ${e.message}`));
  // Renamed or deleted while uploading, and it landed anyway: that old path should not exist.
  // 'stray' uploads (renamed or deleted while uploading, landed anyway) are removed by the VFS,
  // which knows whether that path is in use again and which folders the stray recreated.
  uploads.start();
  life.defer('the upload queue', () => uploads.stop());
  life.checkpoint();
  trace('vfs');

  const mounted = await fuse.mount(o.mountpoint, vfs, { log, uid, gid, debug: o.debug, cache });
  life.defer(`the kernel mount on ${o.mountpoint}`, async () => {
    await mounted.unmount().catch(async (e: Error) => {
      mlog.warn(`unmount failed (${e.message}): detaching it lazily`);
      await detachDeadMount(o.mountpoint);
    });
  });
  mlog.debug(`kernel mount up on ${o.mountpoint}`);
  trace('kernel mount');
  life.checkpoint();
  await fuse.raiseReadahead(o.mountpoint, log);

  const status = (): Omit<MountStatus, 'state'> => ({
    mountpoint: o.mountpoint,
    pid: process.pid,
    account: account.displayName,
    endpoint: config.endpoint ?? 'Dropbox',
    cache: cache.stats(),
    uploads: uploads.status(),
    openForWriting: vfs.openWriteCount(),
    adapter: fuse.label,
    ...(mounted.counters ? { nativeReads: mounted.counters() } : {}),
    sync: sync.status(),
  });

  let stopping: Promise<void> | undefined;
  let finished!: () => void;
  const done = new Promise<void>((res) => (finished = res));
  const stop = (progress: (p: unknown) => void): Promise<void> => {
    if (stopping) return stopping;
    const attempt = (async () => {
      try {
        const open = vfs.openWriteCount();
        if (open > 0) throw new Error(`${open} file(s) are still open for writing on ${o.mountpoint}: close them (let cp/rsync finish), then unmount`);
        const before = uploads.status();
        if (before.files > 0) log(`uploading ${before.files} pending file(s), ${humanBytes(before.bytes)}, before unmounting`);
        await uploads.drain((s) => progress(s));
        // The VFS's background clean-up (a stray upload that landed after its rename or removal)
        // is deleted in Dropbox before the mount goes; it may have queued a follow-up upload.
        await vfs.settled();
        await uploads.drain((s) => progress(s));
      } catch (e) {
        log(`not unmounted: ${(e as Error).message}`);
        throw e;
      }
      // Drained: everything goes, last built first (the kernel mount before the queue and cache).
      finished();
    })();
    stopping = attempt;
    // A refused stop (uploads failing, a file open) can be asked again later.
    attempt.catch(() => {
      if (stopping === attempt) stopping = undefined;
    });
    return attempt;
  };

  const socketPath = await newControlSocketPath({ runtimeDir: config.runtimeDir, stateDir: stateDirOf(config) });
  let unmountReply: (() => void) | undefined;
  const control = await serveControl(socketPath, async (req, progress) => {
    mlog.debug(`control: ${req.cmd}`);
    if (req.cmd === 'status') return status();
    await stop(progress);
    // Answered once the kernel mount is gone (below), so `sreg unmount` returns after it.
    await new Promise<void>((r) => (unmountReply = r));
    return { unmounted: o.mountpoint };
  });
  // Stops listening at once; the connection of a `sreg unmount` under way stays open for its answer.
  life.defer('the control socket', async () => {
    control.close();
    await unlink(socketPath).catch(() => undefined);
    // A socket path too long for the usual folder got a mkdtemp folder of its own.
    if (path.dirname(socketPath).startsWith(path.join(tmpdir(), 'sreg-'))) await rmdir(path.dirname(socketPath)).catch(() => undefined);
  });
  const pidStart = (await processStart(process.pid)) ?? null;
  state.mounts.put({ mountpoint: o.mountpoint, pid: process.pid, pidStart, logFile: o.logFile ?? logFileFor(config, o.mountpoint), controlSocket: socketPath, startedAtMs: Date.now() });
  life.defer('the mounts registry row', () => state.mounts.remove(o.mountpoint, process.pid));

  life.serving((sig) => {
    log(`${sig}: unmounting (pending uploads first)`);
    stop((p) => mlog.debug(`draining: ${JSON.stringify(p)}`)).catch((e: Error) => log(`${sig}: not unmounted: ${e.message}`));
  });
  trace('ready');
  log(`ready: mounted on ${o.mountpoint}`);
  parentChannel()?.ready();
  await done;
  // The orderly stop: undo in reverse, but answer `sreg unmount` only once the kernel mount is gone.
  await life.unwind();
  unmountReply?.();
}
