/**
 * The pipe between a background mount and its `sreg mount` parent (file descriptor READY_FD of
 * the child, named in SREG_READY_FD). Both ways:
 *  - `go`: the parent spawns the mount before its own checks (so that the child's start-up, most
 *    of it loading modules, overlaps them) and writes `go` once they passed; until then the
 *    child touches nothing (no log, no state, no mount). A pipe that ends without `go` (the
 *    checks failed, the parent died) makes the child exit quietly.
 *  - `ready`: the child writes it when it has logged `ready`, so the parent looks at once
 *    instead of at its next poll. The parent still checks the log, the kernel mount and the
 *    folder before it believes it (daemon.ts), so a lost line costs time, never a wrong answer.
 * A mount started by hand (--foreground) has no SREG_READY_FD: file descriptor 3 may be anything there.
 */
import { Socket } from 'node:net';

export const READY_FD = 3;
export const READY_ENV = 'SREG_READY_FD';

export interface ParentChannel {
  /** true once the parent said `go`; false if the pipe ended first. */
  readonly go: Promise<boolean>;
  /** Writes `ready` and closes the pipe; a parent gone already is no failure. */
  ready(): void;
}

let taken: ParentChannel | null | undefined;

/**
 * This process's pipe to its parent, if it was started with one (memoized); forgotten by the
 * environment, so that no child of ours inherits the claim.
 */
export function parentChannel(env: NodeJS.ProcessEnv = process.env): ParentChannel | undefined {
  if (taken !== undefined) return taken ?? undefined;
  const v = env[READY_ENV];
  delete env[READY_ENV];
  taken = v === String(READY_FD) ? open(READY_FD) : null;
  return taken ?? undefined;
}

function open(fd: number): ParentChannel {
  const sock = new Socket({ fd, readable: true, writable: true });
  sock.on('error', () => undefined);
  let text = '';
  const go = new Promise<boolean>((resolve) => {
    sock.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      if (text.includes('go\n')) resolve(true);
    });
    sock.on('close', () => resolve(false));
    sock.on('end', () => resolve(false));
  });
  // Once told to go, the pipe must not keep the mount alive.
  void go.then(() => sock.unref());
  return {
    go,
    ready: () => {
      if (!sock.destroyed) sock.end('ready\n');
    },
  };
}
