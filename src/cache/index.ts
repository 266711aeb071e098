/**
 * The block cache (`BlockCachePort`): file bytes for the mount, read in the 4 MiB blocks of
 * Dropbox's content_hash through ranged fetches, kept on disk as one file per block
 * (`<dir>/<rev>/<index>`), indexed in memory (lru-cache, a byte budget) and in
 * `sreg_cache_blocks` so that a remount starts warm.
 *
 * Parts: block-cache.ts (reads, fetches, write-behind), store.ts (the index), kept.ts (blocks
 * kept from an earlier session), rev-check.ts (the content_hash check), adopt.ts.
 *
 * Invariants
 * - Blocks are keyed by revision: a changed file (new rev) never serves old bytes.
 * - Indexed bytes + bytes being written ≤ `budgetBytes`, always; room is made by evicting the
 *   least recently used blocks first (the file and its row go with the entry).
 * - A block file is written to a temporary name and renamed; its row is written after the
 *   rename; a removal of a path finishes before another block is renamed onto it. At open,
 *   rows without a file and files (or temporaries) without a row are removed.
 * - A fetched block is digested, checked with its rev (below) and then handed to its readers
 *   from memory (the fetch's buffer); its file is written behind them and it is indexed once
 *   written (`indexed()`, the one place where a block becomes durable and indexed; `disposed()`
 *   the one where it goes). Until then it counts for the content_hash check and readers that
 *   come get its bytes from memory; a rev found not to match drops these too. `settle()` waits
 *   for the writes behind (tests).
 * - Every indexed block has the SHA-256 of its bytes. Blocks fetched or adopted in this session
 *   were digested from the bytes written. A block from an earlier session is trusted without
 *   reading it when its row's `file_id` still names its file (kept.ts): a row gets one only at a
 *   clean close, which fsyncs the files that session wrote and records their identity (inode,
 *   size, mtime and ctime in ns) if it is still the one they had once written; an unclean end
 *   (kill -9, crash) seals nothing. Any other kept block (unsealed, from an sreg before state
 *   migration 3, or whose file's identity changed) is digested from disk at its first use and
 *   refetched if it differs from its row. When every block of a rev
 *   is indexed, the block digests must make `file.contentHash`: if not, all its blocks are
 *   dropped and the reads that follow fetch again; a second mismatch in a row fails the read
 *   that completed the rev with CacheError('corrupt').
 * - A fetch that fails rejects the reads that need that block with the fetch's own error
 *   (RemoteError); nothing is remembered, so the next read tries again. A block that cannot be
 *   written (disk full) is served from memory to its readers and not kept.
 *
 * Concurrency
 * - One JS thread; file I/O is fs.promises (positional reads, a bounded handle cache); block
 *   digests run on a small pool of worker threads (util/sha256-pool.ts) that read the pooled
 *   buffers in place (SharedArrayBuffers); SQLite writes are short batched transactions
 *   (inserts/deletes at most once a second, last-use times every few seconds, both at close).
 * - Single flight: one promise per block being fetched, adopted or checked; every reader of that
 *   block waits on it. At most `maxInFlight` fetches are on the wire at once; a waiting reader's
 *   fetch goes before readahead, and readahead never takes the last free connection. A fetch is
 *   a run of contiguous blocks in one request (run.ts; a demand fetch is a run of one): it takes
 *   a connection first and each block's buffer (a memory slot) when the bytes reach that block;
 *   it gives the connection back when the request ends, and a block's buffer once the block is
 *   on disk, also after its readers have their bytes: at most `maxInFlight` + `writeBehindBlocks` (default half of
 *   `maxInFlight`) fetched blocks are in memory (in pooled buffers, that many kept free), and a
 *   slow disk write does not hold a connection. The socket reads a block's bytes straight into
 *   its buffer (dropbox/range-socket.ts). A read fills one buffer: the
 *   caller's when it passes one (the kernel's, through fuse/: no allocation or copy on a hit),
 *   else a new one. Such a read settles only once nothing writes into the caller's buffer any
 *   more, also when one of its blocks failed; once the caller's signal aborts it stops waiting
 *   and starts no write (sink.ts).
 * - Readahead: a read that starts within NEAR_BYTES of where its stream has reached is
 *   sequential; the window opens at 1 block and doubles at each read that moves it forward, up
 *   to 4 × `maxInFlight`, fetched in runs of window / `maxInFlight` blocks (at most 4) so that
 *   every connection has a run (a short run at the window's far edge waits to be whole), never beyond one
 *   block per MiB the run has read, and never beyond what the budget holds. Missing blocks in
 *   the window are fetched; blocks kept from an earlier session are trusted or digested ahead
 *   of the reader. Other reads touch only their blocks.
 * - close() fails queued fetches, aborts running ones (their signal: a fetch riding out an
 *   outage must not hold the close up), waits for reads, adopts and the aborted fetches to
 *   settle, seals the block files written (or digested) in this session (fsync, in libuv's
 *   pool), writes the index, and with `removeDirOnClose` removes `dir` (nothing sealed).
 * - A kept block's identity is checked with a stat (never on the event loop) at its first use,
 *   in readahead, or for all the rev's blocks when the native adapter opens a handle
 *   (`prepare`), so that the adapter serves them from the first read.
 */
export { BlockCache, type BlockCacheOptions } from './block-cache.js';
export { BLOCK_BYTES } from './blocks.js';
export { CacheError, type CacheErrorCode } from './errors.js';
