/**
 * Start-up tracing for measurements: with SREG_TRACE_START=1 in the environment, `trace(step)`
 * writes `trace <pid> +<ms since the process started> @<epoch ms> <step>` to stderr (a
 * background mount's stderr file), so that the CLI parent's and the mount child's steps line up
 * on one clock. Off (a no-op) otherwise. Used by scripts/bench-startup.sh.
 */
import { writeSync } from 'node:fs';

const on = Boolean(process.env.SREG_TRACE_START);

export function trace(step: string): void {
  if (!on) return;
  try {
    writeSync(2, `trace ${process.pid} +${performance.now().toFixed(1)} @${Date.now()} ${step}\n`);
  } catch {
    /* a closed stderr must not stop anything */
  }
}
