/*
 * sreg's native FUSE adapter: shared declarations of the addon's parts.
 *
 * session.c  the libfuse 3 low-level session: mount, the multi-threaded loop, unmount (with an
 *            abort through /sys/fs/fuse/connections when the loop does not end), the request
 *            slots (a request id is slot + generation, so a late reply cannot answer a reused
 *            slot) and the page-cache invalidation thread.
 * ops.c      the low-level operations: each request is handed to JavaScript through a
 *            threadsafe function, except a read of bytes whose blocks are ready (fastread.c).
 * fastread.c the per-revision block tables and the read served on the FUSE thread.
 * passthrough.c  opens answered with a backing file the kernel reads itself (Linux 6.9+).
 * addon.c    the N-API exports (mount, unmount, replies, block tables, counters).
 */
#ifndef SREG_SESSION_H
#define SREG_SESSION_H

#define FUSE_USE_VERSION 312
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

/* The operations, as the JavaScript side numbers them (src/fuse3/protocol.ts). */
enum sreg_op {
  OP_LOOKUP = 1, OP_FORGET = 2, OP_GETATTR = 3, OP_SETATTR = 4, OP_READLINK = 5, OP_MKNOD = 6,
  OP_MKDIR = 7, OP_UNLINK = 8, OP_RMDIR = 9, OP_SYMLINK = 10, OP_RENAME = 11, OP_LINK = 12,
  OP_OPEN = 13, OP_READ = 14, OP_WRITE = 15, OP_FLUSH = 16, OP_RELEASE = 17, OP_FSYNC = 18,
  OP_OPENDIR = 19, OP_READDIR = 20, OP_RELEASEDIR = 21, OP_FSYNCDIR = 22, OP_STATFS = 23,
  OP_SETXATTR = 24, OP_GETXATTR = 25, OP_LISTXATTR = 26, OP_REMOVEXATTR = 27, OP_ACCESS = 28,
  OP_CREATE = 29, OP_INIT = 30
};

#define SREG_BLOCK_BYTES (4u * 1024u * 1024u)
#define SREG_MAX_IO (1024u * 1024u)
#define SREG_MAX_REVS 65536u

/* One request (or notice) for JavaScript. Strings and data are owned (freed after the call). */
typedef struct sreg_msg {
  double id; /* 0: nothing to answer (forget, init) */
  int op;
  uint64_t ino;
  uint64_t fh;   /* a handle (low 32 bits of fi->fh), or the second inode of rename/link */
  double a, b, c;
  char *name, *name2;
  void *data;
  size_t len;
} sreg_msg;

typedef struct sreg_slot {
  fuse_req_t req;
  uint64_t ino; /* the request's inode */
  uint32_t gen;
  int live;
  size_t size; /* readdir, getxattr, listxattr: the size the kernel asked for */
  int has_fi;
  struct fuse_file_info fi;
} sreg_slot;

typedef struct sreg_counters {
  uint64_t fast_reads, fast_bytes, js_reads, fast_fallbacks;
  /* passthrough opens made, refused (and the last errno), and handles open now */
  uint64_t pt_opens, pt_refused;
  int64_t pt_live;
  int pt_last_error;
} sreg_counters;

/* A passthrough handle's high 32 bits: this mark and its backing id (never a revision slot). */
#define SREG_PT_MARK 0x80000000u

/* session.c */
extern napi_threadsafe_function sreg_tsfn;
extern struct fuse_session *sreg_se;
extern sreg_counters sreg_count;
extern pthread_mutex_t sreg_count_lock;
double sreg_slot_take_new(fuse_req_t req, uint64_t ino, size_t size, const struct fuse_file_info *fi);
int sreg_slot_claim(double id, sreg_slot *out);
void sreg_slot_fail_all(int err);
void sreg_post(sreg_msg *m);
void sreg_forward(fuse_req_t req, int op, uint64_t ino, const struct fuse_file_info *fi, size_t size, sreg_msg *m);
int sreg_inval_queue(uint64_t ino);
int sreg_inval_entry_queue(uint64_t parent, const char *name);
void sreg_call_js(napi_env env, napi_value cb, void *ctx, void *data);
void sreg_set_connection(int id);
int sreg_start(const char *mountpoint, const char *options, int debug, char *why, size_t whylen);
int sreg_stop_loop(void);
void sreg_finish(int loop_stuck);

/* ops.c */
extern const struct fuse_lowlevel_ops sreg_ops;

/* fastread.c */
void sreg_revs_init(void);
int sreg_rev_open(uint32_t slot, uint64_t size);
void sreg_rev_close(uint32_t slot);
int sreg_block_ready(uint32_t slot, uint32_t index, const char *path);
void sreg_block_gone(uint32_t slot, uint32_t index);
void sreg_revs_clear(void);
int sreg_fast_read(fuse_req_t req, uint32_t slot, size_t size, off_t off);

/* passthrough.c */
void sreg_pt_want(int on);
int sreg_pt_install(struct fuse_session *se);
int sreg_pt_active(void);
/* 1: answered with a passthrough handle; 0: interrupted (nothing to undo); -errno: refused, answer otherwise. */
int sreg_pt_reply_open(fuse_req_t req, uint64_t ino, uint64_t fh, const char *path);
/* A passthrough handle of `ino` was released (its inode's id is closed with the last). */
void sreg_pt_release(uint64_t ino);
/* After unmount: the ids went with the connection. */
void sreg_pt_clear(void);

#endif
