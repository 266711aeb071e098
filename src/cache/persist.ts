/**
 * The block index in `sreg_cache_blocks` (migration 2). Write-behind: inserts and deletes are
 * queued and written together in one transaction soon after (the caller schedules `flush`);
 * last-use times are kept in a map and written every few seconds and at close. Statements are
 * prepared once. A lost write costs cache content, never correctness: at open, rows without a
 * file and files without a row are removed, and a block from disk is checked against its
 * row's digest at its first use unless its row's file_id (state migration 3, written by `seal`
 * only once the file was fsynced at a clean close) still names its file (kept.ts).
 */
import type { Database, Statement } from 'better-sqlite3';

export interface BlockRow {
  rev: string;
  block: number;
  bytes: number;
  sha256: Buffer;
  lastUsedMs: number;
  /** The block file's identity once sealed (disk.ts fileIdentity); null = not trusted. */
  fileId: string | null;
}

type Op = { kind: 'put'; row: BlockRow } | { kind: 'del'; rev: string; block: number } | { kind: 'seal'; rev: string; block: number; fileId: string };

interface Statements {
  all: Statement<[], { rev: string; block: number; bytes: number; sha256: Buffer; last_used_ms: number; file_id: string | null }>;
  put: Statement<[string, number, number, Buffer, number, string | null]>;
  seal: Statement<[string, string, number]>;
  del: Statement<[string, number]>;
  touch: Statement<[number, string, number]>;
}

type Touch = { rev: string; block: number; ms: number };

export class IndexDb {
  private readonly st: Statements | undefined;
  private readonly write: ((ops: Op[], touches: Iterable<Touch>) => void) | undefined;
  private ops: Op[] = [];
  private touches = new Map<string, Touch>();

  constructor(
    db: Database | null,
    private readonly log: (line: string) => void,
  ) {
    this.st = db
      ? {
          all: db.prepare('SELECT rev, block, bytes, sha256, last_used_ms, file_id FROM sreg_cache_blocks ORDER BY last_used_ms, rev, block'),
          put: db.prepare('INSERT OR REPLACE INTO sreg_cache_blocks (rev, block, bytes, sha256, last_used_ms, file_id) VALUES (?, ?, ?, ?, ?, ?)'),
          seal: db.prepare('UPDATE sreg_cache_blocks SET file_id = ? WHERE rev = ? AND block = ?'),
          del: db.prepare('DELETE FROM sreg_cache_blocks WHERE rev = ? AND block = ?'),
          touch: db.prepare('UPDATE sreg_cache_blocks SET last_used_ms = ? WHERE rev = ? AND block = ?'),
        }
      : undefined;
    const st = this.st;
    const tx =
      db && st
        ? db.transaction((ops: Op[], touches: Touch[]) => {
            for (const op of ops) {
              if (op.kind === 'put') st.put.run(op.row.rev, op.row.block, op.row.bytes, op.row.sha256, op.row.lastUsedMs, op.row.fileId);
              else if (op.kind === 'seal') st.seal.run(op.fileId, op.rev, op.block);
              else st.del.run(op.rev, op.block);
            }
            for (const t of touches) st.touch.run(t.ms, t.rev, t.block);
          })
        : undefined;
    this.write = tx ? (ops, touches) => tx.immediate(ops, [...touches]) : undefined;
  }

  get persistent(): boolean {
    return this.st !== undefined;
  }

  /** Every row, least recently used first. */
  load(): BlockRow[] {
    if (!this.st) return [];
    return this.st.all.all().map((r) => ({ rev: r.rev, block: r.block, bytes: r.bytes, sha256: r.sha256, lastUsedMs: r.last_used_ms, fileId: r.file_id }));
  }

  put(row: BlockRow): void {
    if (this.st) this.ops.push({ kind: 'put', row });
  }

  delete(rev: string, block: number): void {
    if (this.st) this.ops.push({ kind: 'del', rev, block });
  }

  /** Its block file was fsynced at close and is `fileId`: the next session may trust it (kept.ts). */
  seal(rev: string, block: number, fileId: string): void {
    if (this.st) this.ops.push({ kind: 'seal', rev, block, fileId });
  }

  touch(key: string, rev: string, block: number, ms: number): void {
    if (this.st) this.touches.set(key, { rev, block, ms });
  }

  /** Are inserts or deletes waiting? */
  get hasChanges(): boolean {
    return this.ops.length > 0;
  }

  /** Writes the queued inserts and deletes (and, with `touches`, the last-use times) in one transaction. */
  flush(touches: boolean): void {
    if (!this.write) return;
    const ops = this.ops;
    const times = touches ? this.touches : new Map<string, Touch>();
    if (ops.length === 0 && times.size === 0) return;
    this.ops = [];
    if (touches) this.touches = new Map();
    try {
      this.write(ops, times.values());
    } catch (e) {
      // The cache still works from memory; the next open repairs the index from the files.
      this.log(`cache: cannot write the block index (${ops.length + times.size} changes lost): ${(e as Error).message}`);
    }
  }
}
