/**
 * The serving process's lifecycle, from its first line: SIGTERM/SIGINT/SIGHUP handlers are
 * installed before anything is built. Each piece built registers how to undo it (`defer`);
 * any failure — also after the kernel mount, e.g. a control socket that cannot be made — and a
 * SIGTERM/SIGINT during start-up undo everything built so far, last first, so no kernel mount,
 * socket or mounts-registry row is left behind. Once serving, SIGTERM/SIGINT ask for the
 * orderly stop (pending uploads first). SIGHUP reopens the log at any time.
 */
import type { MountLog } from './mount-log.js';

export class StartAborted extends Error {
  override readonly name = 'StartAborted';
}

type Sig = 'SIGTERM' | 'SIGINT' | 'SIGHUP';

export class Lifecycle {
  private readonly undo: { what: string; fn: () => unknown }[] = [];
  private readonly handlers = new Map<Sig, () => void>();
  private aborted: Sig | undefined;
  private onStop: ((sig: Sig) => void) | undefined;

  constructor(private readonly log: MountLog) {
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      const h = (): void => this.signal(sig);
      this.handlers.set(sig, h);
      process.on(sig, h);
    }
  }

  private signal(sig: Sig): void {
    if (sig === 'SIGHUP') {
      this.log.reopen();
      this.log.info('SIGHUP: reopened the log');
      return;
    }
    if (this.onStop) return this.onStop(sig);
    if (!this.aborted) this.log.info(`${sig} during start-up: stopping`);
    this.aborted = sig;
  }

  /** Throws StartAborted when a SIGTERM/SIGINT came during start-up. Call after each step. */
  checkpoint(): void {
    if (this.aborted) throw new StartAborted(`stopped by ${this.aborted} during start-up`);
  }

  defer(what: string, fn: () => unknown): void {
    this.undo.push({ what, fn });
  }

  /** Start-up is over: from now on SIGTERM/SIGINT call `stop`. */
  serving(stop: (sig: Sig) => void): void {
    this.checkpoint();
    this.onStop = stop;
  }

  /** Undoes everything deferred, last first; a step that fails is logged and the rest still run. */
  async unwind(): Promise<void> {
    for (let u = this.undo.pop(); u; u = this.undo.pop()) {
      try {
        await u.fn();
        this.log.debug(`undone: ${u.what}`);
      } catch (e) {
        this.log.error(`could not undo ${u.what}: ${(e as Error).message}`);
      }
    }
  }

  /** Removes the signal handlers (the process is about to exit). */
  dispose(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
  }
}
