/**
 * The mount's control socket (a unix socket per mount): `sreg unmount` and `sreg status`
 * talk to the serving process through it. Newline-delimited JSON: one request line, then
 * answer lines; progress lines carry `"progress"`, the last line carries `"done"`.
 *
 * Private: the socket's name has 8 random bytes in it (recorded in the mounts registry, never
 * guessed), it lives in a 0700 folder of the user's — $XDG_RUNTIME_DIR/sreg, else the cache
 * folder's sreg/run — and is itself 0600, so another user can neither find nor connect to it.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { privateDir } from '../catalog/index.js';
import { localError } from '../dropbox/errors.js';

export type ControlRequest = { cmd: 'status' } | { cmd: 'unmount' };
export type ControlLine = { progress: unknown } | { done: true; ok: boolean; result?: unknown; error?: string };

/** Unix socket paths are limited to 107 bytes. */
const MAX_SOCKET_PATH = 100;

/**
 * A new, unpredictable socket path in a private (0700) folder: `runtimeDir/sreg` when the user
 * has $XDG_RUNTIME_DIR, else `stateDir/run`; when that path is too long for a unix socket, a
 * fresh 0700 folder from mkdtemp in the temporary folder.
 */
export async function newControlSocketPath(o: { runtimeDir: string | undefined; stateDir: string }): Promise<string> {
  const name = `ctl-${randomBytes(8).toString('hex')}.sock`;
  const dir = o.runtimeDir ? path.join(o.runtimeDir, 'sreg') : path.join(o.stateDir, 'run');
  if (path.join(dir, name).length <= MAX_SOCKET_PATH) {
    try {
      privateDir(dir);
    } catch (e) {
      throw localError('make the control socket folder', dir, e);
    }
    return path.join(dir, name);
  }
  return path.join(await mkdtemp(path.join(tmpdir(), 'sreg-')), name);
}

/** A refused or missing socket: nothing serves it (the mount process died). */
export const isRefused = (e: unknown): boolean => ['ECONNREFUSED', 'ENOENT', 'ENOTSOCK'].includes((e as { code?: string })?.code ?? '');

export type ControlHandler = (req: ControlRequest, progress: (p: unknown) => void) => Promise<unknown>;

export async function serveControl(socketPath: string, handler: ControlHandler): Promise<Server> {
  await unlink(socketPath).catch(() => undefined);
  const server = createServer((sock: Socket) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = '';
      let req: ControlRequest;
      try {
        req = JSON.parse(line) as ControlRequest;
      } catch {
        sock.end(`${JSON.stringify({ done: true, ok: false, error: 'bad request' })}\n`);
        return;
      }
      const send = (o: ControlLine): void => {
        if (!sock.destroyed) sock.write(`${JSON.stringify(o)}\n`);
      };
      handler(req, (p) => send({ progress: p })).then(
        (result) => {
          send({ done: true, ok: true, result });
          sock.end();
        },
        (e: unknown) => {
          send({ done: true, ok: false, error: (e as Error).message });
          sock.end();
        },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  try {
    await chmod(socketPath, 0o600);
  } catch (e) {
    server.close();
    throw e;
  }
  return server;
}

/**
/**
 * How long the client waits for the mount's next line (connecting included): a draining
 * unmount sends progress about once a second, a status answers at once; a mount that says
 * nothing for this long is stuck (its event loop blocked, or stopped with SIGSTOP).
 */
export const CONTROL_IDLE_MS = 30_000;

/**
 * Sends one request; calls onProgress for progress lines; resolves with the final line. Gives up
 * (ETIMEDOUT) when no line arrived for `timeoutMs` (default CONTROL_IDLE_MS).
 */
export function askControl(
  socketPath: string,
  req: ControlRequest,
  onProgress?: (p: unknown) => void,
  o: { timeoutMs?: number } = {},
): Promise<{ ok: boolean; result?: unknown; error?: string }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    const idleMs = o.timeoutMs ?? CONTROL_IDLE_MS;
    let buf = '';
    let finished = false;
    sock.setEncoding('utf8');
    sock.setTimeout(idleMs, () => {
      if (finished) return;
      finished = true;
      reject(Object.assign(new Error(`the mount process did not answer on its control socket within ${idleMs / 1000} s`), { code: 'ETIMEDOUT' }));
      sock.destroy();
    });
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        let line: ControlLine;
        try {
          line = JSON.parse(buf.slice(0, nl)) as ControlLine;
        } catch {
          finished = true;
          sock.destroy();
          reject(new Error('the mount process answered something that is not a control message'));
          return;
        }
        buf = buf.slice(nl + 1);
        if ('progress' in line) onProgress?.(line.progress);
        else {
          finished = true;
          resolve(line);
        }
      }
    });
    sock.on('error', (e) => {
      finished = true;
      reject(e);
    });
    sock.on('close', () => {
      if (!finished) reject(new Error('the mount process closed the control connection without an answer'));
    });
  });
}
