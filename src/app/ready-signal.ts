/**
 * How a background mount tells its `sreg mount` parent that it is ready, at once instead of at
 * the parent's next look at the log: the parent gives the child a pipe as file descriptor
 * READY_FD and names it in SREG_READY_FD; the child writes one line on it when it has logged
 * `ready` and closes it. The parent still checks the log, the kernel mount and the folder before
 * it believes it (daemon.ts), and still looks on its own every so often, so a lost line costs
 * time, never a wrong answer. A mount started by hand (--foreground) has no SREG_READY_FD and
 * writes nothing: file descriptor 3 may be anything there.
 */
import { closeSync, writeSync } from 'node:fs';

export const READY_FD = 3;
export const READY_ENV = 'SREG_READY_FD';

/** The pipe's descriptor, if this process was started with one; forgotten by the environment, so that no child of ours inherits the claim. */
export function takeReadyFd(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env[READY_ENV];
  delete env[READY_ENV];
  return v === String(READY_FD) ? READY_FD : undefined;
}

/** Writes `ready` on the pipe and closes it; a parent gone already is no failure. */
export function signalReady(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    writeSync(fd, 'ready\n');
  } catch {
    /* the parent is gone (EPIPE) or gave up: it reads the log anyway */
  }
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}
