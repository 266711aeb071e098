/**
 * Dropbox `content_hash` (dropbox-api.md §6): SHA-256 of each 4 MiB block, the raw
 * digests concatenated, SHA-256 of that, lowercase hex. Zero bytes → SHA-256 of "".
 *
 * Streaming: `update()` takes chunks of any size; memory stays at one partial block's
 * hash state plus 32 bytes per finished block. Shared by the client and the emulator
 * (the only code they share besides types).
 */
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';

export const CONTENT_HASH_BLOCK_BYTES = 4 * 1024 * 1024;

export class ContentHasher {
  private readonly blockDigests: Buffer[] = [];
  private block: Hash = createHash('sha256');
  private blockFillBytes = 0;
  private totalBytes = 0;

  update(chunk: Uint8Array): this {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(CONTENT_HASH_BLOCK_BYTES - this.blockFillBytes, chunk.length - offset);
      this.block.update(chunk.subarray(offset, offset + take));
      this.blockFillBytes += take;
      offset += take;
      if (this.blockFillBytes === CONTENT_HASH_BLOCK_BYTES) this.finishBlock();
    }
    this.totalBytes += chunk.length;
    return this;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  digest(): string {
    if (this.blockFillBytes > 0) this.finishBlock();
    const overall = createHash('sha256');
    for (const d of this.blockDigests) overall.update(d);
    return overall.digest('hex');
  }

  private finishBlock(): void {
    this.blockDigests.push(this.block.digest());
    this.block = createHash('sha256');
    this.blockFillBytes = 0;
  }
}

export function contentHash(data: Uint8Array): string {
  return new ContentHasher().update(data).digest();
}

/** SHA-256 of one block on the thread pool (WebCrypto), keeping the event loop free. */
export async function sha256Off(block: Uint8Array): Promise<Buffer> {
  return Buffer.from(await crypto.subtle.digest('SHA-256', block));
}

/** The content_hash from the block digests, in order. */
export function combineBlockDigests(digests: Iterable<Uint8Array>): string {
  const overall = createHash('sha256');
  for (const d of digests) overall.update(d);
  return overall.digest('hex');
}

/**
 * Digests of the 4 MiB blocks of [start, end) of a file (start block-aligned), read with
 * positional reads into one reused 1 MiB buffer: constant memory, whatever the file size.
 */
export async function blockDigests(file: string, start: number, end: number): Promise<Buffer[]> {
  const fh = await open(file, 'r');
  const buf = Buffer.allocUnsafe(1024 * 1024);
  const out: Buffer[] = [];
  try {
    let block = createHash('sha256');
    let inBlock = 0;
    for (let pos = start; pos < end; ) {
      const want = Math.min(buf.length, end - pos, CONTENT_HASH_BLOCK_BYTES - inBlock);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead === 0) throw Object.assign(new Error(`${file} is shorter than expected (it changed while being read)`), { code: 'ESHORT' });
      block.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
      inBlock += bytesRead;
      if (inBlock === CONTENT_HASH_BLOCK_BYTES || pos === end) {
        out.push(block.digest());
        block = createHash('sha256');
        inBlock = 0;
      }
    }
    return out;
  } finally {
    await fh.close();
  }
}
