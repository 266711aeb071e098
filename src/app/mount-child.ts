/**
 * Starts the process of a background mount (`sreg mount DIR --foreground --log-file LOG`) with
 * its pipe to us (ready-signal.ts): it loads its modules at once, then waits for `go`. Loaded
 * before SQLite and the checks (cli/index.ts), so that the child's start-up overlaps them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/index.js';
import { logFileFor } from './mount-paths.js';
import { READY_ENV, READY_FD } from './ready-signal.js';

export interface MountChildOptions {
  mountpoint: string;
  /** --cache-size as given (the child parses it again). */
  cacheSize: string;
  debug: boolean;
  fuse?: string;
}

export interface MountChild {
  readonly child: ChildProcess;
  /** The pipe: `go` goes out, `ready` comes in. */
  readonly pipe: Duplex;
  readonly logFile: string;
  readonly errFile: string;
  /** Empties the child's stdout/stderr file (this start's lines only) and lets it start. */
  go(): void;
  /** The child ends without having touched anything (its pipe closes before `go`). */
  cancel(): void;
}

export function spawnMountChild(config: Config, o: MountChildOptions, env: NodeJS.ProcessEnv): MountChild {
  const logFile = logFileFor(config, o.mountpoint);
  mkdirSync(path.dirname(logFile), { recursive: true, mode: 0o700 });
  // The child's stdout/stderr — its one ERROR line if it fails, a crash's stack trace,
  // libfuse's --debug trace — go to a file of their own, emptied at `go` (not before: it may be
  // a live mount's, which the checks then refuse), so that the log stays within its bound.
  const errFile = `${logFile}.stderr`;
  let errFd: number | undefined = openSync(errFile, 'a', 0o600);
  const cli = fileURLToPath(new URL('../cli/index.js', import.meta.url));
  const args = [cli, 'mount', o.mountpoint, '--foreground', '--log-file', logFile, '--cache-size', o.cacheSize, ...(o.debug ? ['--debug'] : []), ...(o.fuse ? ['--fuse', o.fuse] : [])];
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', errFd, errFd, 'pipe'], env: mountProcessEnv({ ...env, [READY_ENV]: String(READY_FD) }) });
  } catch (e) {
    closeSync(errFd);
    throw e;
  }
  const pipe = child.stdio[READY_FD] as Duplex;
  pipe.on('error', () => undefined);
  const closeErr = (): void => {
    if (errFd !== undefined) closeSync(errFd);
    errFd = undefined;
  };
  return {
    child,
    pipe,
    logFile,
    errFile,
    go: () => {
      // A child that died already keeps what it said (its ERROR line is passed on).
      if (errFd !== undefined && child.exitCode === null && child.signalCode === null) ftruncateSync(errFd, 0);
      closeErr();
      pipe.write('go\n');
    },
    cancel: () => {
      closeErr();
      pipe.destroy();
    },
  };
}

/**
 * The mount process's environment: ours, plus glibc malloc settings unless already set. A
 * FUSE write arrives in a fresh 1 MiB buffer (the native adapter copies it out of libfuse's),
 * socket data in 64 KiB ones: with glibc's defaults such buffers come from mmap or a heap that
 * is trimmed as soon as they are freed, so every one is new memory the kernel must fault in,
 * which measured as a third of the mount's CPU while `cp` wrote into it (cp of 256 MiB into a
 * native mount: mount CPU 1.7 s → 1.1 s, cp 5.5 s → 2–3 s, 2026-12-02). Buffers under 8 MiB
 * come from the heap, which keeps up to 64 MiB free before it shrinks.
 */
export function mountProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { MALLOC_MMAP_THRESHOLD_: String(8 << 20), MALLOC_TRIM_THRESHOLD_: String(64 << 20), ...env };
  // Node would read NODE_EXTRA_CA_CERTS before the mount's code runs (40 ms of its start); the
  // mount reads it itself when it first speaks TLS (dropbox/tls-ca.ts).
  if (out.NODE_EXTRA_CA_CERTS) {
    out.SREG_EXTRA_CA_CERTS ??= out.NODE_EXTRA_CA_CERTS; // tls-ca.ts's EXTRA_CA_ENV (not imported: the parent would load node:tls)
    delete out.NODE_EXTRA_CA_CERTS;
  }
  return out;
}
