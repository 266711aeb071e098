/**
 * scripts/build-sif.sh makes real SIF images: checked here with siftool, with our own reading
 * of the SIF header (sylabs/sif v2 on-disk layout), and with unsquashfs on the extracted
 * system partition.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
// Compiled to dist/test/; the scripts stay in the source tree.
const BUILD_SIF = fileURLToPath(new URL('../../scripts/build-sif.sh', import.meta.url));

const DATA_PARTITION = 0x4004;
const DATA_DEFFILE = 0x4001;
const DATA_LABELS = 0x4003;
const FS_SQUASH = 1;
const PART_PRIMSYS = 2;
const DESCRIPTOR_SIZE = 585;

interface SifDescriptor {
  dataType: number;
  id: number;
  groupId: number;
  offset: number;
  size: number;
  name: string;
  /** Partition descriptors only. */
  fsType?: number;
  partType?: number;
  arch?: string;
}

interface SifImage {
  launch: string;
  magic: string;
  version: string;
  arch: string;
  descriptors: SifDescriptor[];
}

/** Reads a SIF's global header and used descriptors (little-endian, packed structs). */
function parseSif(buf: Buffer): SifImage {
  const cstr = (start: number, end: number): string => buf.toString('latin1', start, end).replace(/\0+$/, '');
  const total = Number(buf.readBigInt64LE(88));
  const descOff = Number(buf.readBigInt64LE(96));
  const descriptors: SifDescriptor[] = [];
  for (let i = 0; i < total; i++) {
    const at = descOff + i * DESCRIPTOR_SIZE;
    if (buf[at + 4] !== 1) continue; // unused slot
    const d: SifDescriptor = {
      dataType: buf.readInt32LE(at),
      id: buf.readUInt32LE(at + 5),
      groupId: buf.readUInt32LE(at + 9) & 0x0fffffff,
      offset: Number(buf.readBigInt64LE(at + 17)),
      size: Number(buf.readBigInt64LE(at + 25)),
      name: cstr(at + 73, at + 201),
    };
    if (d.dataType === DATA_PARTITION) {
      d.fsType = buf.readInt32LE(at + 201);
      d.partType = buf.readInt32LE(at + 205);
      d.arch = cstr(at + 209, at + 212);
    }
    descriptors.push(d);
  }
  return { launch: cstr(0, 32), magic: cstr(32, 42), version: cstr(42, 45), arch: cstr(45, 48), descriptors };
}

async function tempDir(t: ExecutionContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function buildSif(t: ExecutionContext, args: string[]): Promise<string> {
  const dir = await tempDir(t, 'sif-fixture-');
  const out = path.join(dir, 'image.sif');
  await exec(BUILD_SIF, [...args, out], { maxBuffer: 1 << 20 });
  return out;
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** `siftool dump ID` of the image, to a file in a temp dir. */
async function siftoolDump(sif: string, id: number): Promise<Buffer> {
  const { stdout } = await exec('siftool', ['dump', String(id), sif], { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}

/** Unpacks a squashfs image with unsquashfs; returns the root directory. */
async function unsquash(t: ExecutionContext, squashfs: Buffer): Promise<string> {
  const dir = await tempDir(t, 'sif-unsquash-');
  const file = path.join(dir, 'part.squashfs');
  await writeFile(file, squashfs);
  const root = path.join(dir, 'root');
  await exec('unsquashfs', ['-no-progress', '-d', root, file], { maxBuffer: 16 << 20 });
  return root;
}

function systemPartition(t: ExecutionContext, img: SifImage): SifDescriptor {
  const parts = img.descriptors.filter((d) => d.dataType === DATA_PARTITION);
  t.is(parts.length, 1, 'exactly one partition');
  const part = parts[0];
  if (!part) throw new Error('no partition descriptor');
  return part;
}

test('build-sif.sh makes a SIF whose primary system partition is a squashfs busybox rootfs', async (t) => {
  const sif = await buildSif(t, ['--name', 'pusheen/asaurus', '--tag', 'red']);
  const buf = await readFile(sif);
  const img = parseSif(buf);

  t.is(img.magic, 'SIF_MAGIC');
  t.is(img.version, '01');
  t.is(img.arch, '02', 'header arch is amd64');
  t.is(img.launch, '#!/usr/bin/env run-singularity\n');

  const part = systemPartition(t, img);
  t.is(part.fsType, FS_SQUASH);
  t.is(part.partType, PART_PRIMSYS);
  t.is(part.arch, '02');
  t.true(part.offset > 0 && part.offset + part.size <= buf.length);
  t.is(buf.toString('latin1', part.offset, part.offset + 4), 'hsqs', 'squashfs magic at the partition offset');

  // siftool agrees with our reading of the header.
  const { stdout: list } = await exec('siftool', ['list', sif]);
  const row = list.split('\n').find((l) => l.includes('FS ('));
  t.truthy(row, `siftool list shows a partition:\n${list}`);
  const cols = (row ?? '').split('|').map((c) => c.trim());
  t.is(cols[0], String(part.id));
  t.is(cols[3], `${part.offset}-${part.offset + part.size}`);
  t.is(cols[4], 'FS (Squashfs/*System/amd64)');

  // siftool dump gives the same bytes as the descriptor's offset and size.
  const dumped = await siftoolDump(sif, part.id);
  t.is(dumped.length, part.size);
  t.is(sha256(dumped), sha256(buf.subarray(part.offset, part.offset + part.size)));

  const deffile = img.descriptors.find((d) => d.dataType === DATA_DEFFILE);
  t.truthy(deffile, 'a definition-file descriptor');
  if (deffile) t.regex(buf.toString('utf8', deffile.offset, deffile.offset + deffile.size), /^Bootstrap: scratch\n/);
  const labels = img.descriptors.find((d) => d.dataType === DATA_LABELS);
  t.truthy(labels, 'a JSON labels descriptor');
  if (labels) {
    const parsed = JSON.parse(buf.toString('utf8', labels.offset, labels.offset + labels.size));
    t.is(parsed['org.sreg.image'], 'pusheen/asaurus:red');
  }

  const root = await unsquash(t, dumped);
  const runscript = await readFile(path.join(root, '.singularity.d/runscript'), 'utf8');
  t.true(runscript.startsWith('#!/bin/sh\n'));
  t.true(runscript.includes('echo "Hello from pusheen/asaurus:red"'), runscript);
  t.true(((await stat(path.join(root, '.singularity.d/runscript'))).mode & 0o111) !== 0, 'runscript is executable');
  t.is(await readlink(path.join(root, 'singularity')), '.singularity.d/runscript');
  t.is(await readlink(path.join(root, 'environment')), '.singularity.d/env/90-environment.sh');
  t.true(
    (await readFile(path.join(root, '.singularity.d/env/90-environment.sh'), 'utf8')).includes(
      '# Custom environment shell code should follow\n\n',
    ),
  );
  const inImageLabels = JSON.parse(await readFile(path.join(root, '.singularity.d/labels.json'), 'utf8'));
  t.is(inImageLabels['org.sreg.image'], 'pusheen/asaurus:red');

  const busybox = await lstat(path.join(root, 'bin/busybox'));
  t.true(busybox.isFile() && busybox.size > 100_000, 'bin/busybox is a real binary');
  t.is(await readlink(path.join(root, 'bin/sh')), 'busybox');

  // The image's own busybox runs its runscript: it prints the line and exits 0 without args,
  // and hands arguments to /bin/sh.
  const bb = path.join(root, 'bin/busybox');
  const rs = path.join(root, '.singularity.d/runscript');
  const plain = await exec(bb, ['sh', rs]);
  t.is(plain.stdout, 'Hello from pusheen/asaurus:red\n');
  // exec /bin/sh is the host's /bin/sh here (no chroot); it must run the arguments.
  const withArgs = await exec(bb, ['sh', rs, '-c', 'echo "args: $0 $1"', 'x', 'y']);
  t.is(withArgs.stdout, 'Hello from pusheen/asaurus:red\nargs: x y\n');
});

test('two builds of the same name and tag are byte-identical; another tag differs', async (t) => {
  const [a, b, c] = await Promise.all([
    buildSif(t, ['--name', 'vsoch/hello-world', '--tag', 'tacos']),
    buildSif(t, ['--name', 'vsoch/hello-world', '--tag', 'tacos']),
    buildSif(t, ['--name', 'vsoch/hello-world', '--tag', 'burritos']),
  ]);
  const [ba, bb, bc] = await Promise.all([readFile(a), readFile(b), readFile(c)]);
  t.is(sha256(ba), sha256(bb));
  t.not(sha256(ba), sha256(bc));
  // The partitions differ too (the runscript names the tag), not only the header.
  const pa = systemPartition(t, parseSif(ba));
  const pc = systemPartition(t, parseSif(bc));
  t.not(
    sha256(ba.subarray(pa.offset, pa.offset + pa.size)),
    sha256(bc.subarray(pc.offset, pc.offset + pc.size)),
  );
});

test('--data-mib 8 adds /data/blob.bin of exactly 8 MiB of non-constant bytes', async (t) => {
  const sif = await buildSif(t, ['--name', 'bench/data', '--tag', 'v1', '--data-mib', '8']);
  const buf = await readFile(sif);
  const part = systemPartition(t, parseSif(buf));
  t.true(part.size > 8 * 1024 * 1024, 'the partition holds the data');
  const root = await unsquash(t, buf.subarray(part.offset, part.offset + part.size));
  const blob = await readFile(path.join(root, 'data/blob.bin'));
  t.is(blob.length, 8 * 1024 * 1024);
  // Pseudo-random: every byte value shows up, and the two halves differ.
  t.is(new Set(blob.subarray(0, 1 << 16)).size, 256);
  t.false(blob.subarray(0, 4 << 20).equals(blob.subarray(4 << 20)));
  t.true((await lstat(path.join(root, 'bin/busybox'))).isFile());
});

test('build-sif.sh refuses bad arguments', async (t) => {
  const dir = await tempDir(t, 'sif-bad-');
  const out = path.join(dir, 'x.sif');
  for (const args of [
    ['--tag', 'red', out],
    ['--name', 'a/b', '--tag', 'red', '--data-mib', 'lots', out],
    ['--name', 'a/b"; rm -rf /', '--tag', 'red', out],
    ['--name', 'a/b', '--tag', 'red'],
  ]) {
    const err = await exec(BUILD_SIF, args).then(
      () => undefined,
      (e: unknown) => e as { code: number },
    );
    t.truthy(err, `failed: ${args.join(' ')}`);
    t.not(err?.code, 0);
  }
  await t.throwsAsync(stat(out), undefined, 'no output was written');
});
