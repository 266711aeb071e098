/**
 * The seed's sessions, end to end: real SIF images pushed by `sreg push` itself into a test's
 * emulator, then searched, pulled, listed, inspected, shared, removed, as a user runs them
 * (a child process, output piped). Expected values come from the seed text and from the
 * image files themselves (sha256, content_hash, the runscript inside the squashfs), never
 * from `sreg`.
 */
import test from 'ava';
import { stat, writeFile, access } from 'node:fs/promises';
import path from 'node:path';
import { sdk, type Emulator } from '../helpers/emulator.js';
import {
  assertOk,
  assertError,
  banner,
  suiteSifs,
  CONNECTED,
  fileInSif,
  grepTree,
  lines,
  listTree,
  runCli,
  sha256File,
  startCliEmulator,
  storageOf,
  tempDir,
  tempHome,
  type Sif,
} from '../helpers/cli.js';

const SEED_KEYS = ['client', 'collection', 'collection_id', 'created_at', 'id', 'image', 'metrics', 'name', 'tag', 'uri', 'url', 'version'];
const IMAGES_ROW = (uri: string): RegExp => new RegExp(`^\\d+\\s+\\w+ \\d{2}, \\d{4}\\t\\[dropbox\\]\\t${uri.replace(/[/.]/g, '\\$&')}@[0-9a-f]{64}$`);

const img = suiteSifs(test, {
    red: { uri: 'pusheen/asaurus:red' },
    blue: { uri: 'pusheen/asaurus:blue' },
    green: { uri: 'pusheen/asaurus:green' },
    tacos: { uri: 'vsoch/hello-world:tacos' },
    // Three 4 MiB content_hash blocks, over the single-request upload limit: several download chunks, an upload session.
    large: { uri: 'pusheen/large:x', dataMib: 8 },
  });

async function push(emu: Emulator, home: string, sif: Sif, env: Record<string, string> = {}): Promise<void> {
  const r = await runCli(['push', '--name', `dropbox://${sif.uri}`, sif.file], { home, emu, env });
  if (r.code !== 0) throw new Error(`push ${sif.uri} failed (${r.code}): ${r.stderr}`);
}

async function remoteHash(emu: Emulator, uri: string): Promise<string | undefined> {
  const [collection, nameTag] = uri.split('/') as [string, string];
  const r = await sdk(emu).filesGetMetadata({ path: `/${collection}/${nameTag}.simg` });
  return (r.result as { content_hash?: string }).content_hash;
}

test('push prints exactly the seed lines (banner, connected to <name>) and no progress bar when piped', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const r = await runCli(['push', '--name', 'dropbox://pusheen/asaurus:blue', img.blue.file], { home, emu });
  assertOk(t, r);
  t.is(await remoteHash(emu, 'pusheen/asaurus:blue'), img.blue.contentHash, 'the pushed bytes are in Dropbox');
  t.notRegex(r.stdout, /Progress|\r/, 'no progress bar on a pipe');
  t.is(r.stdout, `${banner(home)}\n${CONNECTED}\n`);
});

test('push: the name without dropbox:// and --tag put the image where the seed says', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  assertOk(t, await runCli(['push', '--name', 'pusheen/asaurus:pink', img.red.file], { home, emu }));
  assertOk(t, await runCli(['push', '--name', 'Pusheen/Asaurus', '--tag', 'Purple', img.green.file], { home, emu }));
  t.is(await remoteHash(emu, 'pusheen/asaurus:pink'), img.red.contentHash);
  t.is(await remoteHash(emu, 'pusheen/asaurus:purple'), img.green.contentHash, 'names are lowercased; --tag overrides');
});

test('search lists every image in every collection, with dropbox:// too, and filters by a query', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  for (const s of [img.tacos, img.green, img.red, img.blue]) await push(emu, home, s);
  const all = [img.tacos, img.green, img.red, img.blue].map((s) => s.uri).sort();

  const rows = (stdout: string): string[] => {
    const l = lines(stdout);
    t.is(l[0], banner(home));
    t.is(l[1], CONNECTED);
    t.is(l[2], 'Collections');
    const body = l.slice(3);
    body.forEach((row, i) => t.regex(row, new RegExp(`^${i + 1}  \\S+$`), 'numbered from 1, two spaces'));
    return body.map((row) => row.replace(/^\d+ {2}/, ''));
  };

  const plain = await runCli(['search'], { home, emu });
  assertOk(t, plain);
  t.deepEqual(rows(plain.stdout).sort(), all);

  const uri = await runCli(['search', 'dropbox://'], { home, emu });
  assertOk(t, uri);
  t.is(uri.stdout, plain.stdout, 'dropbox:// alone means all');

  const pusheen = await runCli(['search', 'dropbox://pusheen'], { home, emu });
  assertOk(t, pusheen);
  t.deepEqual(rows(pusheen.stdout).sort(), [img.blue.uri, img.green.uri, img.red.uri].sort());

  const green = await runCli(['search', 'green'], { home, emu });
  assertOk(t, green);
  t.deepEqual(lines(green.stdout).slice(2), ['Collections', '1  pusheen/asaurus:green']);

  const none = await runCli(['search', 'no-such-thing'], { home, emu });
  assertOk(t, none);
  t.notRegex(none.stdout, /^\d+ {2}/m, 'no rows');

});

test('search --json prints the hits as JSON alone (uri, size, version = content_hash)', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const pushed = [img.tacos, img.red];
  for (const s of pushed) await push(emu, home, s);
  const json = await runCli(['search', '--json'], { home, emu });
  assertOk(t, json);
  // The array, wherever it starts (the last check says whether anything comes before it).
  const out = lines(json.stdout);
  const hits = JSON.parse(out.slice(out.findIndex((l) => l === '[')).join('\n')) as { uri: string; version: string; size: number }[];
  t.deepEqual(hits.map((h) => h.uri).sort(), pushed.map((s) => s.uri).sort());
  for (const h of hits) {
    const s = pushed.find((x) => x.uri === h.uri);
    if (!s) {
      t.fail(`${h.uri} was not pushed`);
      continue;
    }
    t.is(h.version, s.contentHash, `${h.uri}: version is the content_hash`);
    t.is(h.size, s.size);
  }
  t.notThrows(() => {
    JSON.parse(json.stdout);
  }, 'stdout is JSON and nothing else (banner lines break `| jq`)');
});

test('the seed session on a second machine: pull, pull again, --force, get, images, inspect, rm', async (t) => {
  const emu = await startCliEmulator(t);
  const laptop = await tempHome(t);
  await push(emu, laptop, img.red);
  await push(emu, laptop, img.blue);
  const home = await tempHome(t);
  const dest = path.join(storageOf(home), 'pusheen-asaurus:red.simg');

  const first = await runCli(['pull', 'dropbox://pusheen/asaurus:red'], { home, emu });
  assertOk(t, first);
  t.is(first.stdout, `${banner(home)}\n${CONNECTED}\n[container][new] pusheen/asaurus:red\nSuccess! ${dest}\n`);
  t.is(await sha256File(dest), img.red.sha256, 'the pulled file is the pushed file');

  const again = await runCli(['pull', 'dropbox://pusheen/asaurus:red'], { home, emu });
  t.not(again.code, 0);
  t.is(again.stderr, 'ERROR Image exists! Remove first, or use --force to overwrite\n');
  t.is(again.stdout, `${banner(home)}\n${CONNECTED}\n`);

  const forced = await runCli(['pull', '--force', 'dropbox://pusheen/asaurus:red'], { home, emu });
  assertOk(t, forced);
  t.is(forced.stdout, `${banner(home)}\n${CONNECTED}\n[container][update] pusheen/asaurus:red\nSuccess! ${dest}\n`);
  t.is(await sha256File(dest), img.red.sha256);
  t.deepEqual(await listTree(storageOf(home)), ['pusheen-asaurus:red.simg'], 'nothing else in storage');

  const get = await runCli(['get', 'pusheen/asaurus:red'], { home, emu });
  assertOk(t, get);
  t.is(get.stdout, `${dest}\n`);

  const images = await runCli(['images'], { home, emu });
  assertOk(t, images);
  const rows = lines(images.stdout).filter((l) => l.includes('[dropbox]'));
  t.is(rows.length, 1, images.stdout);
  t.regex(rows[0] ?? '', IMAGES_ROW('pusheen/asaurus:red'));
  t.true(rows[0]?.endsWith(`@${img.red.contentHash}`), 'the version is the content_hash');

  const imagesJson = await runCli(['images', '--json'], { home, emu });
  assertOk(t, imagesJson);
  const list = JSON.parse(imagesJson.stdout) as { uri: string; image: string; version: string }[];
  t.is(list.length, 1);
  t.like(list[0], { uri: 'pusheen/asaurus:red', image: dest, version: img.red.contentHash });

  const inspect = await runCli(['inspect', 'pusheen/asaurus:red'], { home, emu });
  assertOk(t, inspect);
  const il = lines(inspect.stdout);
  t.is(il[0], 'pusheen/asaurus:red');
  t.is(il[1], dest);
  t.is(il[2], '{');
  t.regex(il[3] ?? '', /^ {4}"client": "dropbox",$/, '4-space indent');
  const rec = JSON.parse(il.slice(2).join('\n')) as Record<string, any>;
  t.deepEqual(Object.keys(rec), SEED_KEYS, 'the seed keys, sorted');
  t.like(rec, { client: 'dropbox', collection: 'pusheen', name: 'asaurus', tag: 'red', uri: 'pusheen/asaurus:red', image: dest, version: img.red.contentHash });
  t.regex(String(rec.created_at), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
  t.is(rec.metrics.data.type, 'container');
  t.is(rec.metrics.data.attributes.runscript, await fileInSif(img.red.file, '.singularity.d/runscript'), 'the runscript inside the image');
  t.like(rec.metrics, { collection: 'pusheen', image: 'asaurus', storage: 'pusheen/asaurus:red.simg', tag: 'red', uri: 'pusheen/asaurus:red', url: 'pusheen/asaurus' });

  const inspectJson = await runCli(['inspect', '--json', 'pusheen/asaurus:red'], { home, emu });
  assertOk(t, inspectJson);
  t.deepEqual(JSON.parse(inspectJson.stdout), rec);

  const rmr = await runCli(['rm', 'pusheen/asaurus:red'], { home, emu });
  assertOk(t, rmr);
  await t.throwsAsync(access(dest), undefined, 'the file is gone');
  assertError(t, await runCli(['get', 'pusheen/asaurus:red'], { home, emu }), 3, /pusheen\/asaurus:red/);
  const after = await runCli(['images'], { home, emu });
  t.notRegex(after.stdout, /pusheen\/asaurus:red/, 'the record is gone');
  t.is(await remoteHash(emu, 'pusheen/asaurus:red'), img.red.contentHash, 'rm leaves Dropbox alone');
});

test('seed: the first pull after `sreg push` on the same machine says [container][new]', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await push(emu, home, img.red);
  const dest = path.join(storageOf(home), 'pusheen-asaurus:red.simg');
  const r = await runCli(['pull', 'dropbox://pusheen/asaurus:red'], { home, emu });
  assertOk(t, r);
  t.is(await sha256File(dest), img.red.sha256);
  t.is(r.stdout, `${banner(home)}\n${CONNECTED}\n[container][new] pusheen/asaurus:red\nSuccess! ${dest}\n`);
});

test('share prints the uri, the banner and a link; the same link the second time; --quiet prints the link alone', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await push(emu, home, img.green);

  const r = await runCli(['share', 'pusheen/asaurus:green'], { home, emu });
  assertOk(t, r);
  const l = lines(r.stdout);
  t.deepEqual(l.slice(0, 3), ['pusheen/asaurus:green', banner(home), CONNECTED]);
  t.is(l.length, 4, r.stdout);
  const url = l[3] ?? '';
  t.regex(url, /^https:\/\/\S+$/);

  const links = (await sdk(emu).sharingListSharedLinks({ path: '/pusheen/asaurus:green.simg', direct_only: true })).result.links;
  t.deepEqual(links.map((x) => x.url), [url], 'that link exists in Dropbox, for that file');

  const second = await runCli(['share', 'dropbox://pusheen/asaurus:green'], { home, emu });
  assertOk(t, second);
  t.is(lines(second.stdout)[3], url, 'the existing link');

  const quiet = await runCli(['--quiet', 'share', 'pusheen/asaurus:green'], { home, emu });
  assertOk(t, quiet);
  t.is(quiet.stdout, `${url}\n`);
});

test('add records a local image: copied into storage, listed, get prints its path', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const r = await runCli(['add', img.tacos.file, '--name', 'x/y:z'], { home, emu });
  assertOk(t, r);
  const dest = path.join(storageOf(home), 'x-y:z.simg');
  t.is(await sha256File(dest), img.tacos.sha256);
  t.is(await sha256File(img.tacos.file), img.tacos.sha256, 'the original is left alone');

  const get = await runCli(['get', 'x/y:z'], { home, emu });
  assertOk(t, get);
  t.is(get.stdout, `${dest}\n`);

  const images = await runCli(['images'], { home, emu });
  assertOk(t, images);
  const rows = lines(images.stdout).filter((x) => /\t\[dropbox\]\t/.test(x));
  t.is(rows.length, 1);
  t.regex(rows[0] ?? '', IMAGES_ROW('x/y:z'));
  t.true(rows[0]?.endsWith(`@${img.tacos.contentHash}`));

  const inspect = await runCli(['inspect', '--json', 'x/y:z'], { home, emu });
  assertOk(t, inspect);
  const rec = JSON.parse(inspect.stdout) as Record<string, any>;
  t.is(rec.image, dest);
  t.is(rec.metrics.data.attributes.runscript, await fileInSif(img.tacos.file, '.singularity.d/runscript'));
});

test('SREGISTRY_STORAGE and SREGISTRY_DATABASE move the images and the database', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const elsewhere = await tempDir(t);
  const env = { SREGISTRY_STORAGE: path.join(elsewhere, 'images'), SREGISTRY_DATABASE: path.join(elsewhere, 'db') };
  await push(emu, home, img.red, env);

  const r = await runCli(['pull', 'pusheen/asaurus:red'], { home, emu, env });
  assertOk(t, r);
  const dest = path.join(elsewhere, 'images', 'pusheen-asaurus:red.simg');
  t.is(lines(r.stdout)[0], `[client|dropbox] [database|sqlite:///${path.join(elsewhere, 'db', 'sregistry.db')}]`);
  t.is(lines(r.stdout).at(-1), `Success! ${dest}`);
  t.is(await sha256File(dest), img.red.sha256);
  t.true((await stat(path.join(elsewhere, 'db', 'sregistry.db'))).isFile());
  t.deepEqual((await listTree(home)).filter((f) => /sregistry\.db|\.simg$/.test(f)), [], 'neither the db nor the image under HOME');

  const get = await runCli(['get', 'pusheen/asaurus:red'], { home, emu, env });
  assertOk(t, get);
  t.is(get.stdout, `${dest}\n`);
  assertError(t, await runCli(['get', 'pusheen/asaurus:red'], { home, emu }), 3, /not in the local database/);
});

for (const threads of ['1', '9']) {
  test(`SREGISTRY_PYTHON_THREADS=${threads}: a multi-block image pulls intact`, async (t) => {
    const emu = await startCliEmulator(t);
    const home = await tempHome(t);
    await push(emu, home, img.large, { SREGISTRY_PYTHON_THREADS: threads });
    t.is(await remoteHash(emu, img.large.uri), img.large.contentHash, 'pushed intact');
    const r = await runCli(['pull', '--force', img.large.uri], { home, emu, env: { SREGISTRY_PYTHON_THREADS: threads } });
    assertOk(t, r);
    const dest = path.join(storageOf(home), 'pusheen-large:x.simg');
    t.is(await sha256File(dest), img.large.sha256);
    t.deepEqual(await listTree(storageOf(home)), ['pusheen-large:x.simg']);
  });
}

test('a token only in ~/.sregistry works; a token in the environment wins over the file', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  const secrets = path.join(home, '.sregistry');
  const writeToken = (token: string): Promise<void> => writeFile(secrets, JSON.stringify({ dropbox: { SREGISTRY_DROPBOX_TOKEN: token } }), { mode: 0o600 });

  await writeToken(emu.token);
  const fileOnly = await runCli(['search'], { home, emu, token: null });
  assertOk(t, fileOnly);
  t.is(lines(fileOnly.stdout)[1], CONNECTED);

  await writeToken('wrong-token-in-file');
  assertOk(t, await runCli(['search'], { home, emu }));

  await writeToken(emu.token);
  assertError(t, await runCli(['search'], { home, emu, token: 'wrong-token-in-env' }), 4, /SREGISTRY_DROPBOX_TOKEN/);
});

test('a token from the environment is never written anywhere under HOME', async (t) => {
  const emu = await startCliEmulator(t);
  const home = await tempHome(t);
  await push(emu, home, img.red);
  for (const args of [
    ['search'],
    ['pull', 'pusheen/asaurus:red'],
    ['images'],
    ['inspect', 'pusheen/asaurus:red'],
    ['share', 'pusheen/asaurus:red'],
    ['backend', 'activate', 'dropbox'],
    ['backend', 'status'],
    ['add', img.blue.file, '--name', 'pusheen/asaurus:blue'],
  ]) {
    assertOk(t, await runCli(args, { home, emu }));
  }
  t.true((await listTree(home)).length >= 3, 'the commands did write under HOME (db, image, secrets)');
  t.true((await grepTree(home, 'pusheen/asaurus:red')).length > 0, 'the grep does see inside the files (the database)');
  t.deepEqual(await grepTree(home, emu.token), []);
});
