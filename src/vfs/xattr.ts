/**
 * The `user.sregistry.*` extended attributes of images: uri, version, content_hash, inspect
 * (the JSON of `sreg inspect`), and share_url. Reading share_url by name creates the shared
 * link or fetches the existing one; listing (and so `getfattr -d`) names share_url only when
 * a link is already known to exist, so dumping never makes an image public. Removing it
 * revokes the link(s).
 */
import { formatUri, imageFromRemotePath } from '../registry/names.js';
import { VfsError } from './errors.js';
import type { EntryInfo } from './ports.js';
import type { VfsOptions } from './types.js';

export const XATTR = {
  uri: 'user.sregistry.uri',
  version: 'user.sregistry.version',
  contentHash: 'user.sregistry.content_hash',
  inspect: 'user.sregistry.inspect',
  shareUrl: 'user.sregistry.share_url',
} as const;

/** The key of the link cache: one revision of one file. */
const linkKey = (e: EntryInfo): string => `${e.id ?? ''}@${e.rev ?? ''}`;

const noData = (p: string, name: string): VfsError => new VfsError('ENODATA', `${p} has no attribute ${name}`);

export class XattrSupport {
  /**
   * File id + revision → the shared link we know exists (from reading share_url in this
   * mount). Not keyed by path: a file removed and uploaded again under its name is another
   * file (another id) and must not show the dead link of the old one.
   */
  private readonly links = new Map<string, string>();

  constructor(
    private readonly o: Pick<VfsOptions, 'remote' | 'inspectJson' | 'catalog'>,
    private readonly lookup: (fusePath: string) => EntryInfo | undefined,
  ) {}

  private entry(fusePath: string): EntryInfo {
    const e = this.lookup(fusePath);
    if (!e) throw new VfsError('ENOENT', `${fusePath}: no such file or folder`);
    return e;
  }

  /** Names this file has (no network). sync */
  list(fusePath: string): string[] {
    const e = this.entry(fusePath);
    if (e.isFolder) return [];
    const names: string[] = [];
    if (imageFromRemotePath(e.pathDisplay)) names.push(XATTR.uri);
    if (this.uploaded(e)) {
      names.push(XATTR.version, XATTR.contentHash);
      if (imageFromRemotePath(e.pathDisplay)) names.push(XATTR.inspect);
      if (this.links.has(linkKey(e))) names.push(XATTR.shareUrl);
    }
    return names;
  }

  /** In Dropbox already (not only written locally)? */
  private uploaded(e: EntryInfo): boolean {
    const remote = this.o.catalog.lookup(e.pathLower);
    return remote !== undefined && remote.rev === e.rev && e.contentHash !== undefined;
  }

  async get(fusePath: string, name: string): Promise<Buffer> {
    const e = this.entry(fusePath);
    // No SELinux labels, no POSIX ACLs here: ENOTSUP (not ENODATA) tells `ls -l` so once per
    // mount, where ENODATA had it ask again for every file (20,000 calls for `ls -lR` of 10,000).
    if (!name.startsWith('user.')) throw new VfsError('ENOTSUP', `${fusePath}: ${name}: this filesystem has only user.* attributes`);
    if (e.isFolder) throw noData(fusePath, name);
    const image = imageFromRemotePath(e.pathDisplay);
    switch (name) {
      case XATTR.uri:
        if (!image) throw noData(fusePath, name);
        return Buffer.from(formatUri(image));
      case XATTR.version:
      case XATTR.contentHash:
        if (!this.uploaded(e)) throw noData(fusePath, name);
        return Buffer.from(e.contentHash!);
      case XATTR.inspect: {
        const json = image && this.uploaded(e) ? this.o.inspectJson(e) : undefined;
        if (json === undefined) throw noData(fusePath, name);
        return Buffer.from(json);
      }
      case XATTR.shareUrl: {
        if (!this.uploaded(e)) throw new VfsError('ENODATA', `${fusePath} is not uploaded yet: no link can be made`);
        // getfattr asks twice (size, then value): the second answer comes from memory.
        const known = this.links.get(linkKey(e));
        if (known) return Buffer.from(known);
        const url = await this.o.remote.shareLink(e.pathDisplay);
        this.links.set(linkKey(e), url);
        return Buffer.from(url);
      }
      default:
        throw noData(fusePath, name);
    }
  }

  async remove(fusePath: string, name: string): Promise<void> {
    const e = this.entry(fusePath);
    if (name !== XATTR.shareUrl) {
      throw new VfsError(name.startsWith('user.sregistry.') ? 'EPERM' : 'ENOTSUP', `${name} cannot be removed`);
    }
    const urls = await this.o.remote.listSharedLinks(e.pathDisplay, true);
    this.links.delete(linkKey(e));
    if (urls.length === 0) throw noData(fusePath, name);
    for (const url of urls) await this.o.remote.revokeSharedLink(url);
  }

  set(name: string): never {
    throw new VfsError(name.startsWith('user.sregistry.') ? 'EPERM' : 'ENOTSUP', `${name} is read-only`);
  }
}
