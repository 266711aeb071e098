/**
 * `sreg emulator`: a strict, local Dropbox API v2 server (docs/emulator.md).
 *
 * Purpose: every test, benchmark and demo talks to it, so it must refuse what the real
 * service refuses and shape traffic like a far-away, busy service when asked.
 * Invariants: all state lives under `root` (SQLite + files) and survives a restart; secrets
 * (tokens) are stored hashed and never logged. Concurrency: one Node thread; SQLite calls are
 * synchronous and indexed; bytes stream through files, never whole in memory.
 * It shares nothing with the client but the content_hash function and the host header name.
 * Every route's argument, result and error types come from Dropbox's own specification
 * (spec/dropbox-api/, spec.ts), so what it accepts is exactly what Dropbox accepts.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer as createTlsServer } from 'node:https';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Auth } from './auth.js';
import { Control, type Shaping } from './control.js';
import { getMeta, openDatabase, setMeta } from './db.js';
import { Namespace } from './namespace.js';
import { forgetLinks } from './routes/sharing.js';
import { prepareTransferDirs } from './routes/transfer.js';
import type { State } from './routes/types.js';
import { requestHandler } from './server.js';

export { parseBytes } from './control.js';

export interface EmulatorOptions {
  root: string;
  host: string;
  port: number;
  /** The long-lived access token; generated when absent. */
  token?: string;
  latencyMs: number;
  bandwidthBytesPerSec: number;
  /** When set, tokens (the --token one too) expire after this many seconds. */
  tokenTtlSec?: number;
  appKey: string;
  appSecret?: string;
  refreshToken?: string;
  displayName: string;
  quotaBytes: number;
  /** Check every result against the specification before sending it (server.ts checkAgainstSpec). */
  checkResults?: boolean;
  /** Also serve HTTPS with this certificate (clients that speak only HTTPS: the Python SDK). */
  tls?: { certFile: string; keyFile: string; port: number };
}

export interface RunningEmulator {
  url: string;
  /** `https://HOST:PORT` when `tls` was given. */
  tlsUrl?: string;
  token: string;
  tokenGenerated: boolean;
  close(): Promise<void>;
}

const ISSUED_TOKEN_TTL_SEC = 14400;

export async function startEmulator(opts: EmulatorOptions): Promise<RunningEmulator> {
  const root = path.resolve(opts.root);
  await mkdir(path.join(root, 'files'), { recursive: true });
  const db = openDatabase(path.join(root, 'emulator.db'));
  const control = new Control({
    latencyMs: opts.latencyMs,
    bandwidthBytesPerSec: opts.bandwidthBytesPerSec,
    tokenTtlSec: opts.tokenTtlSec ?? ISSUED_TOKEN_TTL_SEC,
    longpollMaxWaitSec: 0,
    longpollBackoffSec: 0,
    clockOffsetSec: 0,
  } satisfies Shaping);
  const nowMs = (): number => control.nowMs();

  let accountId = getMeta(db, 'account_id');
  if (!accountId) {
    accountId = `dbid:${randomBytes(27).toString('base64url').slice(0, 35)}`;
    setMeta(db, 'account_id', accountId);
  }
  let epoch = getMeta(db, 'epoch') ?? randomBytes(6).toString('hex');
  setMeta(db, 'epoch', epoch);

  const ns = new Namespace(db, path.join(root, 'files'), nowMs, () => opts.quotaBytes);
  const auth = new Auth(db, { appKey: opts.appKey, appSecret: opts.appSecret, nowMs, tokenTtlSec: () => control.shaping.tokenTtlSec });
  const token = opts.token ?? `sreg-emu-${randomBytes(24).toString('base64url')}`;
  auth.addAccessToken(token, opts.tokenTtlSec);
  if (opts.refreshToken) auth.addRefreshToken(opts.refreshToken);
  if (!opts.token) await writeFile(path.join(root, 'token'), `${token}\n`, { mode: 0o600 });

  const state: State = {
    root,
    db,
    ns,
    auth,
    control,
    account: { accountId, displayName: opts.displayName, email: 'sreg-emulator@example.com' },
    quotaBytes: opts.quotaBytes,
    checkResults: opts.checkResults ?? false,
    epoch: () => epoch,
    resetCursors() {
      epoch = randomBytes(6).toString('hex');
      setMeta(db, 'epoch', epoch);
      ns.notify();
    },
  };
  ns.on('deleted', (ids: string[]) => forgetLinks(state, ids));
  await prepareTransferDirs(state);

  const server: Server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 }, requestHandler(state));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  let tlsServer: Server | import('node:https').Server | undefined;
  let tlsUrl: string | undefined;
  if (opts.tls) {
    const [cert, key] = await Promise.all([readFile(opts.tls.certFile), readFile(opts.tls.keyFile)]);
    const tls = createTlsServer({ cert, key, keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 }, requestHandler(state));
    tlsServer = tls;
    await new Promise<void>((resolve, reject) => {
      tls.once('error', reject);
      tls.listen(opts.tls!.port, opts.host, () => resolve());
    });
    tlsUrl = `https://${hostForUrl}:${(tls.address() as AddressInfo).port}`;
  }
  return {
    url: `http://${hostForUrl}:${port}`,
    tlsUrl,
    token,
    tokenGenerated: !opts.token,
    async close() {
      const servers = tlsServer ? [server, tlsServer] : [server];
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      db.close();
    },
  };
}
