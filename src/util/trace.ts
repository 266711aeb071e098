/**
 * Start-up tracing for measurements: with SREG_TRACE_START=1 in the environment, `trace(step)`
 * writes `trace <pid> +<ms since the process started> @<epoch ms> cpu <ms> <step>` to stderr (a
 * background mount's stderr file), so that the CLI parent's and the mount child's steps line up
 * on one clock, with the CPU time (user + system) the process used so far, which a busy
 * machine changes less than the wall time. Off (a no-op) otherwise. Used by scripts/bench-startup.sh.
 */
import { writeSync } from 'node:fs';

const on = Boolean(process.env.SREG_TRACE_START);

export function trace(step: string): void {
  if (!on) return;
  try {
    const cpu = process.cpuUsage();
    writeSync(2, `trace ${process.pid} +${performance.now().toFixed(1)} @${Date.now()} cpu ${((cpu.user + cpu.system) / 1000).toFixed(0)} ${step}\n`);
  } catch {
    /* a closed stderr must not stop anything */
  }
}
