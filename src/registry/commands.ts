/**
 * The registry commands' logic (push, pull, search, images, inspect, get, share, rm, add),
 * over a connected Dropbox client and the local sregistry.db. Printing goes through the
 * Reporter; nothing here parses argv or exits.
 */
import { copyFile, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { inspectFields, inspectJson, formatImagesLine, IMAGES_HEADER, type ContainerRecord, type RegistryDb } from '../catalog/index.js';
import { blockDigests, combineBlockDigests } from '../dropbox/content-hash.js';
import type { DropboxClient, FileMeta } from '../dropbox/client.js';
import { localError } from '../dropbox/errors.js';
import { inspectImage } from '../sif/index.js';
import { exists, notFound, UsageError } from './errors.js';
import { removeStalePartials } from './partials.js';
import { DOWNLOAD_URL, formatUri, parseImageUri, pickImages, remotePath, storageFileName, type ImageName, type RemoteExtension } from './names.js';

export { DOWNLOAD_URL };

export interface Reporter {
  readonly quiet: boolean;
  info(line: string): void;
  result(line: string): void;
  debug(line: string): void;
  warn(line: string): void;
  progress(totalBytes: number): { add(n: number): void; done(): void };
}

export interface RegistryContext {
  readonly out: Reporter;
  /** imageExtension: what a new image is named with in Dropbox (SREGISTRY_DROPBOX_EXTENSION). */
  readonly config: { readonly storageDir: string; readonly imageExtension: RemoteExtension };
  db(): RegistryDb;
  banner(): void;
  client(): Promise<DropboxClient>;
}

/**
 * The remote file holding an image: `name:tag` under the preferred extension (the configured
 * one), else any file `search` would show for it (`name:tag` under the other extension, or
 * `name.simg` for `:latest`). So when a tag exists as both `.simg` and `.sif`, the one under
 * SREGISTRY_DROPBOX_EXTENSION is read, shared and replaced.
 */
export async function findRemote(client: DropboxClient, n: ImageName, prefer: RemoteExtension = '.simg'): Promise<FileMeta | undefined> {
  const direct = await client.getMetadata(remotePath(n, prefer));
  let found: FileMeta | undefined = direct?.kind === 'file' ? direct : undefined;
  if (!found) {
    const folder = await client.getMetadata(`/${n.collection}`);
    if (folder?.kind !== 'folder') return undefined;
    const { entries } = await client.listAll(`/${n.collection}`, false);
    const files = new Map(entries.filter((e): e is FileMeta => e.kind === 'file').map((e) => [e.pathDisplay, e]));
    const pick = pickImages([...files.keys()]).find((p) => formatUri(p.image) === formatUri({ ...n, version: undefined }));
    found = pick && files.get(pick.path);
  }
  if (found && n.version && n.version !== found.contentHash) {
    throw notFound(`${formatUri(n)} is not in Dropbox: its current version is ${found.contentHash}`);
  }
  return found;
}

async function mustFindRemote(client: DropboxClient, n: ImageName, prefer: RemoteExtension): Promise<FileMeta> {
  const found = await findRemote(client, n, prefer);
  if (!found) throw notFound(`${formatUri(n)} was not found in Dropbox ('sreg search ${n.collection}' lists what is there)`);
  return found;
}

/** Metrics as the Python client records them for an image (attributes from the SIF, if any). */
async function metricsFor(out: Reporter, n: ImageName, file: string | undefined, remote: string): Promise<Record<string, unknown>> {
  let attributes: unknown = null;
  if (file) {
    try {
      attributes = await inspectImage(file);
    } catch (e) {
      out.debug(`no SIF attributes for ${file}: ${(e as Error).message}`);
    }
  }
  return {
    collection: n.collection,
    data: { attributes, type: 'container' },
    image: n.name,
    storage: `${n.collection}/${n.name}:${n.tag}${remote.endsWith('.sif') ? '.sif' : '.simg'}`,
    tag: n.tag,
    uri: `${n.collection}/${n.name}:${n.tag}`,
    url: `${n.collection}/${n.name}`,
    version: null,
  };
}

/** A file we are about to push: it must exist, be a regular readable file, and not be empty. */
async function checkPushable(file: string): Promise<number> {
  let st;
  try {
    st = await stat(file);
  } catch (e) {
    throw new UsageError(`cannot push ${file}: ${(e as { code?: string }).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (st.isDirectory()) throw new UsageError(`cannot push ${file}: it is a folder; give the path of the image file`);
  if (!st.isFile()) throw new UsageError(`cannot push ${file}: it is not a regular file`);
  if (st.size === 0) throw new UsageError(`cannot push ${file}: it is empty (0 bytes); build the image first`);
  try {
    await (await open(file, 'r')).close();
  } catch (e) {
    throw new UsageError(`cannot push ${file}: ${(e as { code?: string }).code === 'EACCES' ? 'permission denied (it is not readable)' : (e as Error).message}`);
  }
  return st.size;
}

export async function push(ctx: RegistryContext, file: string, name: string, o: { tag?: string; force?: boolean }): Promise<FileMeta> {
  let n = parseImageUri(name);
  if (o.tag !== undefined) n = { ...n, tag: parseImageUri(`${n.collection}/${n.name}:${o.tag}`).tag };
  const size = await checkPushable(file);
  const client = await ctx.client();
  // A new image gets the configured extension; an existing one is replaced where it is.
  const there = await findRemote(client, { ...n, version: undefined }, ctx.config.imageExtension);
  if (there && !o.force) throw exists(`${formatUri(n)} already exists in Dropbox (${there.pathDisplay}): use --force to replace it`);
  const target = there?.pathDisplay ?? remotePath(n, ctx.config.imageExtension);
  const bar = ctx.out.progress(size);
  const meta = await client.upload(file, size, { path: target, mode: o.force ? 'overwrite' : 'add' }, { onBytes: (b) => bar.add(b) });
  bar.done();
  const metrics = await metricsFor(ctx.out, n, file, meta.pathDisplay);
  ctx.db().upsertContainer({ n, image: null, url: DOWNLOAD_URL, metrics, version: meta.contentHash });
  ctx.out.debug(`pushed ${formatUri(n)}@${meta.contentHash} to ${meta.pathDisplay}`);
  return meta;
}

/** Removes what killed pulls left in `dir` (partials.ts), and says so. */
async function cleanPartials(ctx: RegistryContext, dir: string): Promise<void> {
  const gone = await removeStalePartials(dir);
  if (gone.length > 0) ctx.out.debug(`removed ${gone.length} partial download(s) left by killed runs in ${dir}`);
}

export async function pull(ctx: RegistryContext, uri: string, o: { force?: boolean; name?: string }): Promise<string> {
  const n = parseImageUri(uri);
  const dest = path.resolve(o.name ?? path.join(ctx.config.storageDir, storageFileName(n)));
  await cleanPartials(ctx, path.dirname(dest));
  const client = await ctx.client();
  const remote = await mustFindRemote(client, n, ctx.config.imageExtension);
  if (!o.force && (await stat(dest).then(() => true, () => false))) {
    throw exists('Image exists! Remove first, or use --force to overwrite');
  }
  const bar = ctx.out.progress(remote.size);
  const meta = await client.download(remote.pathDisplay, dest, { onBytes: (b) => bar.add(b) });
  bar.done();
  const metrics = await metricsFor(ctx.out, n, dest, meta.pathDisplay);
  // A record left by push (remote only, no local file) becoming local is a new container here.
  const hadLocal = ctx.db().getContainer(n)?.image != null;
  const { record } = ctx.db().upsertContainer({ n, image: dest, url: DOWNLOAD_URL, metrics, version: meta.contentHash });
  ctx.out.info(`[container][${hadLocal ? 'update' : 'new'}] ${formatUri(n)}`);
  ctx.out.result(`Success! ${record.image ?? dest}`);
  return dest;
}

export interface SearchHit {
  uri: string;
  path: string;
  size: number;
  version: string;
  modified: string;
}

export async function search(ctx: RegistryContext, query: string | undefined, o: { json?: boolean }): Promise<SearchHit[]> {
  const q = (query ?? '').replace(/^dropbox:\/\//, '').toLowerCase();
  const client = await ctx.client();
  const { entries } = await client.listAll('', true);
  const files = new Map(entries.filter((e): e is FileMeta => e.kind === 'file').map((e) => [e.pathDisplay, e]));
  const hits = pickImages([...files.keys()])
    .map((p) => ({ uri: formatUri(p.image), meta: files.get(p.path)! }))
    .filter((h) => h.uri.includes(q))
    .map((h) => ({ uri: h.uri, path: h.meta.pathDisplay, size: h.meta.size, version: h.meta.contentHash, modified: h.meta.serverModified }));
  if (o.json) {
    ctx.out.result(JSON.stringify(hits, null, 2));
  } else if (hits.length === 0) {
    ctx.out.info('No container collections found.');
  } else {
    ctx.out.info('Collections');
    hits.forEach((h, i) => ctx.out.result(`${i + 1}  ${h.uri}`));
  }
  return hits;
}

export function images(ctx: RegistryContext, query: string | undefined, o: { json?: boolean }): ContainerRecord[] {
  const rows = ctx.db().listContainers(query?.replace(/^dropbox:\/\//, ''));
  if (o.json) ctx.out.result(JSON.stringify(rows.map(inspectFields), null, 2));
  else {
    ctx.out.info(IMAGES_HEADER);
    rows.forEach((r, i) => ctx.out.result(formatImagesLine(r, i + 1)));
  }
  return rows;
}

function mustGetRecord(ctx: RegistryContext, uri: string): ContainerRecord {
  const n = parseImageUri(uri);
  const rec = ctx.db().getContainer(n);
  if (!rec) throw notFound(`${formatUri(n)} is not in the local database ('sreg images' lists what is; 'sreg pull' adds an image)`);
  return rec;
}

export function inspect(ctx: RegistryContext, uri: string, o: { json?: boolean }): ContainerRecord {
  const rec = mustGetRecord(ctx, uri);
  if (!o.json) {
    ctx.out.info(formatUri(parseImageUri(uri)));
    ctx.out.info(rec.image ?? '');
  }
  ctx.out.result(inspectJson(rec));
  return rec;
}

export function get(ctx: RegistryContext, uri: string): string {
  const rec = mustGetRecord(ctx, uri);
  const where = rec.image ?? rec.url ?? '';
  ctx.out.result(where);
  return where;
}

export async function share(ctx: RegistryContext, uri: string): Promise<string> {
  const n = parseImageUri(uri);
  ctx.out.info(formatUri(n));
  const client = await ctx.client();
  const remote = await mustFindRemote(client, n, ctx.config.imageExtension);
  const url = await client.shareLink(remote.pathDisplay);
  ctx.out.result(url);
  return url;
}

export async function rm(ctx: RegistryContext, uri: string): Promise<void> {
  const rec = mustGetRecord(ctx, uri);
  ctx.db().removeContainer(parseImageUri(uri));
  if (rec.image) {
    await unlink(rec.image).catch((e: { code?: string }) => {
      if (e.code !== 'ENOENT') ctx.out.warn(`the record is gone, but ${rec.image} could not be removed: ${(e as Error).message}`);
    });
  }
  ctx.out.info(`[rm] ${formatUri(parseImageUri(uri))}`);
}

/** Records a local image: copied into storage (the original is left alone), version = its content_hash. */
export async function add(ctx: RegistryContext, file: string, uri: string, o: { force?: boolean }): Promise<string> {
  const n = parseImageUri(uri);
  const size = await checkPushable(file).catch((e: Error) => Promise.reject(new UsageError(e.message.replace('cannot push', 'cannot add'))));
  const dest = path.join(ctx.config.storageDir, storageFileName(n));
  if (!o.force && path.resolve(file) !== dest && (await stat(dest).then(() => true, () => false))) {
    throw exists('Image exists! Remove first, or use --force to overwrite');
  }
  if (path.resolve(file) !== dest) {
    await cleanPartials(ctx, ctx.config.storageDir);
    const tmp = path.join(ctx.config.storageDir, `.${storageFileName(n)}.sreg-partial-${randomBytes(4).toString('hex')}`);
    try {
      await mkdir(ctx.config.storageDir, { recursive: true });
      await copyFile(file, tmp);
      await rename(tmp, dest);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw localError('copy the image into', ctx.config.storageDir, e);
    }
  }
  const version = combineBlockDigests(await blockDigests(dest, 0, size));
  const metrics = await metricsFor(ctx.out, n, dest, remotePath(n, ctx.config.imageExtension));
  const { action } = ctx.db().upsertContainer({ n, image: dest, url: '', metrics, version });
  ctx.out.info(`[container][${action}] ${formatUri(n)}`);
  ctx.out.result(dest);
  return dest;
}
