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
 * is written out here as `receiveFd`.
 *
 * Built by `beetroot build guest` with the host's gcc as a shared object against the host's
 * glibc; it needs only symbols every newer glibc (the guest's is trixie's) still provides. The
 * Node-API declarations are written from the ABI-stable C API (version 6 for bigint), so no
 * node headers or node-gyp are needed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
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

static void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  export_fn(env, exports, "syscall", js_syscall);
  export_fn(env, exports, "receiveFd", js_receive_fd);
  napi_value v;
  napi_create_int32(env, 1, &v);
  napi_set_named_property(env, exports, "abiVersion", v);
  return exports;
}
