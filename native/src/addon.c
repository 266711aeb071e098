/*
 * The N-API surface of the native adapter (src/fuse3/native.ts declares it). One session per
 * process. Every reply takes a request id; a reply for a request already answered (or from
 * before a slot was reused) does nothing and returns false.
 */
#include "session.h"
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGS(n)                                                     \
  size_t argc = (n);                                                \
  napi_value argv[(n) > 0 ? (n) : 1];                               \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL)

static double num(napi_env env, napi_value v) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  return d;
}

static napi_value boolean(napi_env env, int b) {
  napi_value r;
  napi_get_boolean(env, b != 0, &r);
  return r;
}

static napi_value undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

/* A string argument, malloc'd (NULL on error). */
static char *str(napi_env env, napi_value v) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s) napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

/* attr: a Float64Array [mode, nlink, uid, gid, size, blocks, blksize, atimeMs, mtimeMs, ctimeMs] */
static int to_stat(napi_env env, napi_value v, uint64_t ino, struct stat *st) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array || length < 10) return -1;
  const double *a = data;
  memset(st, 0, sizeof *st);
  st->st_ino = ino;
  st->st_mode = (mode_t)a[0];
  st->st_nlink = (nlink_t)a[1];
  st->st_uid = (uid_t)a[2];
  st->st_gid = (gid_t)a[3];
  st->st_size = (off_t)a[4];
  st->st_blocks = (blkcnt_t)a[5];
  st->st_blksize = (blksize_t)a[6];
  const double *t[3] = {&a[7], &a[8], &a[9]};
  struct timespec *ts[3] = {&st->st_atim, &st->st_mtim, &st->st_ctim};
  for (int i = 0; i < 3; i++) {
    double ms = *t[i];
    ts[i]->tv_sec = (time_t)(ms / 1000);
    ts[i]->tv_nsec = (long)((ms - (double)ts[i]->tv_sec * 1000) * 1e6);
    if (ts[i]->tv_nsec < 0) ts[i]->tv_nsec = 0;
  }
  return 0;
}

static napi_value js_mount(napi_env env, napi_callback_info info) {
  ARGS(5); /* mountpoint, options, debug, dispatch, passthrough (take it up if the kernel offers it) */
  if (sreg_se) {
    napi_throw_error(env, "EBUSY", "this process already has a native FUSE mount");
    return NULL;
  }
  char *dir = str(env, argv[0]);
  char *opts = str(env, argv[1]);
  bool debug = false, passthrough = false;
  napi_get_value_bool(env, argv[2], &debug);
  if (argc >= 5) napi_get_value_bool(env, argv[4], &passthrough);
  sreg_pt_want(passthrough);
  napi_value name;
  napi_create_string_utf8(env, "sreg-fuse", NAPI_AUTO_LENGTH, &name);
  char why[512] = "";
  int rc = EINVAL;
  if (dir && opts && napi_create_threadsafe_function(env, argv[3], NULL, name, 0, 1, NULL, NULL, NULL, sreg_call_js, &sreg_tsfn) == napi_ok) {
    rc = sreg_start(dir, opts, debug, why, sizeof why);
    if (rc != 0) {
      napi_release_threadsafe_function(sreg_tsfn, napi_tsfn_abort);
      sreg_tsfn = NULL;
    }
  } else {
    snprintf(why, sizeof why, "bad arguments");
  }
  free(dir);
  free(opts);
  if (rc != 0) napi_throw_error(env, "EIO", why);
  return undefined(env);
}

static napi_value js_set_connection(napi_env env, napi_callback_info info) {
  ARGS(1);
  sreg_set_connection((int)num(env, argv[0]));
  return undefined(env);
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int result;
} unmount_job;

static void unmount_execute(napi_env env, void *data) {
  (void)env;
  unmount_job *j = data;
  j->result = sreg_stop_loop();
}

static void unmount_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  unmount_job *j = data;
  sreg_finish(j->result == 2);
  if (sreg_tsfn) {
    napi_release_threadsafe_function(sreg_tsfn, napi_tsfn_abort);
    sreg_tsfn = NULL;
  }
  napi_value r;
  napi_create_string_utf8(env, j->result == 0 ? "clean" : j->result == 1 ? "aborted" : "stuck", NAPI_AUTO_LENGTH, &r);
  napi_resolve_deferred(env, j->deferred, r);
  napi_delete_async_work(env, j->work);
  free(j);
}

static napi_value js_unmount(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value promise;
  unmount_job *j = calloc(1, sizeof *j);
  napi_create_promise(env, &j->deferred, &promise);
  if (!sreg_se) {
    napi_value r;
    napi_create_string_utf8(env, "clean", NAPI_AUTO_LENGTH, &r);
    napi_resolve_deferred(env, j->deferred, r);
    free(j);
    return promise;
  }
  napi_value name;
  napi_create_string_utf8(env, "sreg-unmount", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, unmount_execute, unmount_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

#define CLAIM(idx)                                       \
  sreg_slot sl;                                          \
  if (!sreg_slot_claim(num(env, argv[idx]), &sl)) return boolean(env, 0)

static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  ARGS(2);
  CLAIM(0);
  int e = (int)num(env, argv[1]);
  return boolean(env, fuse_reply_err(sl.req, e > 0 ? e : EIO) == 0);
}

static napi_value js_reply_ok(napi_env env, napi_callback_info info) {
  ARGS(1);
  CLAIM(0);
  return boolean(env, fuse_reply_err(sl.req, 0) == 0);
}

static int entry_of(napi_env env, napi_value *argv, struct fuse_entry_param *e) {
  memset(e, 0, sizeof *e);
  e->ino = (fuse_ino_t)num(env, argv[1]);
  if (to_stat(env, argv[2], e->ino, &e->attr) != 0) return -1;
  e->entry_timeout = num(env, argv[3]);
  e->attr_timeout = num(env, argv[4]);
  return 0;
}

/* replyEntry(id, ino, attr, entryTimeout, attrTimeout) */
static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  ARGS(5);
  CLAIM(0);
  struct fuse_entry_param e;
  if (entry_of(env, argv, &e) != 0) return boolean(env, fuse_reply_err(sl.req, EIO) && 0);
  return boolean(env, fuse_reply_entry(sl.req, &e) == 0);
}

static void set_open(struct fuse_file_info *fi, double fh, double rev, double flags) {
  fi->fh = ((uint64_t)rev << 32) | ((uint64_t)fh & 0xffffffffu);
  fi->keep_cache = ((int)flags & 1) != 0;
  fi->direct_io = ((int)flags & 2) != 0;
}

/* replyCreate(id, ino, attr, entryTimeout, attrTimeout, fh, revSlot, flags) */
static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  ARGS(8);
  CLAIM(0);
  struct fuse_entry_param e;
  if (entry_of(env, argv, &e) != 0) return boolean(env, fuse_reply_err(sl.req, EIO) && 0);
  set_open(&sl.fi, num(env, argv[5]), num(env, argv[6]), num(env, argv[7]));
  return boolean(env, fuse_reply_create(sl.req, &e, &sl.fi) == 0);
}

/* replyAttr(id, ino, attr, attrTimeout) */
static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  ARGS(4);
  CLAIM(0);
  struct stat st;
  if (to_stat(env, argv[2], (uint64_t)num(env, argv[1]), &st) != 0) return boolean(env, fuse_reply_err(sl.req, EIO) && 0);
  return boolean(env, fuse_reply_attr(sl.req, &st, num(env, argv[3])) == 0);
}

/*
 * replyOpen(id, fh, revSlot, flags: 1 keep_cache, 2 direct_io, backing?): 0 not answered (the
 * request was interrupted), 1 answered, 2 answered with a passthrough handle on the file
 * `backing` (passthrough.c); a backing file the kernel does not take is answered as without.
 */
static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  ARGS(5);
  napi_value r;
  sreg_slot sl;
  if (!sreg_slot_claim(num(env, argv[0]), &sl)) {
    napi_create_int32(env, 0, &r);
    return r;
  }
  napi_valuetype t = napi_undefined;
  if (argc >= 5) napi_typeof(env, argv[4], &t);
  if (t == napi_string) {
    char *path = str(env, argv[4]);
    int rc = path ? sreg_pt_reply_open(sl.req, sl.ino, (uint64_t)num(env, argv[1]), path) : -ENOMEM;
    free(path);
    if (rc >= 0) {
      napi_create_int32(env, rc == 1 ? 2 : 0, &r);
      return r;
    }
  }
  set_open(&sl.fi, num(env, argv[1]), num(env, argv[2]), num(env, argv[3]));
  napi_create_int32(env, fuse_reply_open(sl.req, &sl.fi) == 0 ? 1 : 0, &r);
  return r;
}

static napi_value js_reply_write(napi_env env, napi_callback_info info) {
  ARGS(2);
  CLAIM(0);
  return boolean(env, fuse_reply_write(sl.req, (size_t)num(env, argv[1])) == 0);
}

/* replyBuf(id, buffer, length) */
static napi_value js_reply_buf(napi_env env, napi_callback_info info) {
  ARGS(3);
  CLAIM(0);
  void *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) return boolean(env, fuse_reply_err(sl.req, EIO) && 0);
  size_t n = (size_t)num(env, argv[2]);
  if (n > len) n = len;
  return boolean(env, fuse_reply_buf(sl.req, data, n) == 0);
}

static napi_value js_reply_xattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  CLAIM(0);
  return boolean(env, fuse_reply_xattr(sl.req, (size_t)num(env, argv[1])) == 0);
}

/* replyStatfs(id, Float64Array [bsize, frsize, blocks, bfree, bavail, files, ffree, favail, namemax]) */
static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  ARGS(2);
  CLAIM(0);
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array || length < 9) {
    fuse_reply_err(sl.req, EIO);
    return boolean(env, 0);
  }
  const double *a = data;
  struct statvfs s;
  memset(&s, 0, sizeof s);
  s.f_bsize = (unsigned long)a[0];
  s.f_frsize = (unsigned long)a[1];
  s.f_blocks = (fsblkcnt_t)a[2];
  s.f_bfree = (fsblkcnt_t)a[3];
  s.f_bavail = (fsblkcnt_t)a[4];
  s.f_files = (fsfilcnt_t)a[5];
  s.f_ffree = (fsfilcnt_t)a[6];
  s.f_favail = (fsfilcnt_t)a[7];
  s.f_namemax = (unsigned long)a[8];
  return boolean(env, fuse_reply_statfs(sl.req, &s) == 0);
}

/*
 * replyReaddir(id, names, inos: Float64Array, modes: Float64Array, firstOffset): entries from
 * the directory offset `firstOffset` on, as many as fit in the size the kernel asked for.
 */
static napi_value js_reply_readdir(napi_env env, napi_callback_info info) {
  ARGS(5);
  CLAIM(0);
  uint32_t count = 0;
  napi_get_array_length(env, argv[1], &count);
  double *inos = NULL, *modes = NULL;
  size_t ninos = 0, nmodes = 0;
  napi_typedarray_type type;
  napi_get_typedarray_info(env, argv[2], &type, &ninos, (void **)&inos, NULL, NULL);
  napi_get_typedarray_info(env, argv[3], &type, &nmodes, (void **)&modes, NULL, NULL);
  double first = num(env, argv[4]);
  size_t size = sl.size;
  char *buf = malloc(size ? size : 1);
  if (!buf) return boolean(env, fuse_reply_err(sl.req, ENOMEM) && 0);
  size_t pos = 0;
  char name[1024 + 1];
  for (uint32_t i = 0; i < count && i < ninos && i < nmodes; i++) {
    napi_value v;
    size_t len = 0;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok || napi_get_value_string_utf8(env, v, name, sizeof name, &len) != napi_ok) break;
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = (ino_t)inos[i];
    st.st_mode = (mode_t)modes[i];
    size_t need = fuse_add_direntry(sl.req, buf + pos, size - pos, name, &st, (off_t)(first + i + 1));
    if (need > size - pos) break;
    pos += need;
  }
  int rc = fuse_reply_buf(sl.req, buf, pos);
  free(buf);
  return boolean(env, rc == 0);
}

static napi_value js_rev_open(napi_env env, napi_callback_info info) {
  ARGS(2);
  return boolean(env, sreg_rev_open((uint32_t)num(env, argv[0]), (uint64_t)num(env, argv[1])) == 0);
}

static napi_value js_rev_close(napi_env env, napi_callback_info info) {
  ARGS(1);
  sreg_rev_close((uint32_t)num(env, argv[0]));
  return undefined(env);
}

static napi_value js_block_ready(napi_env env, napi_callback_info info) {
  ARGS(3);
  char *path = str(env, argv[2]);
  int rc = path ? sreg_block_ready((uint32_t)num(env, argv[0]), (uint32_t)num(env, argv[1]), path) : -EINVAL;
  free(path);
  return boolean(env, rc == 0);
}

static napi_value js_block_gone(napi_env env, napi_callback_info info) {
  ARGS(2);
  sreg_block_gone((uint32_t)num(env, argv[0]), (uint32_t)num(env, argv[1]));
  return undefined(env);
}

static napi_value js_inval_inode(napi_env env, napi_callback_info info) {
  ARGS(1);
  return boolean(env, sreg_inval_queue((uint64_t)num(env, argv[0])) == 0);
}

static napi_value js_inval_entry(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *name = str(env, argv[1]);
  int rc = name ? sreg_inval_entry_queue((uint64_t)num(env, argv[0]), name) : -EINVAL;
  free(name);
  return boolean(env, rc == 0);
}

static void set_num(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, key, n);
}

static napi_value js_counters(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_mutex_lock(&sreg_count_lock);
  sreg_counters c = sreg_count;
  pthread_mutex_unlock(&sreg_count_lock);
  napi_value o;
  napi_create_object(env, &o);
  set_num(env, o, "fastReads", (double)c.fast_reads);
  set_num(env, o, "fastBytes", (double)c.fast_bytes);
  set_num(env, o, "jsReads", (double)c.js_reads);
  set_num(env, o, "fastFallbacks", (double)c.fast_fallbacks);
  set_num(env, o, "passthrough", sreg_pt_active());
  set_num(env, o, "passthroughOpens", (double)c.pt_opens);
  set_num(env, o, "passthroughRefused", (double)c.pt_refused);
  set_num(env, o, "passthroughOpen", (double)c.pt_live);
  set_num(env, o, "passthroughLastErrno", c.pt_last_error);
  return o;
}

static napi_value js_version(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_string_utf8(env, fuse_pkgversion(), NAPI_AUTO_LENGTH, &v);
  return v;
}

#define EXPORT(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_default, NULL}

/*
 * A mount in the foreground (no `sreg mount` parent to set MALLOC_*_ for it, see
 * src/app/mount-child.ts mountProcessEnv): 1 MiB write buffers and socket buffers from the heap,
 * which keeps up to 64 MiB free, rather than fresh memory for each. Settings the user gave
 * in the environment win.
 */
static void tune_malloc(void) {
  if (!getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 8 << 20);
  if (!getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

static napi_value init(napi_env env, napi_value exports) {
  tune_malloc();
  napi_property_descriptor props[] = {
    EXPORT("mount", js_mount),
    EXPORT("setConnection", js_set_connection),
    EXPORT("unmount", js_unmount),
    EXPORT("replyErr", js_reply_err),
    EXPORT("replyOk", js_reply_ok),
    EXPORT("replyEntry", js_reply_entry),
    EXPORT("replyCreate", js_reply_create),
    EXPORT("replyAttr", js_reply_attr),
    EXPORT("replyOpen", js_reply_open),
    EXPORT("replyWrite", js_reply_write),
    EXPORT("replyBuf", js_reply_buf),
    EXPORT("replyXattr", js_reply_xattr),
    EXPORT("replyStatfs", js_reply_statfs),
    EXPORT("replyReaddir", js_reply_readdir),
    EXPORT("revOpen", js_rev_open),
    EXPORT("revClose", js_rev_close),
    EXPORT("blockReady", js_block_ready),
    EXPORT("blockGone", js_block_gone),
    EXPORT("invalInode", js_inval_inode),
    EXPORT("invalEntry", js_inval_entry),
    EXPORT("counters", js_counters),
    EXPORT("version", js_version),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
