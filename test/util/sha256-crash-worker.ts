/**
 * A SHA-256 pool worker for tests that dies on request: a job whose first byte is 0xee makes
 * it exit (code 7), 0xef makes it throw; anything else is hashed as the real worker does.
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

parentPort?.on('message', (job: { id: number; data: Uint8Array }) => {
  if (job.data[0] === 0xee) process.exit(7);
  if (job.data[0] === 0xef) throw new Error('this worker was told to throw');
  const digest = createHash('sha256').update(job.data).digest();
  parentPort?.postMessage({ id: job.id, digest });
});
