/**
 * What the kernel says of a mount, read from /proc (never a stat of the mount point, which
 * would be answered by this very process): its device number, and the kernel's readahead for
 * it. Shared by both FUSE adapters and app/procfs.ts; imports nothing of libfuse.
 */
import { readFile, writeFile } from 'node:fs/promises';

/** /proc/mounts and mountinfo escape space, tab, newline and backslash as \ooo. */
export function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** MAJOR:MINOR of the topmost mount on `mountpoint`, from /proc/self/mountinfo. */
export async function mountDevice(mountpoint: string): Promise<string | undefined> {
  const line = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => unescapeMountPath(f[4] ?? '') === mountpoint)
    .at(-1);
  const dev = line?.[2];
  return dev && /^\d+:\d+$/.test(dev) ? dev : undefined;
}

/**
 * Sets the kernel's readahead for the mount's backing device (/sys/class/bdi/MAJOR:MINOR/
 * read_ahead_kb; FUSE's default is 128 KiB). Needs root (sysfs); elsewhere the mount works as
 * before and says so in its log.
 */
export async function setReadahead(mountpoint: string, kb: number, log: (line: string) => void): Promise<void> {
  try {
    const dev = await mountDevice(mountpoint);
    if (!dev) throw new Error(`${mountpoint} is not in /proc/self/mountinfo`);
    await writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, String(kb));
  } catch (e) {
    log(`kernel readahead left at its default (${(e as Error).message}): sequential reads will be slower`);
  }
}
