/**
 * Reads one regular file out of a squashfs that starts `offset` bytes into an image, with
 * `unsquashfs -o OFFSET -no-wildcards -cat IMAGE PATH` (squashfs-tools), asynchronously.
 * unsquashfs exits 0 with the bytes, 2 for a non-fatal problem with that path (missing, a
 * directory, a symbolic link: 4.5's -cat cannot follow those) and 1 when the file system
 * itself is unreadable.
 */
import { spawn } from 'node:child_process';
import { SifError } from './errors.js';

export const UNSQUASHFS = 'unsquashfs';
/** Output past this is not a script or a label file: stop reading. */
export const MAX_CAT_BYTES = 1024 * 1024;

/** The file's bytes; null when the path is not a regular file in the image. */
export function catSquashfsFile(image: string, offset: number, filePath: string, maxBytes = MAX_CAT_BYTES): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(UNSQUASHFS, ['-o', String(offset), '-no-wildcards', '-cat', image, filePath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let tooBig = false;
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > maxBytes) {
        tooBig = true;
        child.kill();
        return;
      }
      out.push(chunk);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (err.length < 64 * 1024) err += chunk;
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' ? `${UNSQUASHFS} is not installed (squashfs-tools)` : `cannot run ${UNSQUASHFS}: ${e.message}`;
      reject(new SifError('tool_failed', why, { cause: e }));
    });
    child.on('close', (code, signal) => {
      if (tooBig) {
        reject(new SifError('too_large', `${image}: ${filePath} is larger than ${maxBytes} bytes`));
      } else if (code === 0) {
        resolve(Buffer.concat(out));
      } else if (code === 2) {
        resolve(null);
      } else if (code === 1) {
        reject(new SifError('corrupt', `${image}: the squashfs at byte ${offset} is unreadable: ${err.trim() || 'unsquashfs failed'}`));
      } else {
        reject(new SifError('tool_failed', `${UNSQUASHFS} ${signal ? `was killed by ${signal}` : `exited ${code}`}: ${err.trim()}`));
      }
    });
  });
}
