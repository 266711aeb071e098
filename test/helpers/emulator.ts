/**
 * Starts a real `sreg emulator` process for a test and always stops it.
 *
 *   const emu = await startEmulator(t);          // t.teardown stops it, even on failure
 *   const dbx = sdk(emu);                         // the official SDK, pointed at it
 *   await emu.admin('POST', '/faults', {kind: '429', count: 1});
 *
 * The token travels in the environment, never in argv.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ExecutionContext } from 'ava';
import { Dropbox, type DropboxOptions } from 'dropbox';
import { endpointFetch } from '../../src/dropbox/endpoint.js';

export const CLI = fileURLToPath(new URL('../../src/cli/index.js', import.meta.url));

/**
 * A throwaway self-signed certificate for 127.0.0.1 and its key (openssl), in `dir`: the
 * emulator's TLS listener (`--tls-cert`, `--tls-key`) and the CA its clients trust.
 */
export async function selfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { timeout: 30_000 });
  return { cert, key };
}

export interface Emulator {
  readonly url: string;
  /** `https://…` when started with --tls-cert/--tls-key. */
  readonly tlsUrl: string | undefined;
  readonly token: string;
  readonly root: string;
  /** JSON request to the admin API, e.g. admin('POST', '/faults', {...}). Throws on non-2xx. */
  admin<T = any>(method: 'GET' | 'POST' | 'DELETE', adminPath: string, body?: unknown): Promise<T>;
  /** Stops the process (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Stops and starts again on the same root and port. */
  restart(): Promise<void>;
  /** Everything the process wrote on stderr so far. */
  stderr(): string;
}

export interface StartOptions {
  args?: string[];
  root?: string;
  token?: string;
}

/**
 * Emulator processes being launched at once, per test worker. A file whose 34 tests each start
 * one at the same moment had them all compete for 2 cores: each took ~15 s to listen, and
 * under a second worker's load some missed the start-up timeout. A few at a time, each is up
 * in well under a second.
 */
const MAX_LAUNCHING = 3;
let launching = 0;
const launchQueue: (() => void)[] = [];
async function launchSlot<T>(fn: () => Promise<T>): Promise<T> {
  if (launching >= MAX_LAUNCHING) await new Promise<void>((r) => launchQueue.push(r));
  launching++;
  try {
    return await fn();
  } finally {
    launching--;
    launchQueue.shift()?.();
  }
}

export async function startEmulator(t: ExecutionContext | undefined, opts: StartOptions = {}): Promise<Emulator> {
  const root = opts.root ?? (await mkdtemp(path.join(tmpdir(), 'sreg-emu-')));
  const ownsRoot = opts.root === undefined;
  const token = opts.token ?? `test-${randomBytes(12).toString('hex')}`;
  let stderr = '';
  let child: ChildProcess | undefined;
  let url = '';
  let tlsUrl: string | undefined;

  const launch = (port: number): Promise<void> => launchSlot(() => launchNow(port));
  const launchNow = async (port: number): Promise<void> => {
    const proc = spawn(process.execPath, [CLI, 'emulator', '--root', root, '--port', String(port), ...(opts.args ?? [])], {
      // Every result the emulator sends in the tests is checked against Dropbox's specification.
      env: { ...process.env, SREG_EMULATOR_TOKEN: token, SREG_EMULATOR_CHECK_RESULTS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`emulator did not start in 30 s; stderr:\n${stderr}`)), 30_000);
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        tlsUrl = /listening on (https:\/\/\S+)/.exec(out)?.[1];
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`emulator exited with ${code} before listening; stderr:\n${stderr}`));
      });
    });
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      proc.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  };

  await launch(0);
  const emu: Emulator = {
    get url() {
      return url;
    },
    get tlsUrl() {
      return tlsUrl;
    },
    token,
    root,
    async admin(method, adminPath, body) {
      const res = await fetch(`${url}/__emulator${adminPath}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`admin ${method} ${adminPath}: ${res.status} ${text}`);
      return (text ? JSON.parse(text) : null) as never;
    },
    stop,
    async restart() {
      const port = Number(new URL(url).port);
      await stop();
      await launch(port);
    },
    stderr: () => stderr,
  };
  t?.teardown(async () => {
    await stop();
    if (ownsRoot) await rm(root, { recursive: true, force: true });
    // A result that does not match the specification fails the test that provoked it.
    const violation = /spec violation: .*/.exec(stderr);
    if (violation) throw new Error(`the emulator sent a result outside Dropbox's specification: ${violation[0]}`);
  });
  return emu;
}

/** The official SDK, pointed at the emulator the way `sreg` points it (src/dropbox/endpoint.ts). */
export function sdk(emu: Emulator, opts: DropboxOptions = {}): Dropbox {
  return new Dropbox({ accessToken: emu.token, fetch: endpointFetch(emu.url), ...opts });
}

/** The Dropbox SDK rejects with DropboxResponseError; this returns it (or fails the test). */
export async function sdkError(p: Promise<unknown>): Promise<{ status: number; error: any; headers: any }> {
  try {
    await p;
  } catch (e) {
    const err = e as { status?: number; error?: unknown; headers?: unknown };
    if (typeof err.status === 'number') return err as never;
    throw e;
  }
  throw new Error('expected the SDK call to fail, but it succeeded');
}
