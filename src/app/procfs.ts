/**
 * What the kernel says about mounts and processes, read from /proc: the mount table entry of a
 * folder (so that sreg only ever touches its own mounts: source `sreg`, type `fuse.sreg`), a
 * process's start time (so that a recorded pid still names the same process, not a zombie or a
 * later process that got the same number), and the lazy clearing of a dead FUSE mount with
 * `fusermount -uz` (no libfuse needed in this process).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { unescapeMountPath } from '../fuse/mountinfo.js';

/** What /proc/mounts shows for an sreg mount (fuse/index.ts mounts with fsname and subtype `sreg`). */
export const SREG_SOURCE = 'sreg';
export const SREG_FSTYPE = 'fuse.sreg';

export interface MountEntry {
  source: string;
  type: string;
}


/** The topmost entry of /proc/mounts for `mountpoint` (the one a path lookup reaches), if any. */
export async function mountEntry(mountpoint: string): Promise<MountEntry | undefined> {
  const text = await readFile('/proc/mounts', 'utf8').catch(() => '');
  let found: MountEntry | undefined;
  for (const line of text.split('\n')) {
    const [source, where, type] = line.split(' ');
    if (source !== undefined && where !== undefined && type !== undefined && unescapeMountPath(where) === mountpoint) found = { source: unescapeMountPath(source), type };
  }
  return found;
}

export const isSregMount = (e: MountEntry | undefined): boolean => e?.source === SREG_SOURCE && e.type === SREG_FSTYPE;

/**
 * The process's start time (clock ticks since boot, field 22 of /proc/PID/stat) while it runs;
 * undefined when there is no such process or it is a zombie (dead, not yet reaped) or dead.
 * The command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
 */
export async function processStart(pid: number): Promise<string | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  if (state === 'Z' || state === 'X' || state === 'x') return undefined;
  return rest[19]; // field 22; rest[0] is field 3
}

/** Is `pid` still the process that started at `start` (and not a zombie)? */
export async function sameProcessAlive(pid: number, start: string | null | undefined): Promise<boolean> {
  const now = await processStart(pid);
  if (now === undefined) return false;
  return start === null || start === undefined ? true : now === start;
}

/**
 * Detaches a dead sreg mount lazily: `fusermount -uz` (libfuse 2's `fuse` package), else
 * `fusermount3 -uz`, else `umount -l` (root). Refuses anything that is not sreg's own mount.
 */
export async function detachDeadMount(mountpoint: string): Promise<void> {
  const entry = await mountEntry(mountpoint);
  if (!entry) return;
  if (!isSregMount(entry)) throw new Error(`${mountpoint} is not an sreg mount (${entry.type}): not touched`);
  const run = (cmd: string, args: string[]): Promise<void> =>
    new Promise((resolve, reject) => {
      execFile(cmd, args, { timeout: 30_000 }, (err, _out, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve()));
    });
  let first: Error | undefined;
  for (const [cmd, ...args] of [['fusermount', '-uz', mountpoint], ['fusermount3', '-uz', mountpoint], ['umount', '-l', mountpoint]] as const) {
    try {
      return await run(cmd, [...args]);
    } catch (e) {
      first ??= e as Error;
    }
  }
  throw first ?? new Error(`cannot detach ${mountpoint}`);
}
