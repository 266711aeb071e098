/**
 * Image names: what parseImageUri accepts (the Python client's parse_image_name results for the
 * same strings, sregistry-cli utils/names.py) and what it refuses; the Dropbox and storage
 * layouts of the seed; remote paths and duplicate resolution.
 */
import test from 'ava';
import path from 'node:path';
import {
  NameError,
  formatUri,
  imageFromRemotePath,
  parseImageUri,
  pickImages,
  remotePath,
  storageFileName,
  type ImageName,
} from '../../src/registry/index.js';

const accepted: [string, ImageName][] = [
  ['pusheen/asaurus:red', { collection: 'pusheen', name: 'asaurus', tag: 'red' }],
  ['dropbox://pusheen/asaurus:red', { collection: 'pusheen', name: 'asaurus', tag: 'red' }],
  ['DROPBOX://Pusheen/Asaurus:RED', { collection: 'pusheen', name: 'asaurus', tag: 'red' }],
  ['asaurus', { collection: 'library', name: 'asaurus', tag: 'latest' }],
  ['vsoch/hello-world', { collection: 'vsoch', name: 'hello-world', tag: 'latest' }],
  ['vsoch/hello-world:tacos', { collection: 'vsoch', name: 'hello-world', tag: 'tacos' }],
  [
    'pusheen/asaurus:blue@02C08A25C8F4697E16E896239E549A2B',
    { collection: 'pusheen', name: 'asaurus', tag: 'blue', version: '02c08a25c8f4697e16e896239e549a2b' },
  ],
  ['asaurus@abc', { collection: 'library', name: 'asaurus', tag: 'latest', version: 'abc' }],
  ['library-busybox-latest.simg', { collection: 'library', name: 'library-busybox-latest', tag: 'latest' }],
  ['pusheen/asaurus:red.sif', { collection: 'pusheen', name: 'asaurus', tag: 'red' }],
  ['pusheen/asaurus:red.img', { collection: 'pusheen', name: 'asaurus', tag: 'red' }],
  ['pusheen/asaurus:red.SIMG', { collection: 'pusheen', name: 'asaurus', tag: 'red' }],
  ['vsoch/image.simg', { collection: 'vsoch', name: 'image', tag: 'latest' }],
  ['tools:1.0.2', { collection: 'library', name: 'tools', tag: '1.0.2' }],
  ['my_lab/tools-v2:Release_1', { collection: 'my_lab', name: 'tools-v2', tag: 'release_1' }],
  // Python reads `my.lab` as a registry host here (→ library/tools); sreg keeps it the collection.
  ['my.lab/tools', { collection: 'my.lab', name: 'tools', tag: 'latest' }],
  ['.hidden/...:x', { collection: '.hidden', name: '...', tag: 'x' }],
  ['Café/Crème:Brûlée', { collection: 'café', name: 'crème', tag: 'brûlée' }],
];

for (const [input, expected] of accepted) {
  test(`parseImageUri accepts ${JSON.stringify(input)}`, (t) => {
    t.deepEqual(parseImageUri(input), expected);
  });
}

const refused: [string, RegExp][] = [
  ['', /is empty/],
  ['dropbox://', /is empty/],
  ['a/b/c/d', /use collection\/name:tag \(collection and tag are optional\)$/],
  ['a/b/c', /use collection\/name:tag/],
  ['pusheen/:x', /the name is empty/],
  ['pusheen/asaurus:', /the tag is empty/],
  ['/asaurus', /the collection is empty/],
  ['pusheen/', /the name is empty/],
  ['pusheen/asaurus@', /the version is empty/],
  ['pusheen/asaurus@v1@v2', /the version 'v1@v2' contains/],
  ['pusheen/asaurus:a:b', /more than one ':'/],
  ['../asaurus', /'\.\.' cannot be a collection/],
  ['./asaurus', /'\.' cannot be a collection/],
  ['pusheen/..', /'\.\.' cannot be a name/],
  ['pusheen/..:red', /'\.\.' cannot be a name/],
  ['pusheen/asaurus:..', /'\.\.' cannot be a tag/],
  ['pusheen/asaurus:.', /'\.' cannot be a tag/],
  ['pusheen/asaurus@..', /'\.\.' cannot be a version/],
  ['pusheen/as aurus', /whitespace or a control character/],
  ['pusheen/asaurus\t', /whitespace or a control character/],
  ['pusheen/asaurus\n', /whitespace or a control character/],
  ['pusheen/asa\u0000urus', /whitespace or a control character/],
  ['pusheen/asa\u001burus', /whitespace or a control character/],
  ['pusheen/asa\u0085urus', /whitespace or a control character/],
  ['pusheen/asa\u2028urus', /whitespace or a control character/],
  ['pusheen\\x/asaurus', /contains ':', '@', '\/' or '\\'/],
  ['docker://pusheen/asaurus', /only dropbox:\/\/ URIs/],
  ['shub://pusheen/asaurus', /only dropbox:\/\/ URIs/],
  ['.simg', /the name is empty/],
  [`c/${'n'.repeat(250)}:t`, /too long for a file name/],
  [`${'c'.repeat(151)}/n:t`, /collection is longer than 150/],
  [`c/n:t@${'v'.repeat(251)}`, /version is longer than 250/],
];

for (const [input, message] of refused) {
  test(`parseImageUri refuses ${JSON.stringify(input)}`, (t) => {
    const err = t.throws(() => parseImageUri(input), { instanceOf: NameError });
    t.is(err?.code, 'bad_name');
    t.true(err?.message.startsWith(`'${input}' is not an image name: `), err?.message);
    t.regex(err?.message ?? '', message);
  });
}

test('the brief\'s example message, exactly', (t) => {
  t.throws(() => parseImageUri('a/b/c/d'), {
    message: "'a/b/c/d' is not an image name: use collection/name:tag (collection and tag are optional)",
  });
});

test('formatUri: collection/name:tag, @version only when there is one; parse(format(n)) is n', (t) => {
  t.is(formatUri({ collection: 'pusheen', name: 'asaurus', tag: 'red' }), 'pusheen/asaurus:red');
  t.is(formatUri({ collection: 'pusheen', name: 'asaurus', tag: 'red', version: '' }), 'pusheen/asaurus:red');
  t.is(
    formatUri({ collection: 'pusheen', name: 'asaurus', tag: 'blue', version: '02c08a25c8f4697e16e896239e549a2b' }),
    'pusheen/asaurus:blue@02c08a25c8f4697e16e896239e549a2b',
  );
  for (const [, n] of accepted) t.deepEqual(parseImageUri(formatUri(n)), n);
});

test('remotePath and storageFileName follow the seed\'s layout', (t) => {
  const red = parseImageUri('dropbox://pusheen/asaurus:red');
  t.is(remotePath(red), '/pusheen/asaurus:red.simg');
  t.is(remotePath(red, '.sif'), '/pusheen/asaurus:red.sif');
  t.is(remotePath(parseImageUri('pusheen/asaurus:red@abc')), '/pusheen/asaurus:red.simg', 'the version is not in the path');
  // Seed: "Success! /home/vanessa/.singularity/shub/pusheen-asaurus:red.simg"
  t.is(storageFileName(red), 'pusheen-asaurus:red.simg');
  t.is(storageFileName(parseImageUri('asaurus')), 'library-asaurus:latest.simg');
});

test('imageFromRemotePath reads /c/n:t.simg, /c/n:t.sif and tag-less /c/n.simg', (t) => {
  t.deepEqual(imageFromRemotePath('/pusheen/asaurus:red.simg'), { collection: 'pusheen', name: 'asaurus', tag: 'red' });
  t.deepEqual(imageFromRemotePath('/pusheen/asaurus:red.sif'), { collection: 'pusheen', name: 'asaurus', tag: 'red' });
  t.deepEqual(imageFromRemotePath('/vsoch/image.simg'), { collection: 'vsoch', name: 'image', tag: 'latest' });
  t.deepEqual(imageFromRemotePath('/Vsoch/Hello-World:Tacos.SIMG'), { collection: 'vsoch', name: 'hello-world', tag: 'tacos' });
  for (const p of [
    '/pusheen/asaurus:red.img',
    '/pusheen/asaurus:red',
    '/pusheen/asaurus:red.simg.part',
    '/asaurus:red.simg',
    '/a/b/asaurus:red.simg',
    'pusheen/asaurus:red.simg',
    '/pusheen/:red.simg',
    '/pusheen/asaurus:.simg',
    '/pusheen/a:b:c.simg',
    '/pusheen/asaurus:red@v.simg',
    '/pusheen/.simg',
    '/../asaurus:red.simg',
    '/pusheen/as aurus.simg',
    '',
    '/',
  ]) {
    t.is(imageFromRemotePath(p), undefined, p);
  }
});

test('pickImages: name:latest beats name (either order), .simg beats .sif, the rest are skipped', (t) => {
  const picked = pickImages([
    '/vsoch/image.simg',
    '/vsoch/image:latest.simg',
    '/pusheen/asaurus:red.sif',
    '/pusheen/asaurus:red.simg',
    '/pusheen/asaurus:blue.simg',
    '/pusheen/asaurus:blue.sif',
    '/pusheen/notes.txt',
    '/top-level.simg',
    '/x/y:latest.sif',
    '/x/y.simg',
    '/x/only-sif.sif',
  ]);
  t.deepEqual(
    picked.map((p) => [formatUri(p.image), p.path]),
    [
      ['vsoch/image:latest', '/vsoch/image:latest.simg'],
      ['pusheen/asaurus:red', '/pusheen/asaurus:red.simg'],
      ['pusheen/asaurus:blue', '/pusheen/asaurus:blue.simg'],
      ['x/y:latest', '/x/y:latest.sif'],
      ['x/only-sif:latest', '/x/only-sif.sif'],
    ],
  );
  // The same set in reverse order picks the same files.
  const reversed = pickImages([
    '/x/only-sif.sif', '/x/y.simg', '/x/y:latest.sif', '/pusheen/asaurus:blue.sif', '/pusheen/asaurus:blue.simg',
    '/pusheen/asaurus:red.simg', '/pusheen/asaurus:red.sif', '/vsoch/image:latest.simg', '/vsoch/image.simg',
  ]);
  const sorted = (list: { image: ImageName; path: string }[]): string[] => list.map((p) => `${formatUri(p.image)} ${p.path}`).sort();
  t.deepEqual(sorted(reversed), sorted(picked));
});

test('whatever parseImageUri accepts maps to a path two levels under the app folder root', (t) => {
  // Deterministic pseudo-random strings over an alphabet heavy in separators and dots.
  const alphabet = ['a', 'B', '0', '.', '..', '/', ':', '@', '\\', ' ', '\t', '\0', '-', '_', '%', 'é', 'dropbox://', '.simg'];
  let seed = 42;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  let accepted = 0;
  for (let i = 0; i < 5000; i++) {
    let s = '';
    const len = next() % 9;
    for (let j = 0; j < len; j++) s += alphabet[next() % alphabet.length] ?? '';
    let n: ImageName;
    try {
      n = parseImageUri(s);
    } catch (err) {
      t.true(err instanceof NameError, `${JSON.stringify(s)} threw ${String(err)}`);
      continue;
    }
    accepted++;
    const remote = remotePath(n);
    t.is(path.posix.normalize(remote), remote, JSON.stringify(s));
    t.is(remote.split('/').length, 3, JSON.stringify(s));
    t.false(storageFileName(n).includes('/'), JSON.stringify(s));
    for (const part of [n.collection, n.name, n.tag, n.version ?? 'x']) {
      t.false(/[/:@\\\s\0]/.test(part) || part === '.' || part === '..' || part === '', `${JSON.stringify(s)} → ${JSON.stringify(n)}`);
    }
    t.deepEqual(imageFromRemotePath(remote), { collection: n.collection, name: n.name, tag: n.tag });
  }
  t.true(accepted > 100, `only ${accepted} accepted`);
});
