/**
 * A worker of Sha256Pool (sha256-pool.ts): answers { id, data } with { id, digest } (32 bytes),
 * one job at a time. `data` is a view of the caller's memory when it lives in a
 * SharedArrayBuffer (no copy), else a copy that structured cloning made.
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

interface Job {
  id: number;
  data: Uint8Array;
}

parentPort?.on('message', (job: Job) => {
  const digest = createHash('sha256').update(job.data).digest();
  parentPort?.postMessage({ id: job.id, digest: new Uint8Array(digest.buffer, digest.byteOffset, digest.length) });
});
