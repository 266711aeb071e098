/**
 * The block tables the addon serves fast reads from: one per revision open for reading
 * (a slot number carried in the file handle), kept in step with the block cache's 'ready'
 * (a block is on disk and verified) and 'gone' (evicted or dropped) events. A revision's slot
 * lives while a handle reads it.
 */
import type { FileRef } from '../vfs/index.js';
import type { NativeAddon } from './native.js';

/** What the block cache offers the fast path (cache/block-cache.ts). */
export interface BlockSource {
  on(event: 'ready', fn: (rev: string, index: number, file: string) => void): unknown;
  on(event: 'gone', fn: (rev: string, index: number) => void): unknown;
  off(event: 'ready', fn: (rev: string, index: number, file: string) => void): unknown;
  off(event: 'gone', fn: (rev: string, index: number) => void): unknown;
  readyBlocks(rev: string): number[];
  blockFile(rev: string, index: number): string;
  /** Before a handle of `file` opens: its kept blocks that can be trusted become ready. */
  prepare(file: FileRef): Promise<void>;
  /** Readahead for reads served by the addon (the cache sees no read of its own for them). */
  advise(file: FileRef, offset: number, length: number, stream: number): void;
}

interface Table {
  slot: number;
  refs: number;
}

export class BlockTables {
  private readonly byRev = new Map<string, Table>();
  private readonly free: number[] = [];
  private next = 1;
  private readonly onReady = (rev: string, index: number, file: string): void => {
    const t = this.byRev.get(rev);
    if (t) this.addon.blockReady(t.slot, index, file);
  };
  private readonly onGone = (rev: string, index: number): void => {
    const t = this.byRev.get(rev);
    if (t) this.addon.blockGone(t.slot, index);
  };

  constructor(
    private readonly addon: NativeAddon,
    private readonly source: BlockSource,
  ) {
    source.on('ready', this.onReady);
    source.on('gone', this.onGone);
  }

  /** A handle opened `file` for reading: its table's slot (0 when none is free: no fast path). */
  open(file: FileRef): number {
    const t = this.byRev.get(file.rev);
    if (t) {
      t.refs++;
      return t.slot;
    }
    const slot = this.free.pop() ?? (this.next < 65536 ? this.next++ : 0);
    if (slot === 0 || !this.addon.revOpen(slot, file.size)) return 0;
    this.byRev.set(file.rev, { slot, refs: 1 });
    for (const b of this.source.readyBlocks(file.rev)) this.addon.blockReady(slot, b, this.source.blockFile(file.rev, b));
    return slot;
  }

  /** Before `open`: the cache makes what it can of the rev ready (a stat per kept block). */
  prepare(file: FileRef): Promise<void> {
    return this.source.prepare(file);
  }

  close(rev: string): void {
    const t = this.byRev.get(rev);
    if (!t || --t.refs > 0) return;
    this.byRev.delete(rev);
    this.addon.revClose(t.slot);
    this.free.push(t.slot);
  }

  advise(file: FileRef, offset: number, length: number, stream: number): void {
    this.source.advise(file, offset, length, stream);
  }

  dispose(): void {
    this.source.off('ready', this.onReady);
    this.source.off('gone', this.onGone);
    for (const t of this.byRev.values()) this.addon.revClose(t.slot);
    this.byRev.clear();
  }
}
