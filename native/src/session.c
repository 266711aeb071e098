/*
 * The session's shared state: request slots, the hand-off to JavaScript (a threadsafe function),
 * the invalidation thread, and mount / loop / unmount.
 */
#include "session.h"
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

napi_threadsafe_function sreg_tsfn;
struct fuse_session *sreg_se;
sreg_counters sreg_count;
pthread_mutex_t sreg_count_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- request slots: id = generation * SLOTS + slot ---- */

#define SLOTS 65536u
static sreg_slot slots[SLOTS];
static uint32_t freelist[SLOTS];
static uint32_t nfree;
static int slots_ready;
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;

static void slots_init(void) {
  pthread_mutex_lock(&slot_lock);
  if (!slots_ready) {
    nfree = 0;
    for (uint32_t i = SLOTS - 1; i >= 1; i--) freelist[nfree++] = i; /* slot 0 is never used: id 0 means "no reply" */
    slots_ready = 1;
  }
  pthread_mutex_unlock(&slot_lock);
}

double sreg_slot_take_new(fuse_req_t req, uint64_t ino, size_t size, const struct fuse_file_info *fi) {
  pthread_mutex_lock(&slot_lock);
  if (nfree == 0) {
    pthread_mutex_unlock(&slot_lock);
    return -1;
  }
  uint32_t s = freelist[--nfree];
  sreg_slot *sl = &slots[s];
  sl->req = req;
  sl->ino = ino;
  sl->gen++;
  if (sl->gen == 0 || sl->gen > 0x7fffffffu) sl->gen = 1;
  sl->live = 1;
  sl->size = size;
  sl->has_fi = fi != NULL;
  if (fi) sl->fi = *fi;
  else memset(&sl->fi, 0, sizeof sl->fi);
  double id = (double)sl->gen * SLOTS + s;
  pthread_mutex_unlock(&slot_lock);
  return id;
}

/* Takes the request of `id` out of its slot (once): 1 if it was still waiting for this answer. */
int sreg_slot_claim(double id, sreg_slot *out) {
  if (!(id >= SLOTS) || id > 9007199254740991.0) return 0;
  uint64_t n = (uint64_t)id;
  uint32_t s = (uint32_t)(n % SLOTS);
  uint32_t gen = (uint32_t)(n / SLOTS);
  int ok = 0;
  pthread_mutex_lock(&slot_lock);
  sreg_slot *sl = &slots[s];
  if (s != 0 && sl->live && sl->gen == gen) {
    *out = *sl;
    sl->live = 0;
    sl->req = NULL;
    freelist[nfree++] = s;
    ok = 1;
  }
  pthread_mutex_unlock(&slot_lock);
  return ok;
}

void sreg_slot_fail_all(int err) {
  pthread_mutex_lock(&slot_lock);
  for (uint32_t s = 1; s < SLOTS; s++) {
    sreg_slot *sl = &slots[s];
    if (!sl->live) continue;
    fuse_reply_err(sl->req, err);
    sl->live = 0;
    sl->req = NULL;
    freelist[nfree++] = s;
  }
  pthread_mutex_unlock(&slot_lock);
}

static void msg_free(sreg_msg *m) {
  free(m->name);
  free(m->name2);
  free(m->data);
  free(m);
}

void sreg_post(sreg_msg *m) {
  napi_status st = sreg_tsfn ? napi_call_threadsafe_function(sreg_tsfn, m, napi_tsfn_nonblocking) : napi_closing;
  if (st == napi_ok) return;
  sreg_slot sl;
  if (m->id > 0 && sreg_slot_claim(m->id, &sl)) fuse_reply_err(sl.req, EIO);
  msg_free(m);
}

void sreg_forward(fuse_req_t req, int op, uint64_t ino, const struct fuse_file_info *fi, size_t size, sreg_msg *m) {
  if (!m) m = calloc(1, sizeof *m);
  if (!m) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  m->op = op;
  m->ino = ino;
  if (fi) m->fh = fi->fh & 0xffffffffu;
  m->id = sreg_slot_take_new(req, ino, size, fi);
  if (m->id < 0) {
    msg_free(m);
    fuse_reply_err(req, EAGAIN);
    return;
  }
  sreg_post(m);
}

static void free_data(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* ---- the call into JavaScript: dispatch(id, op, ino, fh, a, b, c, name, name2, data) ---- */

void sreg_call_js(napi_env env, napi_value cb, void *ctx, void *data) {
  (void)ctx;
  sreg_msg *m = data;
  if (env == NULL || cb == NULL) {
    sreg_slot sl;
    if (m->id > 0 && sreg_slot_claim(m->id, &sl)) fuse_reply_err(sl.req, EIO);
    msg_free(m);
    return;
  }
  napi_value argv[10], undef;
  napi_get_undefined(env, &undef);
  napi_create_double(env, m->id, &argv[0]);
  napi_create_int32(env, m->op, &argv[1]);
  napi_create_double(env, (double)m->ino, &argv[2]);
  napi_create_double(env, (double)m->fh, &argv[3]);
  napi_create_double(env, m->a, &argv[4]);
  napi_create_double(env, m->b, &argv[5]);
  napi_create_double(env, m->c, &argv[6]);
  argv[7] = undef;
  argv[8] = undef;
  argv[9] = undef;
  if (m->name) napi_create_string_utf8(env, m->name, NAPI_AUTO_LENGTH, &argv[7]);
  if (m->name2) napi_create_string_utf8(env, m->name2, NAPI_AUTO_LENGTH, &argv[8]);
  if (m->data) {
    /* The bytes move to JavaScript without a copy: the buffer frees them. */
    if (napi_create_external_buffer(env, m->len, m->data, free_data, NULL, &argv[9]) == napi_ok) m->data = NULL;
    else napi_create_buffer_copy(env, m->len, m->data, NULL, &argv[9]);
  }
  napi_value global, result;
  napi_get_global(env, &global);
  napi_status st = napi_call_function(env, global, cb, 10, argv, &result);
  if (st != napi_ok) {
    /* The dispatcher threw: answer EIO rather than leave the kernel waiting. */
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    sreg_slot sl;
    if (m->id > 0 && sreg_slot_claim(m->id, &sl)) fuse_reply_err(sl.req, EIO);
  }
  msg_free(m);
}

/* ---- invalidation thread: notify_inval_* never runs inside a request handler ----
 * An entry's invalidation takes the kernel's lock of its folder, which the kernel holds while
 * a request on that folder waits for its answer: sent from a request handler (or waited for
 * by one) it would deadlock; from this thread it waits for the lock instead. */

typedef struct inval_item {
  uint64_t ino;  /* the inode (name == NULL: its pages) or the folder of the entry */
  char *name;    /* the entry's name (owned), or NULL */
} inval_item;

static pthread_t inval_thread;
static pthread_mutex_t inval_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inval_cond = PTHREAD_COND_INITIALIZER;
static inval_item *inval_q;
static size_t inval_head, inval_n, inval_cap;
static int inval_stop, inval_running;

/* Queues an invalidation (in order: an entry's goes before whatever is queued after it). */
static int inval_push(uint64_t ino, char *name) {
  pthread_mutex_lock(&inval_lock);
  if (!inval_running) {
    pthread_mutex_unlock(&inval_lock);
    return -ENOTCONN;
  }
  if (inval_head + inval_n == inval_cap) {
    if (inval_head > 0) {
      memmove(inval_q, inval_q + inval_head, inval_n * sizeof *inval_q);
      inval_head = 0;
    }
    if (inval_n == inval_cap) {
      size_t cap = inval_cap ? inval_cap * 2 : 64;
      inval_item *q = realloc(inval_q, cap * sizeof *q);
      if (!q) {
        pthread_mutex_unlock(&inval_lock);
        return -ENOMEM;
      }
      inval_q = q;
      inval_cap = cap;
    }
  }
  inval_q[inval_head + inval_n++] = (inval_item){ino, name};
  pthread_cond_signal(&inval_cond);
  pthread_mutex_unlock(&inval_lock);
  return 0;
}

int sreg_inval_queue(uint64_t ino) { return inval_push(ino, NULL); }

int sreg_inval_entry_queue(uint64_t parent, const char *name) {
  char *copy = strdup(name);
  if (!copy) return -ENOMEM;
  int rc = inval_push(parent, copy);
  if (rc != 0) free(copy);
  return rc;
}

static void *inval_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&inval_lock);
  for (;;) {
    while (inval_n == 0 && !inval_stop) pthread_cond_wait(&inval_cond, &inval_lock);
    if (inval_stop) break;
    inval_item it = inval_q[inval_head++];
    if (--inval_n == 0) inval_head = 0;
    pthread_mutex_unlock(&inval_lock);
    /* ENOENT: the kernel forgot it already */
    if (it.name) {
      fuse_lowlevel_notify_inval_entry(sreg_se, it.ino, it.name, strlen(it.name));
      free(it.name);
    } else {
      fuse_lowlevel_notify_inval_inode(sreg_se, it.ino, 0, 0);
    }
    pthread_mutex_lock(&inval_lock);
  }
  for (size_t i = 0; i < inval_n; i++) free(inval_q[inval_head + i].name);
  inval_n = 0;
  inval_head = 0;
  pthread_mutex_unlock(&inval_lock);
  return NULL;
}

/* ---- mount, loop, unmount ---- */

static pthread_t loop_thread;
static char *mount_dir;
static int conn_id = -1;

void sreg_set_connection(int id) { conn_id = id; }

static void *loop_main(void *arg) {
  (void)arg;
  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(cfg, 0);
  fuse_loop_cfg_set_max_threads(cfg, 16);
  fuse_session_loop_mt(sreg_se, cfg);
  fuse_loop_cfg_destroy(cfg);
  return NULL;
}

/* 0, or an errno with a message in `why`. */
int sreg_start(const char *mountpoint, const char *options, int debug, char *why, size_t whylen) {
  slots_init();
  sreg_revs_init();
  struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
  if (fuse_opt_add_arg(&args, "sreg") || fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, options) || (debug && fuse_opt_add_arg(&args, "-d"))) {
    fuse_opt_free_args(&args);
    snprintf(why, whylen, "out of memory");
    return ENOMEM;
  }
  sreg_se = fuse_session_new(&args, &sreg_ops, sizeof sreg_ops, NULL);
  fuse_opt_free_args(&args);
  if (!sreg_se) {
    snprintf(why, whylen, "libfuse refused the session options (%s)", options);
    return EINVAL;
  }
  if (fuse_session_mount(sreg_se, mountpoint) != 0) {
    fuse_session_destroy(sreg_se);
    sreg_se = NULL;
    snprintf(why, whylen, "libfuse could not mount %s (see the mount's stderr)", mountpoint);
    return EIO;
  }
  /* Failing that (out of memory), the mount simply has no passthrough. */
  if (sreg_pt_install(sreg_se) != 0) sreg_pt_want(0);
  mount_dir = strdup(mountpoint);
  pthread_mutex_lock(&inval_lock);
  inval_stop = 0;
  inval_running = pthread_create(&inval_thread, NULL, inval_main, NULL) == 0;
  pthread_mutex_unlock(&inval_lock);
  if (pthread_create(&loop_thread, NULL, loop_main, NULL) != 0) {
    snprintf(why, whylen, "cannot start the FUSE loop thread");
    return EAGAIN;
  }
  return 0;
}

/*
 * Unmounts `dir`. As root: a plain unmount, retried for up to 3 s while files are open on it
 * (EBUSY); then a forced one, which aborts the FUSE connection (the kernel's umount_begin: the
 * loop's threads wake up with ENODEV, a reader still holding a file gets ENOTCONN), and a lazy
 * detach of what is left. Without root: fusermount3 -u -z (the abort then comes from
 * /sys/fs/fuse/connections, see sreg_stop_loop). Returns 1 if it had to force.
 */
static int detach(const char *dir) {
  if (geteuid() == 0) {
    for (int i = 0; i < 30; i++) {
      if (umount2(dir, 0) == 0 || (errno != EBUSY && errno != EINTR)) return 0;
      struct timespec ts = {0, 100 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    umount2(dir, MNT_FORCE);
    umount2(dir, MNT_DETACH);
    return 1;
  }
  pid_t pid;
  char *const argv[] = {"fusermount3", "-u", "-q", "-z", (char *)dir, NULL};
  extern char **environ;
  if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) == 0) waitpid(pid, NULL, 0);
  return 0;
}

static int join_within(pthread_t t, int seconds) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += seconds;
  return pthread_timedjoin_np(t, NULL, &ts);
}

/* Off the JS thread: the loop ends (detach; abort the connection after 3 s); 1 if it was aborted, 2 if stuck. */
int sreg_stop_loop(void) {
  int aborted = 0;
  fuse_session_exit(sreg_se);
  if (detach(mount_dir)) aborted = 1;
  if (join_within(loop_thread, 3) != 0) {
    aborted = 1;
    if (conn_id >= 0) {
      char path[96];
      snprintf(path, sizeof path, "/sys/fs/fuse/connections/%d/abort", conn_id);
      int fd = open(path, O_WRONLY | O_CLOEXEC);
      if (fd >= 0) {
        if (write(fd, "1", 1) < 0) { /* nothing more to try */ }
        close(fd);
      }
    }
    if (join_within(loop_thread, 5) != 0) {
      pthread_detach(loop_thread);
      aborted = 2;
    }
  }
  pthread_mutex_lock(&inval_lock);
  int running = inval_running;
  inval_stop = 1;
  inval_running = 0;
  pthread_cond_signal(&inval_cond);
  pthread_mutex_unlock(&inval_lock);
  if (running) pthread_join(inval_thread, NULL);
  return aborted;
}

/* On the JS thread, after sreg_stop_loop: nothing can answer or read any more. */
void sreg_finish(int loop_stuck) {
  sreg_slot_fail_all(EIO);
  if (!loop_stuck) {
    fuse_session_unmount(sreg_se);
    fuse_session_destroy(sreg_se);
    sreg_revs_clear();
    sreg_pt_clear();
  }
  sreg_se = NULL;
  free(mount_dir);
  mount_dir = NULL;
  conn_id = -1;
}
