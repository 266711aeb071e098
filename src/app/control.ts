/**
 * The mount's control socket (a unix socket per mountpoint): `sreg unmount` and `sreg status`
 * talk to the serving process through it. Newline-delimited JSON: one request line, then
 * answer lines; progress lines carry `"progress"`, the last line carries `"done"`.
 */
import { createHash } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unlink } from 'node:fs/promises';

export type ControlRequest = { cmd: 'status' } | { cmd: 'unmount' };
export type ControlLine = { progress: unknown } | { done: true; ok: boolean; result?: unknown; error?: string };

/** Short (unix socket paths are limited to 107 bytes) and unique per mountpoint and user. */
export function controlSocketPath(mountpoint: string): string {
  const h = createHash('sha256').update(mountpoint).digest('hex').slice(0, 16);
  return path.join(tmpdir(), `sreg-${process.getuid?.() ?? 0}-${h}.sock`);
}

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
  return server;
}

/**
 * How long the client waits for the mount's next line (connecting included): a draining
 * unmount sends progress about once a second, a status answers at once; a mount that says
 * nothing for this long is stuck (its event loop blocked, or stopped with SIGSTOP).
 */
export const CONTROL_IDLE_MS = 30_000;

/** Sends one request; calls onProgress for progress lines; resolves with the final line. */
export function askControl(
  socketPath: string,
  req: ControlRequest,
  onProgress?: (p: unknown) => void,
  idleMs = CONTROL_IDLE_MS,
): Promise<{ ok: boolean; result?: unknown; error?: string }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = '';
    let finished = false;
    sock.setEncoding('utf8');
    sock.setTimeout(idleMs, () => {
      if (finished) return;
      finished = true;
      reject(new Error(`the mount process did not answer on its control socket within ${idleMs / 1000} s`));
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
