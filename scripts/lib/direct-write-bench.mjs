#!/usr/bin/env node
// Block-file writes as src/cache/disk.ts does them (open a new temporary, one 4 MiB write, fstat,
// close, rename), from three kinds of memory, to see what direct writes (O_DIRECT) cost:
//   page      a shared WebAssembly.Memory (page-aligned: what src/cache/direct.ts uses)
//   512       a plain SharedArrayBuffer at the first offset a direct write takes (512-aligned on
//             a virtio disk, not page-aligned: what sreg used before)
//   buffered  the same writes through the page cache
//
//   node scripts/lib/direct-write-bench.mjs DIR [page|512|buffered ...]
//
// Env: BLOCKS (default 250), C concurrent writers (default 4, libuv's pool). DIR must not exist
// or be empty; the files are removed after each kind. Prints MB/s and per-file latency.
import { constants } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

/* global WebAssembly */

const B = 4 * 1024 * 1024;
const [dir, ...kinds] = process.argv.slice(2);
if (!dir) {
  console.error('usage: direct-write-bench.mjs DIR [page|512|buffered ...]');
  process.exit(2);
}
const blocks = Number(process.env.BLOCKS ?? 250);
const writers = Number(process.env.C ?? 4);
const DIRECT = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT;
const BUFFERED = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC;

async function arenaFor(kind) {
  if (kind === 'page') {
    const pages = (writers * B) / 65536;
    return { arena: new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true }).buffer, base: 0, flags: DIRECT };
  }
  const arena = new SharedArrayBuffer(writers * B + 4096);
  if (kind === 'buffered') return { arena, base: 0, flags: BUFFERED };
  const probe = path.join(dir, 'probe');
  const fh = await open(probe, DIRECT, 0o600);
  try {
    for (let off = 0; off < 4096; off += 16) {
      try {
        await fh.write(new Uint8Array(arena, off, 4096), 0, 4096, 0);
        return { arena, base: off, flags: DIRECT };
      } catch (e) {
        if (e.code !== 'EINVAL') throw e;
      }
    }
  } finally {
    await fh.close();
    await rm(probe, { force: true });
  }
  throw new Error('no offset takes a direct write here');
}

await mkdir(dir, { recursive: true });
for (const kind of kinds.length ? kinds : ['page', '512', 'buffered']) {
  const { arena, base, flags } = await arenaFor(kind);
  const bufs = Array.from({ length: writers }, (_, i) => Buffer.from(arena, base + i * B, B).fill(i + 1));
  const lat = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    bufs.map(async (buf) => {
      while (next < blocks) {
        const k = next++;
        const t = performance.now();
        const tmp = path.join(dir, `${k}.tmp`);
        const fh = await open(tmp, flags, 0o666);
        await fh.write(buf, 0, B, 0);
        await fh.stat({ bigint: true });
        await fh.close();
        await rename(tmp, path.join(dir, String(k)));
        lat.push(performance.now() - t);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (f) => lat[Math.min(lat.length - 1, Math.floor(f * lat.length))].toFixed(1);
  console.log(`${kind.padEnd(8)} (offset ${base}): ${((blocks * B) / secs / 1e6).toFixed(0)} MB/s; per file p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${q(1)} ms`);
  for (let k = 0; k < blocks; k++) await rm(path.join(dir, String(k)), { force: true });
}
