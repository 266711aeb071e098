/*
 * The low-level operations. Each one copies what it needs (names, written bytes) into a message
 * and hands it to JavaScript with a request id; forget answers at once (it has no reply). A read
 * first tries the fast path (fastread.c). Nothing here blocks on JavaScript.
 */
#include "session.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static sreg_msg *named(const char *name, const char *name2) {
  sreg_msg *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  if (name && !(m->name = strdup(name))) goto fail;
  if (name2 && !(m->name2 = strdup(name2))) goto fail;
  return m;
fail:
  free(m->name);
  free(m);
  return NULL;
}

static sreg_msg *nums(double a, double b, double c) {
  sreg_msg *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->a = a;
  m->b = b;
  m->c = c;
  return m;
}

/* A message that could not be built: ENOMEM (sreg_forward answers a NULL itself, but we lose the arguments). */
#define FWD(req, op, ino, fi, size, m)          \
  do {                                          \
    sreg_msg *mm_ = (m);                        \
    if (!mm_) {                                 \
      fuse_reply_err((req), ENOMEM);            \
      return;                                   \
    }                                           \
    sreg_forward(req, op, ino, fi, size, mm_);  \
  } while (0)

static void op_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  conn->max_write = SREG_MAX_IO;
  conn->max_read = SREG_MAX_IO;
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  sreg_msg *m = calloc(1, sizeof *m);
  if (m) {
    m->op = OP_INIT;
    m->a = conn->proto_major;
    m->b = conn->proto_minor;
    m->c = conn->max_write;
    sreg_post(m);
  }
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  FWD(req, OP_LOOKUP, parent, NULL, 0, named(name, NULL));
}

static void post_forget(fuse_ino_t ino, uint64_t n) {
  sreg_msg *m = calloc(1, sizeof *m);
  if (!m) return; /* the inode stays known: a leak, never a wrong answer */
  m->op = OP_FORGET;
  m->ino = ino;
  m->a = (double)n;
  sreg_post(m);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  post_forget(ino, nlookup);
  fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  for (size_t i = 0; i < count; i++) post_forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  FWD(req, OP_GETATTR, ino, fi, 0, nums(0, 0, fi ? 1 : 0));
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  FWD(req, OP_SETATTR, ino, fi, 0, nums(to_set, (double)attr->st_size, fi ? 1 : 0));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  FWD(req, OP_READLINK, ino, NULL, 0, nums(0, 0, 0));
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  (void)rdev;
  sreg_msg *m = named(name, NULL);
  if (m) m->a = mode;
  FWD(req, OP_MKNOD, parent, NULL, 0, m);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  sreg_msg *m = named(name, NULL);
  if (m) m->a = mode;
  FWD(req, OP_MKDIR, parent, NULL, 0, m);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  FWD(req, OP_UNLINK, parent, NULL, 0, named(name, NULL));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  FWD(req, OP_RMDIR, parent, NULL, 0, named(name, NULL));
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  FWD(req, OP_SYMLINK, parent, NULL, 0, named(name, link));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) {
  sreg_msg *m = named(name, newname);
  if (m) {
    m->fh = newparent;
    m->a = flags;
  }
  FWD(req, OP_RENAME, parent, NULL, 0, m);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  sreg_msg *m = named(newname, NULL);
  if (m) m->fh = newparent;
  FWD(req, OP_LINK, ino, NULL, 0, m);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  FWD(req, OP_OPEN, ino, fi, 0, nums(fi->flags, 0, 0));
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  if (sreg_fast_read(req, (uint32_t)(fi->fh >> 32), size, off)) {
    /*
     * A read that enters a block is told to JavaScript (no answer expected), so that the
     * cache's readahead keeps moving ahead of a reader served here: once per 4 MiB.
     */
    uint64_t first = (uint64_t)off / SREG_BLOCK_BYTES, last = ((uint64_t)off + (size ? size - 1 : 0)) / SREG_BLOCK_BYTES;
    if ((uint64_t)off % SREG_BLOCK_BYTES == 0 || first != last) {
      sreg_msg *m = nums((double)size, (double)off, 1);
      if (m) {
        m->op = OP_READ;
        m->ino = ino;
        m->fh = fi->fh & 0xffffffffu;
        sreg_post(m);
      }
    }
    return;
  }
  pthread_mutex_lock(&sreg_count_lock);
  sreg_count.js_reads++;
  pthread_mutex_unlock(&sreg_count_lock);
  FWD(req, OP_READ, ino, fi, size, nums((double)size, (double)off, 0));
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  sreg_msg *m = nums((double)size, (double)off, 0);
  if (m) {
    m->data = malloc(size ? size : 1);
    if (!m->data) {
      free(m);
      m = NULL;
    } else {
      memcpy(m->data, buf, size);
      m->len = size;
    }
  }
  FWD(req, OP_WRITE, ino, fi, 0, m);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  FWD(req, OP_FLUSH, ino, fi, 0, nums(0, 0, 0));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  uint32_t high = (uint32_t)(fi->fh >> 32);
  if (high & SREG_PT_MARK) sreg_pt_release(ino);
  FWD(req, OP_RELEASE, ino, fi, 0, nums(0, 0, 0));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  FWD(req, OP_FSYNC, ino, fi, 0, nums(datasync, 0, 0));
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  FWD(req, OP_OPENDIR, ino, fi, 0, nums(fi->flags, 0, 0));
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  FWD(req, OP_READDIR, ino, fi, size, nums((double)size, (double)off, 0));
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  FWD(req, OP_RELEASEDIR, ino, fi, 0, nums(0, 0, 0));
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  FWD(req, OP_FSYNCDIR, ino, fi, 0, nums(datasync, 0, 0));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  FWD(req, OP_STATFS, ino, NULL, 0, nums(0, 0, 0));
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  sreg_msg *m = named(name, NULL);
  if (m) {
    m->a = flags;
    m->data = malloc(size ? size : 1);
    if (!m->data) {
      free(m->name);
      free(m);
      m = NULL;
    } else {
      memcpy(m->data, value, size);
      m->len = size;
    }
  }
  FWD(req, OP_SETXATTR, ino, NULL, 0, m);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  sreg_msg *m = named(name, NULL);
  if (m) m->a = (double)size;
  FWD(req, OP_GETXATTR, ino, NULL, size, m);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  FWD(req, OP_LISTXATTR, ino, NULL, size, nums((double)size, 0, 0));
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  FWD(req, OP_REMOVEXATTR, ino, NULL, 0, named(name, NULL));
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  FWD(req, OP_ACCESS, ino, NULL, 0, nums(mask, 0, 0));
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  sreg_msg *m = named(name, NULL);
  if (m) {
    m->a = mode;
    m->b = fi->flags;
  }
  FWD(req, OP_CREATE, parent, fi, 0, m);
}

const struct fuse_lowlevel_ops sreg_ops = {
  .init = op_init,
  .lookup = op_lookup,
  .forget = op_forget,
  .forget_multi = op_forget_multi,
  .getattr = op_getattr,
  .setattr = op_setattr,
  .readlink = op_readlink,
  .mknod = op_mknod,
  .mkdir = op_mkdir,
  .unlink = op_unlink,
  .rmdir = op_rmdir,
  .symlink = op_symlink,
  .rename = op_rename,
  .link = op_link,
  .open = op_open,
  .read = op_read,
  .write = op_write,
  .flush = op_flush,
  .release = op_release,
  .fsync = op_fsync,
  .opendir = op_opendir,
  .readdir = op_readdir,
  .releasedir = op_releasedir,
  .fsyncdir = op_fsyncdir,
  .statfs = op_statfs,
  .setxattr = op_setxattr,
  .getxattr = op_getxattr,
  .listxattr = op_listxattr,
  .removexattr = op_removexattr,
  .access = op_access,
  .create = op_create,
};
