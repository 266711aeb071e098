/*
 * The read fast path: per open revision (a slot JavaScript picks, carried in the high 32 bits of
 * the file handle), which of its 4 MiB blocks are on disk and verified, by path. A read whose
 * bytes are all in ready blocks is answered here, on the FUSE thread: positional reads into a
 * per-thread buffer, then fuse_reply_buf. Anything else (a block not ready, a file that cannot
 * be opened or is shorter than it should be) returns 0 and the read goes to JavaScript, which
 * serves it as before (and fetches what is missing).
 *
 * Races: one table lock, writer-preferring. Readers (FUSE threads) hold it shared across their
 * preads; JavaScript takes it exclusively to add, drop or close a block, so a file descriptor is
 * never closed under a pread. A block file is opened lazily by the first read that needs it
 * (compare-and-swap: a loser closes its own). A block's bytes never change for its revision, so
 * a descriptor kept on a file that was evicted and fetched again still reads the right bytes.
 */
#include "session.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct sreg_block {
  char *path; /* NULL: not ready */
  int fd;     /* -1: not opened yet */
} sreg_block;

typedef struct sreg_rev {
  uint64_t size;
  uint32_t nblocks;
  sreg_block *blocks;
} sreg_rev;

static sreg_rev *revs[SREG_MAX_REVS];
static pthread_rwlock_t revs_lock;
static __thread char *tbuf;

void sreg_revs_init(void) {
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&revs_lock, &attr);
  pthread_rwlockattr_destroy(&attr);
}

static void block_clear(sreg_block *b) {
  if (b->fd >= 0) close(b->fd);
  b->fd = -1;
  free(b->path);
  b->path = NULL;
}

static void rev_free(sreg_rev *r) {
  if (!r) return;
  for (uint32_t i = 0; i < r->nblocks; i++) block_clear(&r->blocks[i]);
  free(r->blocks);
  free(r);
}

int sreg_rev_open(uint32_t slot, uint64_t size) {
  if (slot == 0 || slot >= SREG_MAX_REVS) return -EINVAL;
  sreg_rev *r = calloc(1, sizeof *r);
  if (!r) return -ENOMEM;
  r->size = size;
  r->nblocks = (uint32_t)((size + SREG_BLOCK_BYTES - 1) / SREG_BLOCK_BYTES);
  r->blocks = calloc(r->nblocks ? r->nblocks : 1, sizeof *r->blocks);
  if (!r->blocks) {
    free(r);
    return -ENOMEM;
  }
  for (uint32_t i = 0; i < r->nblocks; i++) r->blocks[i].fd = -1;
  pthread_rwlock_wrlock(&revs_lock);
  sreg_rev *old = revs[slot];
  revs[slot] = r;
  pthread_rwlock_unlock(&revs_lock);
  rev_free(old);
  return 0;
}

void sreg_rev_close(uint32_t slot) {
  if (slot == 0 || slot >= SREG_MAX_REVS) return;
  pthread_rwlock_wrlock(&revs_lock);
  sreg_rev *r = revs[slot];
  revs[slot] = NULL;
  pthread_rwlock_unlock(&revs_lock);
  rev_free(r);
}

int sreg_block_ready(uint32_t slot, uint32_t index, const char *path) {
  if (slot == 0 || slot >= SREG_MAX_REVS) return -EINVAL;
  char *copy = strdup(path);
  if (!copy) return -ENOMEM;
  int rc = -ENOENT;
  pthread_rwlock_wrlock(&revs_lock);
  sreg_rev *r = revs[slot];
  if (r && index < r->nblocks) {
    block_clear(&r->blocks[index]);
    r->blocks[index].path = copy;
    copy = NULL;
    rc = 0;
  }
  pthread_rwlock_unlock(&revs_lock);
  free(copy);
  return rc;
}

void sreg_block_gone(uint32_t slot, uint32_t index) {
  if (slot == 0 || slot >= SREG_MAX_REVS) return;
  pthread_rwlock_wrlock(&revs_lock);
  sreg_rev *r = revs[slot];
  if (r && index < r->nblocks) block_clear(&r->blocks[index]);
  pthread_rwlock_unlock(&revs_lock);
}

void sreg_revs_clear(void) {
  pthread_rwlock_wrlock(&revs_lock);
  for (uint32_t i = 0; i < SREG_MAX_REVS; i++) {
    rev_free(revs[i]);
    revs[i] = NULL;
  }
  pthread_rwlock_unlock(&revs_lock);
}

/* The descriptor of a ready block, opened on first use; -1 if it cannot be. Under the read lock. */
static int block_fd(sreg_block *b) {
  int fd = __atomic_load_n(&b->fd, __ATOMIC_ACQUIRE);
  if (fd >= 0) return fd;
  int mine = open(b->path, O_RDONLY | O_CLOEXEC);
  if (mine < 0) return -1;
  int expected = -1;
  if (__atomic_compare_exchange_n(&b->fd, &expected, mine, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return mine;
  close(mine);
  return expected;
}

static int pread_fully(int fd, char *buf, size_t len, off_t pos) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, buf + done, len - done, pos + (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

/* 1: answered here; 0: not (the caller forwards the read to JavaScript). */
int sreg_fast_read(fuse_req_t req, uint32_t slot, size_t size, off_t off) {
  if (slot == 0 || slot >= SREG_MAX_REVS || off < 0 || size > SREG_MAX_IO) return 0;
  if (!tbuf) {
    tbuf = malloc(SREG_MAX_IO);
    if (!tbuf) return 0;
  }
  pthread_rwlock_rdlock(&revs_lock);
  sreg_rev *r = revs[slot];
  if (!r) goto miss;
  uint64_t start = (uint64_t)off;
  uint64_t end = start + size;
  if (end > r->size) end = r->size;
  if (start >= end) {
    pthread_rwlock_unlock(&revs_lock);
    fuse_reply_buf(req, NULL, 0);
    return 1;
  }
  for (uint64_t b = start / SREG_BLOCK_BYTES; b * SREG_BLOCK_BYTES < end; b++) {
    if (!r->blocks[b].path) goto miss;
  }
  for (uint64_t pos = start; pos < end;) {
    uint64_t b = pos / SREG_BLOCK_BYTES;
    uint64_t base = b * SREG_BLOCK_BYTES;
    uint64_t to = base + SREG_BLOCK_BYTES < end ? base + SREG_BLOCK_BYTES : end;
    int fd = block_fd(&r->blocks[b]);
    if (fd < 0 || pread_fully(fd, tbuf + (pos - start), to - pos, (off_t)(pos - base)) < 0) {
      pthread_mutex_lock(&sreg_count_lock);
      sreg_count.fast_fallbacks++;
      pthread_mutex_unlock(&sreg_count_lock);
      goto miss;
    }
    pos = to;
  }
  pthread_rwlock_unlock(&revs_lock);
  fuse_reply_buf(req, tbuf, end - start);
  pthread_mutex_lock(&sreg_count_lock);
  sreg_count.fast_reads++;
  sreg_count.fast_bytes += end - start;
  pthread_mutex_unlock(&sreg_count_lock);
  return 1;
miss:
  pthread_rwlock_unlock(&revs_lock);
  return 0;
}
