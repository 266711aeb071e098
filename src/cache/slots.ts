/**
 * A limit on concurrent fetches with two priorities. Demand tickets (a reader is waiting) are
 * always served before readahead tickets, and readahead never holds the last free slot (when
 * there are at least two), so a demand read can start while readahead is in flight. A waiting
 * readahead ticket a reader starts waiting on is promoted to demand.
 */
import { CacheError } from './errors.js';

export type Priority = 'demand' | 'readahead';

export interface Ticket {
  /** Resolves when the ticket holds a slot. */
  readonly ready: Promise<void>;
  /** Holds its slot now (so `ready` has resolved or is about to): no need to wait for it. */
  readonly granted: boolean;
  /** A reader now waits on it: serve it as demand. */
  promote(): void;
  /** Gives the slot back (or leaves the queue). Idempotent. */
  release(): void;
}

interface Entry {
  priority: Priority;
  state: 'waiting' | 'running' | 'done';
  start: () => void;
  fail: (e: Error) => void;
}

export class FetchSlots {
  private running = 0;
  private runningReadahead = 0;
  private readonly waiting: Entry[] = [];
  private closed = false;

  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxInFlight must be a positive integer, not ${max}`);
  }

  /** Readahead may use all slots but one (when there are at least two). */
  private get readaheadLimit(): number {
    return this.max >= 2 ? this.max - 1 : 1;
  }

  get inFlight(): number {
    return this.running;
  }

  acquire(priority: Priority): Ticket {
    let start!: () => void;
    let fail!: (e: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      start = resolve;
      fail = reject;
    });
    const entry: Entry = { priority, state: 'waiting', start, fail };
    if (this.closed) {
      entry.state = 'done';
      fail(new CacheError('closed', 'the block cache is closed'));
    } else {
      this.waiting.push(entry);
      this.pump();
    }
    return {
      ready,
      get granted(): boolean {
        return entry.state === 'running';
      },
      promote: () => {
        if (entry.priority === 'demand') return;
        entry.priority = 'demand';
        if (entry.state === 'running') this.runningReadahead--;
        this.pump();
      },
      release: () => {
        if (entry.state === 'waiting') {
          this.waiting.splice(this.waiting.indexOf(entry), 1);
        } else if (entry.state === 'running') {
          this.running--;
          if (entry.priority === 'readahead') this.runningReadahead--;
        }
        entry.state = 'done';
        this.pump();
      },
    };
  }

  /** Fails every waiting ticket; running ones finish. */
  close(): void {
    this.closed = true;
    for (const e of this.waiting.splice(0)) {
      e.state = 'done';
      e.fail(new CacheError('closed', 'the block cache is closed'));
    }
  }

  private pump(): void {
    while (this.running < this.max) {
      let i = this.waiting.findIndex((e) => e.priority === 'demand');
      if (i < 0 && this.runningReadahead < this.readaheadLimit) i = this.waiting.findIndex((e) => e.priority === 'readahead');
      if (i < 0) return;
      const [e] = this.waiting.splice(i, 1);
      if (!e) return;
      e.state = 'running';
      this.running++;
      if (e.priority === 'readahead') this.runningReadahead++;
      e.start();
    }
  }
}
