/**
 * inspectImage on real images: attributes compared with the files unsquashfs extracts from the
 * same partition and the objects siftool dumps; fallbacks (no SIF objects, pre-SIF squashfs
 * `.simg`); and errors.
 */
import test, { type ExecutionContext } from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SifError, inspectImage, primaryPartition, readSif } from '../../src/sif/index.js';
import { buildSif, exec, makeTree, mksquashfs, siftoolDump, siftoolImage, tempDir } from './helpers.js';

/** The file at `rel` in a tree, or null when there is none. */
async function fileOrNull(root: string, rel: string): Promise<string | null> {
  try {
    return await readFile(path.join(root, rel), 'utf8');
  } catch {
    return null;
  }
}

/** Extracts the whole squashfs partition of `sif` with unsquashfs; returns the root. */
async function extract(t: ExecutionContext, sif: string, offset: number): Promise<string> {
  const root = path.join(await tempDir(t, 'sreg-unsq-'), 'root');
  await exec('unsquashfs', ['-o', String(offset), '-no-progress', '-no-xattrs', '-d', root, sif], { maxBuffer: 16 << 20 });
  return root;
}

test('inspectImage on a build-sif.sh image: every attribute as unsquashfs and siftool give it', async (t) => {
  const sif = await buildSif(t, 'pusheen/asaurus', 'red');
  const part = primaryPartition(await readSif(sif));
  if (!part) return t.fail('no primary partition');
  const root = await extract(t, sif, part.offset);
  const attrs = await inspectImage(sif);
  t.deepEqual(Object.keys(attrs), ['deffile', 'environment', 'help', 'labels', 'runscript', 'test']);
  t.is(attrs.deffile, (await siftoolDump(sif, 1)).toString('utf8'));
  t.deepEqual(attrs.labels, JSON.parse((await siftoolDump(sif, 2)).toString('utf8')));
  t.is(attrs.runscript, await fileOrNull(root, '.singularity.d/runscript'));
  t.is(attrs.environment, await fileOrNull(root, '.singularity.d/env/90-environment.sh'));
  t.is(attrs.test, await fileOrNull(root, '.singularity.d/test'));
  t.is(attrs.help, await fileOrNull(root, '.singularity.d/runscript.help'));
  // The image really has those files (so the comparisons above are not null === null) …
  t.truthy(attrs.runscript?.includes('Hello from pusheen/asaurus:red'));
  t.truthy(attrs.environment?.includes('# Custom environment shell code should follow\n\n'));
  t.truthy(attrs.test);
  // … and no runscript.help: a missing file is null.
  t.is(attrs.help, null);
});

const TREE = {
  '.singularity.d/runscript': '#!/bin/sh\n\nexec "sh" "$@"\n',
  '.singularity.d/runscript.help': 'Runs sh.\n',
  '.singularity.d/env/90-environment.sh': '# Custom environment shell code should follow\n\n',
  '.singularity.d/labels.json': '{"maintainer": "pusheen", "n": 1}',
  '.singularity.d/Singularity': 'Bootstrap: docker\nFrom: busybox\n',
  'bin/readme': 'not an attribute\n',
};

test('inspectImage without SIF deffile/labels objects reads them from /.singularity.d', async (t) => {
  const fs = await mksquashfs(t, await makeTree(t, TREE));
  const sif = await siftoolImage(t, [{ file: fs, datatype: 4, flags: ['--parttype', '2', '--partfs', '1', '--partarch', '2'] }]);
  t.deepEqual(await inspectImage(sif), {
    deffile: TREE['.singularity.d/Singularity'],
    environment: TREE['.singularity.d/env/90-environment.sh'],
    help: TREE['.singularity.d/runscript.help'],
    labels: { maintainer: 'pusheen', n: 1 },
    runscript: TREE['.singularity.d/runscript'],
    test: null,
  });
});

test('the SIF\'s own deffile and labels objects win over the files inside the image', async (t) => {
  const fs = await mksquashfs(t, await makeTree(t, TREE));
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'def'), 'Bootstrap: scratch\n');
  await writeFile(path.join(dir, 'labels'), '{"from": "descriptor"}');
  const sif = await siftoolImage(t, [
    { file: path.join(dir, 'def'), datatype: 1, flags: [] },
    { file: path.join(dir, 'labels'), datatype: 3, flags: [] },
    { file: fs, datatype: 4, flags: ['--parttype', '2', '--partfs', '1', '--partarch', '2'] },
  ]);
  const attrs = await inspectImage(sif);
  t.is(attrs.deffile, 'Bootstrap: scratch\n');
  t.deepEqual(attrs.labels, { from: 'descriptor' });
  t.is(attrs.help, TREE['.singularity.d/runscript.help']);
});

test('a pre-SIF squashfs .simg (bare, or after the run-singularity launch line) is inspected too', async (t) => {
  const fs = await mksquashfs(t, await makeTree(t, TREE));
  const bytes = await readFile(fs);
  const withLaunch = path.join(await tempDir(t), 'legacy.simg');
  await writeFile(withLaunch, Buffer.concat([Buffer.from('#!/usr/bin/env run-singularity\n'), bytes]));
  for (const image of [fs, withLaunch]) {
    const attrs = await inspectImage(image);
    t.is(attrs.runscript, TREE['.singularity.d/runscript'], image);
    t.deepEqual(attrs.labels, { maintainer: 'pusheen', n: 1 });
    t.is(attrs.deffile, TREE['.singularity.d/Singularity']);
  }
  const err = await t.throwsAsync(readSif(fs), { instanceOf: SifError });
  t.is(err?.code, 'not_sif', 'readSif itself is SIF-only');
});

test('inspectImage errors: not an image, no squashfs primary partition, an unreadable squashfs', async (t) => {
  const dir = await tempDir(t);
  const text = path.join(dir, 'text.simg');
  await writeFile(text, 'hello\n');
  t.is((await t.throwsAsync(inspectImage(text), { instanceOf: SifError }))?.code, 'not_sif');

  await writeFile(path.join(dir, 'raw'), Buffer.alloc(8192, 1));
  const noPrimary = await siftoolImage(t, [{ file: path.join(dir, 'raw'), datatype: 4, flags: ['--parttype', '3', '--partfs', '4', '--partarch', '2'] }]);
  const e1 = await t.throwsAsync(inspectImage(noPrimary), { instanceOf: SifError });
  t.is(e1?.code, 'unsupported');
  t.regex(e1?.message ?? '', /no primary system partition/);
  const rawPrimary = await siftoolImage(t, [{ file: path.join(dir, 'raw'), datatype: 4, flags: ['--parttype', '2', '--partfs', '4', '--partarch', '2'] }]);
  const e2 = await t.throwsAsync(inspectImage(rawPrimary), { instanceOf: SifError });
  t.is(e2?.code, 'unsupported');
  t.regex(e2?.message ?? '', /is Raw, not squashfs/);

  // A real SIF whose squashfs superblock was overwritten.
  const sif = await buildSif(t, 'pusheen/asaurus', 'broken');
  const part = primaryPartition(await readSif(sif));
  const bytes = await readFile(sif);
  bytes.fill(0, part?.offset ?? 0, (part?.offset ?? 0) + 4096);
  await writeFile(sif, bytes);
  const e3 = await t.throwsAsync(inspectImage(sif), { instanceOf: SifError });
  t.is(e3?.code, 'corrupt');
  t.regex(e3?.message ?? '', /squashfs at byte \d+ is unreadable/);
});
