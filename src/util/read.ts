/** Positional reads that fill a buffer: the loop every "read N bytes at P" needs. */
import type { FileHandle } from 'node:fs/promises';

/**
 * `into`'s first `length` bytes when it has room (a caller's buffer: no allocation), else a new
 * buffer of `length` bytes.
 */
export function bufferFor(length: number, into?: Buffer): Buffer {
  return into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
}

/** Reads into all of `out` from `position` on, until it is full or the file ends; returns the bytes read. */
export async function readFully(fh: FileHandle, out: Buffer, position: number): Promise<number> {
  let got = 0;
  while (got < out.length) {
    const { bytesRead } = await fh.read(out, got, out.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}
