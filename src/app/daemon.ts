/**
 * `sreg mount DIR` without --foreground: checks first (preflight.ts, all but loading libfuse), then lets
 * `sreg mount DIR --foreground --log-file LOG` start (mount-child.ts: spawned detached, usually
 * before the checks, by cli/index.ts, and waiting for our `go`) and returns once the mount answers
 * (its `ready: mounted on DIR` line in the log). When the child fails, its own one-line
 * `ERROR …` and exit code are passed on as they are: a wrong token is exit 4, a second mount
 * of the same state exit 6, a read-only cache folder exit 7 — never a dump of the log.
 */
import { readFile, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/index.js';
import { UsageError } from '../registry/errors.js';
import type { AdapterName } from './fuse-adapter.js';
import { spawnMountChild, type MountChild } from './mount-child.js';
import { openMountState } from './mount-state.js';
import { mountChecks } from './preflight.js';
import { isSregMount, mountEntry } from './procfs.js';
import { trace } from '../util/trace.js';

export interface MountOptions {
  mountpoint: string;
  cacheSizeBytes: number;
  foreground: boolean;
  debug: boolean;
  /** Log to this file (rotated, reopened on SIGHUP) instead of stdout. */
  logFile?: string;
  /** --fuse: the FUSE adapter (default: SREG_FUSE, else native when it loads). */
  fuse?: AdapterName;
}

export interface Say {
  info(line: string): void;
  result(line: string): void;
}

const START_DEADLINE_MS = 120_000;
/**
 * How often the parent looks for the child's `ready` (its log line, a few hundred bytes) on its
 * own; it looks at once when the child writes on its ready pipe (ready-signal.ts) or exits.
 */
const POLL_MS = 100;

/** The child's one `ERROR …` line (what cli/run.ts prints) among its log lines past `from`. */
async function childError(logFile: string, from: number): Promise<string | undefined> {
  const text = await readFile(logFile).then((b) => b.subarray(from).toString('utf8'), () => '');
  const line = text.split('\n').reverse().find((l) => l.startsWith('ERROR '));
  return line?.slice('ERROR '.length);
}

export async function mountInBackground(config: Config, o: MountOptions, say: Say, early?: MountChild): Promise<void> {
  trace('parent: mountInBackground');
  try {
    const state = openMountState(config);
    try {
      // libfuse and the adapter are loaded by the mount itself (serve.ts), which logs which one and why.
      await mountChecks(config, o.mountpoint, state, (l) => say.info(l));
    } finally {
      state.close();
    }
  } catch (e) {
    early?.cancel();
    throw e;
  }
  const mc = early ?? spawnMountChild(config, { mountpoint: o.mountpoint, cacheSize: String(o.cacheSizeBytes), debug: o.debug, fuse: o.fuse }, process.env);
  const { child, pipe: readyPipe, logFile, errFile } = mc;
  const logStart = await stat(logFile).then((s) => s.size, () => 0); // this mount's lines come after it
  // Woken by the child's ready line or its exit, else by the poll timer.
  let nudged = false;
  let endWait: (() => void) | undefined;
  const nudge = (): void => {
    nudged = true;
    endWait?.();
  };
  readyPipe.on('data', nudge);
  let exited: number | null | undefined = child.exitCode !== null || child.signalCode !== null ? child.exitCode : undefined;
  child.on('exit', (code) => {
    exited = code;
    nudge();
  });
  mc.go();
  trace('parent: go');
  const deadline = Date.now() + START_DEADLINE_MS;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      const line = await childError(errFile, 0);
      const code = exited ?? 1;
      throw new UsageError(line ?? `the mount did not start (exit ${code}); see ${logFile} and ${errFile}`, code === 0 ? 1 : code);
    }
    // The log first: it is the cheapest, and the last of the three to become true.
    if ((await saidReady(logFile, logStart, o.mountpoint)) && isSregMount(await mountEntry(o.mountpoint)) && (await stat(o.mountpoint).then(() => true, () => false))) {
      trace('parent: saw ready');
      readyPipe.destroy();
      child.unref();
      say.result(`mounted Dropbox on ${o.mountpoint} (pid ${child.pid}, log ${logFile}); stop it with: sreg unmount ${o.mountpoint}`);
      return;
    }
    if (!nudged) {
      const ac = new AbortController();
      await Promise.race([sleep(POLL_MS, undefined, { signal: ac.signal }).catch(() => undefined), new Promise<void>((r) => (endWait = r))]);
      ac.abort();
    }
    nudged = false;
    endWait = undefined;
  }
  readyPipe.destroy();
  child.kill('SIGTERM');
  throw new UsageError(`the mount did not answer within ${START_DEADLINE_MS / 1000} s; see ${logFile}`, 1);
}

/** Has the log, past `from`, the mount's `ready: mounted on DIR` line? */
async function saidReady(logFile: string, from: number, mountpoint: string): Promise<boolean> {
  const text = await readFile(logFile).then((b) => b.subarray(from).toString('utf8'), () => '');
  return text.includes(` ready: mounted on ${mountpoint}\n`);
}
