/**
 * readSif / primaryPartition / readDescriptorData on real images, compared with what siftool
 * reports about the same files; and the refusals: not a SIF, cut short, inconsistent.
 */
import test, { type ExecutionContext } from 'ava';
import { copyFile, open, readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  DataType,
  SifError,
  primaryPartition,
  readDescriptorData,
  readSif,
  type SifErrorCode,
  type SifInfo,
} from '../../src/sif/index.js';
import {
  buildSif, makeTree, mksquashfs, siftoolDump, siftoolHeader, siftoolImage, siftoolInfo, siftoolList, siftoolTime, tempDir,
} from './helpers.js';

/** Every field siftool shows, for the header and each descriptor, equals ours. */
async function agreesWithSiftool(t: ExecutionContext, sif: string, info: SifInfo): Promise<void> {
  const h = await siftoolHeader(sif);
  // siftool leaves the line out when the launch script is empty (`siftool new` writes none).
  t.is(info.launchScript.trim() || '<no Launch Script>', h('Launch Script'));
  t.is(info.version, h('Version'));
  t.is(info.arch, h('Primary Architecture'));
  t.is(info.id, h('ID'));
  t.is(info.createdAt.getTime(), siftoolTime(h('Created At')));
  t.is(info.modifiedAt.getTime(), siftoolTime(h('Modified At')));
  t.is(String(info.descriptorsFree), h('Descriptors Free'));
  t.is(String(info.descriptorsTotal), h('Descriptors Total'));
  t.is(String(info.descriptorsOffset), h('Descriptors Offset'));
  t.is(String(info.dataOffset), h('Data Offset'));
  t.is(info.fileSizeBytes, (await readFile(sif)).length);

  const rows = await siftoolList(sif);
  t.deepEqual(info.descriptors.map((d) => d.id), rows.map((r) => r.id));
  for (const d of info.descriptors) {
    const row = rows.find((r) => r.id === d.id);
    if (!row) return t.fail(`siftool list has no object ${d.id}`);
    t.is(d.offset, row.start);
    t.is(d.offset + d.size, row.end);
    const part = d.partition;
    t.is(part ? `${d.dataTypeName} (${part.fsTypeName}/${part.partTypeName}/${part.arch})` : d.dataTypeName, row.type);
    const i = await siftoolInfo(sif, d.id);
    t.is(d.dataTypeName, i('Data Type'));
    t.is(String(d.size), i('Size'));
    t.is(d.name || '<no Name>', i('Name'), 'siftool leaves out an empty name');
    t.is(d.groupId === 0 ? 'NONE' : String(d.groupId), i('Group ID'));
    t.is(d.linkedId === 0 ? 'NONE' : String(d.linkedId), i('Linked ID'));
    t.is(d.createdAt.getTime(), siftoolTime(i('Created At')));
    if (part) {
      t.is(part.fsTypeName, i('Filesystem Type'));
      t.is(part.partTypeName, i('Partition Type'));
      t.is(part.arch, i('Architecture'));
    }
  }
}

test('readSif reads a build-sif.sh image as siftool does', async (t) => {
  const sif = await buildSif(t, 'pusheen/asaurus', 'red');
  const info = await readSif(sif);
  t.is(info.file, sif);
  t.deepEqual(info.descriptors.map((d) => d.dataType), [DataType.deffile, DataType.labels, DataType.partition]);
  await agreesWithSiftool(t, sif, info);
});

test('readSif on an image siftool made (random UUID, current times, a data partition before the primary one)', async (t) => {
  const dataFs = await mksquashfs(t, await makeTree(t, { 'data/readme.txt': 'data only\n' }));
  const rootFs = await mksquashfs(t, await makeTree(t, { '.singularity.d/runscript': '#!/bin/sh\necho hi\n' }));
  const dir = await tempDir(t);
  const json = path.join(dir, 'meta.json');
  await writeFile(json, '{"generic": true}');
  const sif = await siftoolImage(t, [
    { file: dataFs, datatype: 4, flags: ['--parttype', '3', '--partfs', '1', '--partarch', '4', '--groupid', '1'] },
    { file: json, datatype: 6, flags: ['--filename', 'meta.json', '--link', '1'] },
    { file: rootFs, datatype: 4, flags: ['--parttype', '2', '--partfs', '1', '--partarch', '2', '--groupid', '1'] },
  ]);
  const info = await readSif(sif);
  await agreesWithSiftool(t, sif, info);
  t.deepEqual(info.descriptors.map((d) => [d.id, d.dataTypeName]), [[1, 'FS'], [2, 'JSON.Generic'], [3, 'FS']]);
  t.is(info.descriptors[1]?.linkedId, 1);
  t.false(info.descriptors[1]?.linkIsGroup);

  const primary = primaryPartition(info);
  t.is(primary?.id, 3, 'the PrimSys partition, not the first one');
  t.like(primary, { fsType: 1, fsTypeName: 'Squashfs', arch: 'amd64' });
  const fromSiftool = await siftoolDump(sif, 3);
  t.is(primary?.size, fromSiftool.length);
  const fh = await open(sif, 'r');
  const magic = Buffer.alloc(4);
  await fh.read(magic, 0, 4, primary?.offset ?? 0);
  await fh.close();
  t.is(magic.toString('latin1'), 'hsqs');
  t.deepEqual(await readFile(rootFs), fromSiftool);
});

test('primaryPartition is undefined for a SIF without a primary system partition', async (t) => {
  const dir = await tempDir(t);
  const def = path.join(dir, 'Singularity');
  await writeFile(def, 'Bootstrap: scratch\n');
  const sif = await siftoolImage(t, [{ file: def, datatype: 1, flags: [] }]);
  t.is(primaryPartition(await readSif(sif)), undefined);
});

test('readDescriptorData returns the bytes siftool dumps; refuses objects over the cap', async (t) => {
  const sif = await buildSif(t, 'vsoch/hello-world', 'tacos', ['--data-mib', '1']);
  const info = await readSif(sif);
  for (const d of info.descriptors) {
    t.deepEqual(await readDescriptorData(sif, d, 8 << 20), await siftoolDump(sif, d.id), `object ${d.id}`);
  }
  const part = info.descriptors.find((d) => d.dataType === DataType.partition);
  if (!part) return t.fail('no partition');
  t.true(part.size > 1024 * 1024, `the partition holds 1 MiB of data and busybox (${part.size} bytes)`);
  const err = await t.throwsAsync(readDescriptorData(sif, part), { instanceOf: SifError });
  t.is(err?.code, 'too_large', 'over the default 1 MiB cap');
  const def = info.descriptors[0];
  if (!def) return t.fail('no deffile');
  t.is((await t.throwsAsync(readDescriptorData(sif, def, def.size - 1), { instanceOf: SifError }))?.code, 'too_large');
  t.is((await readDescriptorData(sif, def, def.size)).length, def.size, 'exactly at the cap is fine');
});

test('readSif reads only the header region: an 8 GiB (sparse) image is fine', async (t) => {
  const src = await buildSif(t, 'pusheen/asaurus', 'big');
  const sif = path.join(await tempDir(t), 'big.sif');
  await copyFile(src, sif);
  await truncate(sif, 8 * 1024 ** 3);
  const info = await readSif(sif);
  t.is(info.fileSizeBytes, 8 * 1024 ** 3);
  t.is(primaryPartition(info)?.id, 3);
});

async function expectSifError(t: ExecutionContext, file: string, code: SifErrorCode, message: RegExp): Promise<void> {
  const err = await t.throwsAsync(readSif(file), { instanceOf: SifError });
  t.is(err?.code, code, err?.message);
  t.regex(err?.message ?? '', message);
}

test('a file that is not a SIF is not_sif', async (t) => {
  const dir = await tempDir(t);
  const text = path.join(dir, 'notes.txt');
  await writeFile(text, 'Singularity images are not text files.\n'.repeat(10));
  await expectSifError(t, text, 'not_sif', /is not a SIF image/);
  const empty = path.join(dir, 'empty.sif');
  await writeFile(empty, '');
  await expectSifError(t, empty, 'not_sif', /is not a SIF image/);
  const squash = await mksquashfs(t, await makeTree(t, { 'a.txt': 'a' }));
  await expectSifError(t, squash, 'not_sif', /is not a SIF image/);
});

test('a missing file is Node\'s ENOENT, not a SifError', async (t) => {
  const err = await t.throwsAsync(readSif(path.join(await tempDir(t), 'nope.sif')));
  t.false(err instanceof SifError);
  t.is((err as NodeJS.ErrnoException | undefined)?.code, 'ENOENT');
});

test('a SIF cut short (in the header, in the descriptors, in the data) is corrupt', async (t) => {
  const sif = await buildSif(t, 'pusheen/asaurus', 'cut');
  const whole = await readFile(sif);
  const info = await readSif(sif);
  const dir = await tempDir(t);
  const cases: [number, RegExp][] = [
    [100, /header is cut short \(100 of 128 bytes\)/],
    [info.descriptorsOffset + 1000, /descriptor table ends past the end of the file/],
    [whole.length - 1, /ends past the end of the file/],
  ];
  for (const [bytes, message] of cases) {
    const file = path.join(dir, `cut-${bytes}.sif`);
    await writeFile(file, whole.subarray(0, bytes));
    await expectSifError(t, file, 'corrupt', message);
  }
});

test('inconsistent header fields and descriptors are corrupt; another format version is unsupported', async (t) => {
  const sif = await buildSif(t, 'pusheen/asaurus', 'bad');
  const whole = await readFile(sif);
  const info = await readSif(sif);
  const dir = await tempDir(t);
  const patched = async (name: string, patch: (b: Buffer) => void): Promise<string> => {
    const b = Buffer.from(whole);
    patch(b);
    const file = path.join(dir, name);
    await writeFile(file, b);
    return file;
  };
  const partIndex = info.descriptors.findIndex((d) => d.dataType === DataType.partition);
  const partAt = info.descriptorsOffset + partIndex * 585;
  await expectSifError(t, await patched('offset.sif', (b) => b.writeBigInt64LE(BigInt(whole.length), partAt + 17)), 'corrupt', /ends past the end of the file/);
  await expectSifError(t, await patched('negative.sif', (b) => b.writeBigInt64LE(-1n, partAt + 25)), 'corrupt', /size is -1/);
  await expectSifError(t, await patched('count.sif', (b) => b.writeBigInt64LE(1_000_000n, 88)), 'corrupt', /claims 1000000 descriptors/);
  await expectSifError(t, await patched('free.sif', (b) => b.writeBigInt64LE(49n, 80)), 'corrupt', /49 of 48 descriptors are free/);
  await expectSifError(t, await patched('descoff.sif', (b) => b.writeBigInt64LE(64n, 96)), 'corrupt', /inside the header/);
  await expectSifError(t, await patched('data.sif', (b) => b.writeBigInt64LE(BigInt(whole.length), 120)), 'corrupt', /data section ends past/);
  await expectSifError(t, await patched('version.sif', (b) => b.write('02', 42, 'latin1')), 'unsupported', /format version '02'/);
});
