/*
 * vminitd_sys: the system calls vminitd makes that neither Bun nor Node expose (mount, reboot,
 * wait4 on arbitrary pids, AF_VSOCK and netlink sockets, the clock, the hostname, SCM_RIGHTS),
 * as a Node-API addon that Bun loads with process.dlopen.
 *
 * Why not bun:ffi: bun:ffi refuses to run without JavaScriptCore's JIT, and under TCG the JIT's
 * output is fresh guest code QEMU must translate again; running vminitd with BUN_JSC_useJIT=0
 * is the largest boot-time saving we measured (docs/boot-time.md). A Node-API addon is plain
 * native code and works with the JIT off.
 *
 * The interface is deliberately small: `syscall(nr, ...args)` makes one raw Linux system call and
 * returns its result, or -errno (the kernel's own convention, so errno never has to be read back
 * later from JS). Arguments are numbers, bigints, null (0) or byte views, which pass the address
 * of their first byte; the TypeScript side (guest/vminitd/sys/libc.ts) owns the syscall numbers
 * and struct layouts. The one call whose struct holds pointers (recvmsg with a control buffer)
 * is written out here as `receiveFd`, and the output pump (`pump`, below) is native because copying
 * a container's output in JS cost half of the guest's only vCPU (docs/shim.md, "Stdout throughput").
 *
 * Built by `beetroot build guest` with the host's gcc as a shared object against the host's
 * glibc; it needs only symbols every newer glibc (the guest's is trixie's) still provides. The
 * Node-API declarations are written from the ABI-stable C API (version 6 for bigint), so no
 * node headers or node-gyp are needed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* an enum in C: int-sized; 0 = napi_ok */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
typedef enum {
  napi_undefined,
  napi_null,
  napi_boolean,
  napi_number,
  napi_string,
  napi_symbol,
  napi_object,
  napi_function,
  napi_external,
  napi_bigint,
} napi_valuetype;
typedef int napi_typedarray_type;
typedef struct napi_deferred__ *napi_deferred;
typedef struct napi_threadsafe_function__ *napi_threadsafe_function;
typedef void (*napi_finalize)(napi_env env, void *data, void *hint);
typedef void (*napi_threadsafe_function_call_js)(napi_env env, napi_value js_callback, void *context, void *data);
typedef enum { napi_tsfn_release, napi_tsfn_abort } napi_threadsafe_function_release_mode;
typedef enum { napi_tsfn_nonblocking, napi_tsfn_blocking } napi_threadsafe_function_call_mode;

extern napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *, napi_value *, napi_value *, void **);
extern napi_status napi_create_function(napi_env, const char *, size_t, napi_callback, void *, napi_value *);
extern napi_status napi_set_named_property(napi_env, napi_value, const char *, napi_value);
extern napi_status napi_typeof(napi_env, napi_value, napi_valuetype *);
extern napi_status napi_get_value_double(napi_env, napi_value, double *);
extern napi_status napi_get_value_bigint_int64(napi_env, napi_value, int64_t *, _Bool *);
extern napi_status napi_is_typedarray(napi_env, napi_value, _Bool *);
extern napi_status napi_get_typedarray_info(napi_env, napi_value, napi_typedarray_type *, size_t *, void **,
                                            napi_value *, size_t *);
extern napi_status napi_is_arraybuffer(napi_env, napi_value, _Bool *);
extern napi_status napi_get_arraybuffer_info(napi_env, napi_value, void **, size_t *);
extern napi_status napi_is_dataview(napi_env, napi_value, _Bool *);
extern napi_status napi_get_dataview_info(napi_env, napi_value, size_t *, void **, napi_value *, size_t *);
extern napi_status napi_create_double(napi_env, double, napi_value *);
extern napi_status napi_create_int32(napi_env, int32_t, napi_value *);
extern napi_status napi_throw_type_error(napi_env, const char *, const char *);
extern napi_status napi_get_boolean(napi_env, _Bool, napi_value *);
extern napi_status napi_create_object(napi_env, napi_value *);
extern napi_status napi_create_string_utf8(napi_env, const char *, size_t, napi_value *);
extern napi_status napi_create_error(napi_env, napi_value, napi_value, napi_value *);
extern napi_status napi_create_promise(napi_env, napi_deferred *, napi_value *);
extern napi_status napi_resolve_deferred(napi_env, napi_deferred, napi_value);
extern napi_status napi_reject_deferred(napi_env, napi_deferred, napi_value);
/* Node-API 4: the only way a thread of ours may get back onto the JS thread. */
extern napi_status napi_create_threadsafe_function(napi_env, napi_value, napi_value, napi_value, size_t, size_t,
                                                   void *, napi_finalize, void *, napi_threadsafe_function_call_js,
                                                   napi_threadsafe_function *);
extern napi_status napi_call_threadsafe_function(napi_threadsafe_function, void *,
                                                 napi_threadsafe_function_call_mode);
extern napi_status napi_release_threadsafe_function(napi_threadsafe_function, napi_threadsafe_function_release_mode);

#define NAPI_AUTO_LENGTH ((size_t)-1)
#define MAX_ARGS 6

/* One argument as a machine word: the address of a byte view's data, or an integer. */
static int arg_word(napi_env env, napi_value v, long *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != 0) return -1;
  if (t == napi_undefined || t == napi_null) {
    *out = 0;
    return 0;
  }
  if (t == napi_number) {
    double d;
    if (napi_get_value_double(env, v, &d) != 0 || d != (double)(long)d) return -1;
    *out = (long)d;
    return 0;
  }
  if (t == napi_bigint) {
    int64_t i;
    _Bool lossless;
    if (napi_get_value_bigint_int64(env, v, &i, &lossless) != 0) return -1;
    *out = (long)i;
    return 0;
  }
  _Bool is = 0;
  void *data = NULL;
  if (napi_is_typedarray(env, v, &is) == 0 && is) {
    napi_typedarray_type type;
    size_t length, offset;
    napi_value buffer;
    if (napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, &offset) != 0) return -1;
  } else if (napi_is_dataview(env, v, &is) == 0 && is) {
    size_t length, offset;
    napi_value buffer;
    if (napi_get_dataview_info(env, v, &length, &data, &buffer, &offset) != 0) return -1;
  } else if (napi_is_arraybuffer(env, v, &is) == 0 && is) {
    size_t length;
    if (napi_get_arraybuffer_info(env, v, &data, &length) != 0) return -1;
  } else {
    return -1;
  }
  *out = (long)(uintptr_t)data;
  return 0;
}

static napi_value number(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

/* syscall(nr, ...args): the raw result, or -errno. */
static napi_value js_syscall(napi_env env, napi_callback_info info) {
  size_t argc = MAX_ARGS + 1;
  napi_value argv[MAX_ARGS + 1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  long words[MAX_ARGS + 1] = {0};
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "syscall(nr, ...args): nr missing");
    return NULL;
  }
  for (size_t i = 0; i < argc; i++) {
    if (arg_word(env, argv[i], &words[i]) < 0) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                            "syscall(nr, ...args): each argument must be an integer, a bigint, null or a byte view");
      return NULL;
    }
  }
  long r = syscall(words[0], words[1], words[2], words[3], words[4], words[5], words[6]);
  return number(env, r == -1 ? -(double)errno : (double)r);
}

/*
 * receiveFd(fd): recvmsg for one descriptor passed with SCM_RIGHTS (crun's --console-socket).
 * Returns the descriptor (>= 0, close-on-exec), -errno, or -1000 - n when n bytes arrived without
 * a descriptor (n = 0: the peer closed).
 */
static napi_value js_receive_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  long fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || arg_word(env, argv[0], &fd) < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "receiveFd(fd): fd must be an integer");
    return NULL;
  }
  char data[256];
  struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  ssize_t n = recvmsg((int)fd, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return number(env, -(double)errno);
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int passed;
      memcpy(&passed, CMSG_DATA(c), sizeof passed);
      return number(env, passed);
    }
  }
  return number(env, -1000 - (double)n);
}

/*
 * pump(inFd, outFd, cancelFd) -> Promise<{ bytes, readErrno, writeErrno, cancelled, spliced }>
 *
 * Copies inFd (a pipe's read end, or a pty master) into outFd (a connected stream socket) until
 * inFd reaches EOF, on a thread of its own, then resolves. A pump lives as long as its process's
 * output, so it must not sit in a shared work pool (libuv's or Bun's) where a few long pumps would
 * starve everything else queued there.
 *
 * A pipe goes to the socket with splice(2): the kernel moves the pipe's pages into the socket with
 * no copy through user space and no JS per chunk, which is what made the guest's single vCPU fast
 * enough (measured: a Bun read/write loop ~25-37 MB/s, a splice loop 70 MB/s at a 16 KiB vsock
 * window, 150 MB/s at 256 KiB).
 * Anything splice refuses (EINVAL: a pty master, which is no pipe) is copied with read/write.
 *
 * Ending:
 * - EOF on inFd (every writer closed; for a pty, EIO once its last slave closed -> readErrno EIO).
 * - A write error (the host went away): writeErrno is set and the pump keeps reading and dropping
 *   until EOF, so the process is never blocked on a full pipe nobody empties.
 * - cancelFd readable or hung up (the caller closes its other end): cancelled, whatever the pump
 *   was waiting for. So the pump never blocks inside a system call: outFd is switched to
 *   non-blocking mode (it must be the pump's alone) and every wait is a poll(2) that also watches
 *   cancelFd. inFd's flags are left alone (a pty master is shared with the stdin direction).
 * The pump closes nothing: the caller owns all three descriptors and closes them after it settled.
 */
#define PUMP_CHUNK (1 << 20)
#define COPY_BUFFER (64 * 1024)

struct pump {
  int in, out, cancel;
  napi_deferred deferred;
  napi_threadsafe_function tsfn;
  double bytes;
  int read_errno, write_errno;
  _Bool cancelled, spliced;
};

enum wait_result { READY, CANCELLED, FAILED };

/* Waits until fd is ready for `events` (or has an error or hung up, which the next call reports). */
static enum wait_result wait_for(struct pump *p, int fd, short events, int *errno_out) {
  struct pollfd f[2] = {{.fd = fd, .events = events}, {.fd = p->cancel, .events = POLLIN}};
  for (;;) {
    if (poll(f, 2, -1) >= 0) {
      if (f[1].revents == 0) return READY;
      p->cancelled = 1;
      return CANCELLED;
    }
    if (errno != EINTR) {
      *errno_out = errno;
      return FAILED;
    }
  }
}

/* Writes all of buf: READY, CANCELLED, or FAILED with p->write_errno set. */
static enum wait_result write_all(struct pump *p, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(p->out, buf, len);
    if (n >= 0) {
      buf += n;
      len -= (size_t)n;
    } else if (errno == EAGAIN) {
      enum wait_result w = wait_for(p, p->out, POLLOUT, &p->write_errno);
      if (w != READY) return w;
    } else if (errno != EINTR) {
      p->write_errno = errno;
      return FAILED;
    }
  }
  return READY;
}

/* read/write until EOF; once a write failed, reads and drops. */
static void copy_loop(struct pump *p) {
  char *buf = malloc(COPY_BUFFER);
  if (buf == NULL) {
    p->read_errno = ENOMEM;
    return;
  }
  for (;;) {
    if (wait_for(p, p->in, POLLIN, &p->read_errno) != READY) break;
    ssize_t n = read(p->in, buf, COPY_BUFFER);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      p->read_errno = errno;
      break;
    }
    p->bytes += (double)n;
    if (p->write_errno == 0 && write_all(p, buf, (size_t)n) == CANCELLED) break;
  }
  free(buf);
}

static void splice_loop(struct pump *p) {
  /*
   * The pipe keeps its default 64 KiB. A 1 MiB pipe (F_SETPIPE_SZ) was 35 % faster (bench: 262-271
   * vs 197-199 MiB/s) but lets 1 MiB more sit in the guest when the process exits, and the exit
   * report waits only 2 s for the rest (task-service.ts DRAIN_GRACE_MS): a slow reader would lose it.
   */
  for (;;) {
    ssize_t n = splice(p->in, NULL, p->out, NULL, PUMP_CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      p->spliced = 1;
      p->bytes += (double)n;
      continue;
    }
    if (n == 0) return;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      /* Either side may be the one not ready: wait for both, in turn (no spinning on either). */
      if (wait_for(p, p->in, POLLIN, &p->read_errno) != READY) return;
      if (wait_for(p, p->out, POLLOUT, &p->write_errno) != READY) return;
      continue;
    }
    if (errno != EINVAL || p->spliced) p->write_errno = errno;
    copy_loop(p); /* EINVAL first: no splice for this pair; otherwise: drain and drop until EOF */
    return;
  }
}

static void *pump_thread(void *arg) {
  struct pump *p = arg;
  int flags = fcntl(p->out, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) (void)fcntl(p->out, F_SETFL, flags | O_NONBLOCK);
  splice_loop(p);
  napi_threadsafe_function tsfn = p->tsfn; /* p belongs to the JS thread once handed over */
  napi_call_threadsafe_function(tsfn, p, napi_tsfn_blocking);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static void set_number(napi_env env, napi_value obj, const char *name, double v) {
  napi_set_named_property(env, obj, name, number(env, v));
}

static void set_bool(napi_env env, napi_value obj, const char *name, _Bool v) {
  napi_value b;
  napi_get_boolean(env, v, &b);
  napi_set_named_property(env, obj, name, b);
}

/* On the JS thread: settles the pump's promise. env is NULL when the environment is going away. */
static void pump_settle(napi_env env, napi_value js_callback, void *context, void *data) {
  (void)js_callback;
  (void)context;
  struct pump *p = data;
  if (env != NULL) {
    napi_value result;
    napi_create_object(env, &result);
    set_number(env, result, "bytes", p->bytes);
    set_number(env, result, "readErrno", p->read_errno);
    set_number(env, result, "writeErrno", p->write_errno);
    set_bool(env, result, "cancelled", p->cancelled);
    set_bool(env, result, "spliced", p->spliced);
    napi_resolve_deferred(env, p->deferred, result);
  }
  free(p);
}

static napi_value js_pump(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  long fds[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  for (size_t i = 0; i < 3; i++) {
    napi_valuetype t = napi_undefined;
    if (argc < 3 || napi_typeof(env, argv[i], &t) != 0 || t != napi_number || arg_word(env, argv[i], &fds[i]) < 0 ||
        fds[i] < 0 || fds[i] > INT32_MAX) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "pump(inFd, outFd, cancelFd): each must be a descriptor");
      return NULL;
    }
  }
  struct pump *p = calloc(1, sizeof *p);
  if (p == NULL) {
    napi_throw_type_error(env, "ENOMEM", "pump: out of memory");
    return NULL;
  }
  p->in = (int)fds[0];
  p->out = (int)fds[1];
  p->cancel = (int)fds[2];
  napi_value promise, name;
  napi_create_string_utf8(env, "vminitd_sys.pump", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &p->deferred, &promise) != 0 ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, pump_settle, &p->tsfn) != 0) {
    free(p);
    napi_throw_type_error(env, "ERR_NAPI", "pump: cannot create its promise or thread-safe function");
    return NULL;
  }
  /* The thread takes no signals: process signals stay with Bun's threads, and a SIGPIPE from a
   * socket whose peer left stays pending on this thread and dies with it (the write sees EPIPE).
   * Its own thread, not a shared work pool: a pump runs as long as its process's output does. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t thread;
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&thread, &attr, pump_thread, p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    napi_value code, msg, error;
    napi_create_string_utf8(env, "ERR_PUMP_THREAD", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &error);
    napi_reject_deferred(env, p->deferred, error);
    napi_release_threadsafe_function(p->tsfn, napi_tsfn_abort);
    free(p);
  }
  return promise;
}

static void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  export_fn(env, exports, "syscall", js_syscall);
  export_fn(env, exports, "receiveFd", js_receive_fd);
  export_fn(env, exports, "pump", js_pump);
  napi_value v;
  napi_create_int32(env, 2, &v);
  napi_set_named_property(env, exports, "abiVersion", v);
  return exports;
}
