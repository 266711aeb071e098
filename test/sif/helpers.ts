/**
 * Real SIF images for the sif tests: scripts/build-sif.sh (busybox rootfs → mksquashfs →
 * siftool), images assembled here from a tree with mksquashfs + siftool, and what siftool
 * itself reports about an image, to compare our reading with.
 */
import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const exec = promisify(execFile);
// Compiled to dist/test/sif/; the script stays in the source tree.
export const BUILD_SIF = fileURLToPath(new URL('../../../scripts/build-sif.sh', import.meta.url));

export async function tempDir(t: ExecutionContext, prefix = 'sreg-sif-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A SIF from scripts/build-sif.sh (deffile id 1, labels id 2, squashfs PrimSys id 3). */
export async function buildSif(t: ExecutionContext, name: string, tag: string, extra: string[] = []): Promise<string> {
  const out = path.join(await tempDir(t), `${tag}.sif`);
  await exec(BUILD_SIF, ['--name', name, '--tag', tag, ...extra, out], { maxBuffer: 1 << 20 });
  return out;
}

/** Writes `files` (path → content; mode 0755 for paths under /.singularity.d) into a new dir. */
export async function makeTree(t: ExecutionContext, files: Record<string, string>): Promise<string> {
  const root = path.join(await tempDir(t, 'sreg-tree-'), 'root');
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(root, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
    await chmod(file, 0o755);
  }
  await mkdir(root, { recursive: true });
  return root;
}

export async function mksquashfs(t: ExecutionContext, root: string): Promise<string> {
  const out = path.join(await tempDir(t, 'sreg-sqfs-'), 'fs.squashfs');
  await exec('mksquashfs', [root, out, '-noappend', '-all-root', '-no-xattrs', '-no-progress', '-quiet']);
  return out;
}

export interface SifObject {
  file: string;
  /** siftool add flags after the datatype, e.g. ['--parttype', '2', '--partfs', '1', '--partarch', '2']. */
  flags: string[];
  datatype: number;
}

/** `siftool new` then `siftool add` of each object, in order (times and UUID left as siftool sets them). */
export async function siftoolImage(t: ExecutionContext, objects: SifObject[]): Promise<string> {
  const out = path.join(await tempDir(t), 'image.sif');
  await exec('siftool', ['new', out]);
  for (const o of objects) await exec('siftool', ['add', out, o.file, '--datatype', String(o.datatype), ...o.flags]);
  return out;
}

/** A field of siftool's `Key: value` output (`<no KEY>` when siftool printed none). */
export type Field = (key: string) => string;

/** `siftool header IMAGE`. */
export async function siftoolHeader(sif: string): Promise<Field> {
  const { stdout } = await exec('siftool', ['header', sif]);
  return keyValues(stdout);
}

/** `siftool info ID IMAGE`. */
export async function siftoolInfo(sif: string, id: number): Promise<Field> {
  const { stdout } = await exec('siftool', ['info', String(id), sif]);
  return keyValues(stdout);
}

export interface SiftoolListRow {
  id: number;
  group: string;
  link: string;
  start: number;
  end: number;
  type: string;
}

/** The rows of `siftool list IMAGE`. */
export async function siftoolList(sif: string): Promise<SiftoolListRow[]> {
  const { stdout } = await exec('siftool', ['list', sif]);
  return stdout
    .split('\n')
    .filter((l) => /^\d+\s*\|/.test(l))
    .map((l) => {
      const [id, group, link, pos, type] = l.split('|').map((c) => c.trim());
      const [start, end] = (pos ?? '').split('-').map(Number);
      return { id: Number(id), group: group ?? '', link: link ?? '', start: start ?? NaN, end: end ?? NaN, type: type ?? '' };
    });
}

export async function siftoolDump(sif: string, id: number): Promise<Buffer> {
  const { stdout } = await exec('siftool', ['dump', String(id), sif], { encoding: 'buffer', maxBuffer: 64 << 20 });
  return stdout;
}

function keyValues(text: string): Field {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z][A-Za-z ]*?):\s*(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined) map.set(m[1], m[2].trim());
  }
  return (key) => map.get(key) ?? `<no ${key}>`;
}

/** siftool prints times as `2020-01-01 00:00:00 +0000 UTC` (Go's time.String). */
export function siftoolTime(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})/.exec(text);
  if (!m) return NaN;
  return Date.parse(`${m[1]}T${m[2]}${m[3]}:${m[4]}`);
}
