/**
 * The content_hash check of each rev in the cache: once every block of a rev is digested
 * (indexed blocks and fetched ones still being written), their digests must make
 * `file.contentHash` (verify.ts); if not, every block of the rev is dropped and the reads that
 * follow fetch again. Blocks kept from an earlier session are checked as a whole at the rev's
 * first use in this session.
 */
import type { FileRef } from '../vfs/ports.js';
import { blockKey } from './blocks.js';
import type { Pending, Unwritten } from './entry.js';
import type { BlockStore } from './store.js';
import { revVerdict, type DigestedBlock, type Verdict } from './verify.js';

export class RevChecks {
  /** rev → block → fetched blocks being written (see Unwritten). */
  private readonly unwritten = new Map<string, Map<number, Unwritten>>();
  private readonly mismatches = new Map<string, number>();
  private readonly checkedRevs = new Set<string>();

  constructor(
    private readonly store: BlockStore,
    private readonly inflight: Map<string, Pending>,
    private readonly log: (line: string) => void,
  ) {}

  /** A fetched block, digested, counts for its rev from now on (until written or dropped). */
  addUnwritten(rev: string, b: number, u: Unwritten): void {
    let blocks = this.unwritten.get(rev);
    if (!blocks) this.unwritten.set(rev, (blocks = new Map<number, Unwritten>()));
    blocks.set(b, u);
  }

  /** Is `u` still the block being written (its rev not dropped meanwhile)? */
  isUnwritten(rev: string, b: number, u: Unwritten): boolean {
    return this.unwritten.get(rev)?.get(b) === u;
  }

  /** The block is written (and indexed) or given up. */
  removeUnwritten(rev: string, b: number, u: Unwritten): void {
    const blocks = this.unwritten.get(rev);
    if (blocks?.get(b) === u) {
      blocks.delete(b);
      if (blocks.size === 0) this.unwritten.delete(rev);
    }
  }

  /** With every block of the rev present: do their digests make `file.contentHash`? */
  check(file: FileRef): Verdict {
    const v = revVerdict(file, this.digestsOf(file.rev));
    if (v === 'ok') this.mismatches.delete(file.rev);
    return v;
  }

  /** Drops every block of the rev; returns how many mismatches in a row it has had. */
  onMismatch(file: FileRef): number {
    const times = (this.mismatches.get(file.rev) ?? 0) + 1;
    this.mismatches.set(file.rev, times);
    this.log(`cache: the blocks of rev ${file.rev} (${file.id}) do not make its content_hash (${times} time(s) in a row): dropping them`);
    this.dropRev(file.rev);
    return times;
  }

  /** The rev matched (an adopt checked it as a whole): its count of mismatches starts again. */
  matched(rev: string): void {
    this.mismatches.delete(rev);
  }

  /** Blocks kept from an earlier session are checked as a whole at the rev's first use. */
  onFirstUse(file: FileRef): void {
    if (this.checkedRevs.has(file.rev)) return;
    this.checkedRevs.add(file.rev);
    if (this.check(file) === 'mismatch') this.onMismatch(file);
  }

  /** The digests of a rev's blocks: indexed ones and fetched ones being written. */
  private digestsOf(rev: string): ReadonlyMap<number, DigestedBlock> | undefined {
    const kept = this.store.blocksOf(rev);
    const fresh = this.unwritten.get(rev);
    if (!fresh) return kept;
    if (!kept) return fresh;
    const all = new Map<number, DigestedBlock>(kept);
    for (const [b, u] of fresh) all.set(b, u);
    return all;
  }

  /** Forgets every block of the rev: indexed ones and fetched ones being written (no reader gets them any more). */
  dropRev(rev: string): void {
    for (const [b, u] of this.unwritten.get(rev) ?? []) {
      const key = blockKey(rev, b);
      if (this.inflight.get(key) === u.pending) this.inflight.delete(key);
    }
    this.unwritten.delete(rev);
    for (const b of [...(this.store.blocksOf(rev)?.keys() ?? [])]) this.store.index.delete(blockKey(rev, b));
  }
}
