/**
 * Shared pieces of the client-core tests (test/dropbox/*.test.ts): a DropboxClient pointed at
 * a test's emulator, random files on disk, hashes, emulator stats, and RemoteError checks.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { DropboxClient, type ClientOptions } from '../../src/dropbox/client.js';
import { RemoteError } from '../../src/dropbox/errors.js';
import type { Emulator } from '../helpers/emulator.js';

export const MiB = 1024 * 1024;
export const BLOCK = 4 * MiB;

/** A client on the emulator with its long-lived token; closed at teardown. */
export function client(t: ExecutionContext, emu: Emulator, opts: Partial<ClientOptions> = {}): DropboxClient {
  const c = new DropboxClient({ endpoint: emu.url, accessToken: emu.token, workers: 4, ...opts });
  t.teardown(() => c.close());
  return c;
}

/** A fresh temporary folder, removed at teardown. */
export async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sreg-dbx-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `size` random bytes to `file` (1 MiB at a time) and returns their sha256. */
export async function randomFile(file: string, size: number): Promise<string> {
  const fh = await open(file, 'w');
  const h = createHash('sha256');
  try {
    for (let pos = 0; pos < size; ) {
      const buf = randomBytes(Math.min(MiB, size - pos));
      h.update(buf);
      await fh.write(buf, 0, buf.length, pos);
      pos += buf.length;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export interface Stats {
  bytesSent: number;
  bytesReceived: number;
  requests: Record<string, number>;
  statuses: Record<string, number>;
}

export const stats = (emu: Emulator): Promise<Stats> => emu.admin<Stats>('GET', '/stats');
export const resetStats = (emu: Emulator): Promise<unknown> => emu.admin('POST', '/stats/reset');
export const fault = (emu: Emulator, rule: Record<string, unknown>): Promise<{ id: number }> => emu.admin('POST', '/faults', rule);

/** The RemoteError `p` rejects with (fails the test on anything else). */
export async function remoteError(t: ExecutionContext, p: Promise<unknown>, code?: RemoteError['code']): Promise<RemoteError> {
  const e = await t.throwsAsync(p);
  if (!(e instanceof RemoteError)) {
    t.fail(`expected a RemoteError, got ${String(e)}`);
    throw e ?? new Error('no error');
  }
  if (code !== undefined) t.is(e.code, code, e.message);
  return e;
}

/** Names in `dir` that look like a download's partial file. */
export async function partials(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.sreg-partial-'));
}

/** Sums onBytes deltas. */
export function progress(): { onBytes: (n: number) => void; total: () => number; negatives: () => number } {
  let total = 0;
  let negatives = 0;
  return {
    onBytes: (n) => {
      total += n;
      if (n < 0) negatives++;
    },
    total: () => total,
    negatives: () => negatives,
  };
}
