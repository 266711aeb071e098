// How much of the event loop hashing 4 MiB blocks costs: on the main thread (createHash) or
// through Sha256Pool with SharedArrayBuffer-backed buffers (shared) or plain ones (copied by
// postMessage). Run after `npm run build`:  node scripts/lib/hash-pool-bench.mjs [blocks]
import { createHash, randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Sha256Pool } from '../../dist/src/util/sha256-pool.js';

const n = Number(process.argv[2] ?? 64);
const B = 4 * 1024 * 1024;
const make = (shared) => Array.from({ length: 9 }, () => randomFillSync(shared ? Buffer.from(new SharedArrayBuffer(B)) : Buffer.allocUnsafeSlow(B)));
async function run(label, bufs, hash) {
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  let busyMs = 0;
  const jobs = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    jobs.push(hash(bufs[i % bufs.length]));
    busyMs += performance.now() - s;
    if (jobs.length === 9) await Promise.all(jobs.splice(0));
  }
  await Promise.all(jobs);
  const ms = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  console.log(`${label.padEnd(34)} ${(ms / n).toFixed(2)} ms/block wall, ${(busyMs / n).toFixed(3)} ms/block of the event loop in the call, event loop utilization ${(elu.utilization * 100).toFixed(0)} %`);
}
const pool = new Sha256Pool({ size: 2 });
await pool.digest(Buffer.alloc(1)); // start the workers
for (let r = 0; r < 2; r++) {
  await run('main thread createHash', make(false), async (b) => createHash('sha256').update(b).digest());
  await run('pool, SharedArrayBuffer (shared)', make(true), (b) => pool.digest(b));
  await run('pool, plain Buffer (copied)', make(false), (b) => pool.digest(b));
}
await pool.close();
