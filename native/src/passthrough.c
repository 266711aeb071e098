/*
 * FUSE passthrough (Linux 6.9+, CONFIG_FUSE_PASSTHROUGH): an open answered with a backing file,
 * whose reads (and mmap) the kernel then serves from that file itself, as fast as a read of the
 * file would be, without asking us. libfuse 3.14 predates it, so two things are done beside it:
 *
 *  - INIT: the kernel offers FUSE_PASSTHROUGH in its INIT request (flags2, with FUSE_INIT_EXT);
 *    libfuse's reply does not take it up. A custom io (fuse_session_custom_io, on the mount's
 *    own /dev/fuse descriptor: plain read and writev, as libfuse's own) notes the request as it
 *    goes by and adds FUSE_PASSTHROUGH and max_stack_depth 1 to libfuse's reply. Installed only
 *    when passthrough is wanted; the kernel takes it or ignores it.
 *  - the open: a backing id from ioctl(FUSE_DEV_IOC_BACKING_OPEN) on /dev/fuse (CAP_SYS_ADMIN),
 *    and a fuse_open_out with FOPEN_PASSTHROUGH and that id, sent with fuse_reply_iov. The
 *    kernel attaches the backing to the inode, and refuses a passthrough open of an inode that
 *    has another one (EIO): so one id per inode, shared by its passthrough handles (counted
 *    here) and closed at the last one's release. The handle's high 32 bits say it is one
 *    (SREG_PT_MARK | id; the fast path, which looks there for a revision slot, finds none).
 *
 * The kernel's rule for the caller: while an inode has a passthrough handle open, every other
 * open of it must be passthrough too, on the same file (the kernel fails any other with EIO),
 * and while it has a handle open the ordinary way, a passthrough open fails the same way.
 */
#include "session.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

/* The few kernel ABI pieces used here (include/uapi/linux/fuse.h, protocol 7.40). */
#define K_FUSE_INIT 26
#define K_FUSE_INIT_EXT (1u << 30)
#define K_FUSE_PASSTHROUGH_FLAGS2 (1u << 5) /* FUSE_PASSTHROUGH = 1ULL << 37 */
#define K_FOPEN_PASSTHROUGH (1u << 7)
struct k_in_header { uint32_t len, opcode; uint64_t unique, nodeid; uint32_t uid, gid, pid; uint16_t total_extlen, padding; };
struct k_init_in { uint32_t major, minor, max_readahead, flags, flags2; };
struct k_out_header { uint32_t len; int32_t error; uint64_t unique; };
/* fuse_init_out: flags at 12, flags2 at 32, max_stack_depth at 36. */
#define K_INIT_OUT_FLAGS 12
#define K_INIT_OUT_FLAGS2 32
#define K_INIT_OUT_STACK 36
struct k_backing_map { int32_t fd; uint32_t flags; uint64_t padding; };
#define K_BACKING_OPEN _IOW(229, 1, struct k_backing_map)
#define K_BACKING_CLOSE _IOW(229, 2, uint32_t)
struct k_open_out { uint64_t fh; uint32_t open_flags; int32_t backing_id; };

typedef struct pt_inode {
  uint64_t ino;
  int id;
  uint32_t refs;
  char *path;
} pt_inode;

static pthread_mutex_t pt_lock = PTHREAD_MUTEX_INITIALIZER;
static pt_inode *inodes;
static size_t n_inodes, cap_inodes;

static int wanted;
static uint64_t init_unique; /* 0: no INIT seen (kernel request ids are never 0) */
static int offered;          /* the kernel offered passthrough in its INIT */
static int active;           /* and our reply took it up */

static ssize_t pt_read(int fd, void *buf, size_t len, void *userdata) {
  (void)userdata;
  ssize_t n = read(fd, buf, len);
  if (n >= (ssize_t)(sizeof(struct k_in_header) + sizeof(struct k_init_in))) {
    const struct k_in_header *h = buf;
    if (h->opcode == K_FUSE_INIT) {
      const struct k_init_in *in = (const void *)((const char *)buf + sizeof *h);
      __atomic_store_n(&offered, (in->flags & K_FUSE_INIT_EXT) && (in->flags2 & K_FUSE_PASSTHROUGH_FLAGS2), __ATOMIC_RELEASE);
      __atomic_store_n(&init_unique, h->unique, __ATOMIC_RELEASE);
    }
  }
  return n;
}

static ssize_t pt_writev(int fd, struct iovec *iov, int count, void *userdata) {
  (void)userdata;
  uint64_t want = __atomic_load_n(&init_unique, __ATOMIC_ACQUIRE);
  if (want && count >= 2 && iov[0].iov_len >= sizeof(struct k_out_header) && iov[1].iov_len >= K_INIT_OUT_STACK + 4) {
    const struct k_out_header *h = iov[0].iov_base;
    if (h->unique == want && h->error == 0 && __atomic_load_n(&offered, __ATOMIC_ACQUIRE)) {
      char *out = iov[1].iov_base;
      uint32_t flags, flags2, depth = 1;
      memcpy(&flags, out + K_INIT_OUT_FLAGS, 4);
      memcpy(&flags2, out + K_INIT_OUT_FLAGS2, 4);
      flags |= K_FUSE_INIT_EXT;
      flags2 |= K_FUSE_PASSTHROUGH_FLAGS2;
      memcpy(out + K_INIT_OUT_FLAGS, &flags, 4);
      memcpy(out + K_INIT_OUT_FLAGS2, &flags2, 4);
      memcpy(out + K_INIT_OUT_STACK, &depth, 4);
      __atomic_store_n(&active, 1, __ATOMIC_RELEASE);
    }
    if (h->unique == want) __atomic_store_n(&init_unique, 0, __ATOMIC_RELEASE);
  }
  return writev(fd, iov, count);
}

void sreg_pt_want(int on) { wanted = on != 0; }

int sreg_pt_install(struct fuse_session *se) {
  __atomic_store_n(&init_unique, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&offered, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&active, 0, __ATOMIC_RELEASE);
  if (!wanted) return 0;
  static const struct fuse_custom_io io = {.writev = pt_writev, .read = pt_read};
  return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

int sreg_pt_active(void) { return __atomic_load_n(&active, __ATOMIC_ACQUIRE); }

/* A backing id for `path` (opened read-only), or -errno. */
static int backing_open(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct k_backing_map map = {.fd = fd};
  int id = ioctl(fuse_session_fd(sreg_se), K_BACKING_OPEN, &map);
  int err = errno;
  close(fd);
  return id < 0 ? -err : id;
}

static void backing_close(uint32_t id) {
  if (ioctl(fuse_session_fd(sreg_se), K_BACKING_CLOSE, &id) < 0) { /* the connection is gone: so is the id */ }
}

/* The inode's backing id (a new one, or its current one if `path` is its file), counted; or -errno. Under pt_lock. */
static int inode_take(uint64_t ino, const char *path) {
  for (size_t i = 0; i < n_inodes; i++) {
    if (inodes[i].ino != ino) continue;
    if (strcmp(inodes[i].path, path) != 0) return -EBUSY; /* the kernel would refuse a second file */
    inodes[i].refs++;
    return inodes[i].id;
  }
  if (n_inodes == cap_inodes) {
    size_t cap = cap_inodes ? cap_inodes * 2 : 16;
    pt_inode *grown = realloc(inodes, cap * sizeof *grown);
    if (!grown) return -ENOMEM;
    inodes = grown;
    cap_inodes = cap;
  }
  char *copy = strdup(path);
  if (!copy) return -ENOMEM;
  int id = backing_open(path);
  if (id < 0) {
    free(copy);
    return id;
  }
  inodes[n_inodes++] = (pt_inode){.ino = ino, .id = id, .refs = 1, .path = copy};
  return id;
}

/* One handle of `ino` fewer; its id is closed with the last. */
static void inode_drop(uint64_t ino) {
  pthread_mutex_lock(&pt_lock);
  for (size_t i = 0; i < n_inodes; i++) {
    if (inodes[i].ino != ino) continue;
    if (--inodes[i].refs == 0) {
      backing_close((uint32_t)inodes[i].id);
      free(inodes[i].path);
      inodes[i] = inodes[--n_inodes];
    }
    break;
  }
  pthread_mutex_unlock(&pt_lock);
}

void sreg_pt_release(uint64_t ino) {
  inode_drop(ino);
  pthread_mutex_lock(&sreg_count_lock);
  sreg_count.pt_live--;
  pthread_mutex_unlock(&sreg_count_lock);
}

void sreg_pt_clear(void) {
  pthread_mutex_lock(&pt_lock);
  for (size_t i = 0; i < n_inodes; i++) free(inodes[i].path);
  n_inodes = 0;
  pthread_mutex_unlock(&pt_lock);
}

int sreg_pt_reply_open(fuse_req_t req, uint64_t ino, uint64_t fh, const char *path) {
  int id = -EOPNOTSUPP;
  if (sreg_pt_active()) {
    pthread_mutex_lock(&pt_lock);
    id = inode_take(ino, path);
    pthread_mutex_unlock(&pt_lock);
  }
  if (id < 0) {
    pthread_mutex_lock(&sreg_count_lock);
    sreg_count.pt_refused++;
    sreg_count.pt_last_error = -id;
    pthread_mutex_unlock(&sreg_count_lock);
    return id;
  }
  pthread_mutex_lock(&sreg_count_lock);
  sreg_count.pt_opens++;
  sreg_count.pt_live++;
  pthread_mutex_unlock(&sreg_count_lock);
  struct k_open_out out = {.fh = ((uint64_t)(SREG_PT_MARK | (uint32_t)id) << 32) | (fh & 0xffffffffu), .open_flags = K_FOPEN_PASSTHROUGH, .backing_id = id};
  struct iovec v = {.iov_base = &out, .iov_len = sizeof out};
  if (fuse_reply_iov(req, &v, 1) != 0) {
    /* Interrupted: no handle was made, and none will be released. */
    sreg_pt_release(ino);
    return 0;
  }
  return 1;
}
