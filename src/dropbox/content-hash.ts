/**
 * Dropbox `content_hash` (dropbox-api.md §6): SHA-256 of each 4 MiB block, the raw
 * digests concatenated, SHA-256 of that, lowercase hex. Zero bytes → SHA-256 of "".
 *
 * Streaming: `update()` takes chunks of any size; memory stays at one partial block's
 * hash state plus 32 bytes per finished block. Shared by the client and the emulator
 * (the only code they share besides types).
 */
import { createHash, type Hash } from 'node:crypto';

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
