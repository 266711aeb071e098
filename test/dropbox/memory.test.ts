/**
 * Memory while moving a 256 MiB file: the client streams, so RSS should grow by a few blocks
 * per worker, not by the file. Only logged here (no number asserted); the benchmark checks
 * the aim. The bytes are checked.
 */
import test from 'ava';
import path from 'node:path';
import { startEmulator } from '../helpers/emulator.js';
import { client, MiB, randomFile, sha256File, tempDir } from './helpers.js';

async function peakRss<T>(fn: () => Promise<T>): Promise<{ value: T; growthMiB: number; baseMiB: number }> {
  (globalThis as { gc?: () => void }).gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, growthMiB: (peak - base) / MiB, baseMiB: base / MiB };
  } finally {
    clearInterval(timer);
  }
}

test('256 MiB upload and download: bytes right, RSS growth logged', async (t) => {
  const emu = await startEmulator(t);
  const dir = await tempDir(t);
  const size = 256 * MiB;
  const src = path.join(dir, 'src.bin');
  const want = await randomFile(src, size);
  const c = client(t, emu, { workers: 4 });

  const up = await peakRss(() => c.upload(src, size, { path: '/mem/big.bin', mode: 'add' }));
  t.is(up.value.size, size);
  t.log(`upload 256 MiB, 4 workers: RSS peak growth ${up.growthMiB.toFixed(1)} MiB (base ${up.baseMiB.toFixed(0)} MiB)`);

  const dest = path.join(dir, 'dst.bin');
  const down = await peakRss(() => c.download('/mem/big.bin', dest));
  t.is(down.value.size, size);
  t.log(`download 256 MiB, 4 workers: RSS peak growth ${down.growthMiB.toFixed(1)} MiB (base ${down.baseMiB.toFixed(0)} MiB)`);
  t.is(await sha256File(dest), want);
});
