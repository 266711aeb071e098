/**
 * Gathers socket-sized pieces (≈64 KiB) into ~1 MiB positional writes: one thread-pool trip
 * per MiB instead of sixteen. The pieces are kept by reference, not copied.
 */
import type { FileHandle } from 'node:fs/promises';

export class CoalescingWriter {
  private pieces: Buffer[] = [];
  private bytes = 0;
  private position: number;

  constructor(
    private readonly file: FileHandle,
    start: number,
    private readonly flushBytes = 1024 * 1024,
  ) {
    this.position = start;
  }

  /** Queues `piece` for the next position; writes when enough has gathered. */
  async write(piece: Buffer): Promise<void> {
    this.pieces.push(piece);
    this.bytes += piece.length;
    if (this.bytes >= this.flushBytes) await this.flush();
  }

  async flush(): Promise<void> {
    while (this.bytes > 0) {
      const { bytesWritten } = await this.file.writev(this.pieces, this.position);
      this.position += bytesWritten;
      this.bytes -= bytesWritten;
      if (this.bytes === 0) {
        this.pieces = [];
        break;
      }
      // A short write: drop what went out and write the rest.
      let skip = bytesWritten;
      while (skip > 0) {
        const head = this.pieces[0]!;
        if (head.length <= skip) {
          skip -= head.length;
          this.pieces.shift();
        } else {
          this.pieces[0] = head.subarray(skip);
          skip = 0;
        }
      }
    }
  }
}
