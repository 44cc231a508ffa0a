/*
 * beetroot_net: the few Linux syscalls Node cannot make, for internal/network.
 *
 * Node has no AF_NETLINK sockets, no setns/unshare, no mount and no ioctl. Everything else
 * (netlink message encoding and parsing, CNI, policy) lives in TypeScript; this file only
 * opens file descriptors in the right network namespace and moves bytes.
 *
 * Namespace switches happen on a short-lived pthread, never on Node's own threads: setns and
 * unshare(CLONE_NEWNET) change the calling thread only, and a thread that dies takes its
 * namespace with it, so a failure can never leave the event loop in the wrong namespace. The
 * descriptors such a thread opens belong to the process and keep the namespace they were
 * created in (a netlink socket talks to that namespace's kernel tables; a TAP's netdev lives
 * there).
 *
 * The Node-API declarations below are written from the ABI-stable C API (N-API version 1
 * functions only), so the addon builds with a C compiler alone, without node headers or
 * node-gyp, and loads into any Node >= 10 and into a Node SEA from a file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- Node-API (js_native_api) declarations, ABI version 1 ---- */
typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* an enum in C: int-sized; 0 = napi_ok */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

extern napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *, napi_value *, napi_value *, void **);
extern napi_status napi_create_function(napi_env, const char *, size_t, napi_callback, void *, napi_value *);
extern napi_status napi_set_named_property(napi_env, napi_value, const char *, napi_value);
extern napi_status napi_create_object(napi_env, napi_value *);
extern napi_status napi_create_int32(napi_env, int32_t, napi_value *);
extern napi_status napi_get_value_int32(napi_env, napi_value, int32_t *);
extern napi_status napi_get_value_string_utf8(napi_env, napi_value, char *, size_t, size_t *);
extern napi_status napi_create_string_utf8(napi_env, const char *, size_t, napi_value *);
extern napi_status napi_get_buffer_info(napi_env, napi_value, void **, size_t *);
extern napi_status napi_create_buffer_copy(napi_env, size_t, const void *, void **, napi_value *);
extern napi_status napi_create_error(napi_env, napi_value, napi_value, napi_value *);
extern napi_status napi_throw(napi_env, napi_value);
extern napi_status napi_get_undefined(napi_env, napi_value *);

#define NAPI_AUTO_LENGTH ((size_t)-1)
#define MAX_PATH_LEN 4096

/* Throws Error(message) with .code = errno name (e.g. "EEXIST") and .errno = errno. */
static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[MAX_PATH_LEN + 256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value m, c, e, n;
  const char *name = strerrorname_np(err);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, m, &e);
  napi_create_int32(env, err, &n);
  napi_set_named_property(env, e, "errno", n);
  napi_throw(env, e);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_value m, c, e;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, "ERR_INVALID_ARG_TYPE", NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, m, &e);
  napi_throw(env, e);
  return NULL;
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value int_value(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

/* Reads argument i as a string into buf; an empty string is allowed. Returns 0 on success. */
static int arg_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != 0) return -1;
  if (len >= size - 1) return -1; /* possibly truncated */
  if (strlen(buf) != len) return -1; /* embedded NUL */
  return 0;
}

static int arg_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == 0 ? 0 : -1;
}

/* ---- work done on a private thread ---- */

enum op { OP_NETNS_CREATE, OP_NETLINK_SOCKET, OP_TAP_OPEN };

struct job {
  enum op op;
  char netns[MAX_PATH_LEN]; /* namespace to enter first ("" = stay) */
  char path[MAX_PATH_LEN];  /* OP_NETNS_CREATE: where to pin the new namespace */
  char ifname[IFNAMSIZ];    /* OP_TAP_OPEN: requested name, and the kernel's answer */
  int flags;                /* OP_TAP_OPEN: extra IFF_* flags */
  int protocol;             /* OP_NETLINK_SOCKET */
  int fd;                   /* result */
  int err;                  /* errno of the failing step, 0 on success */
  const char *step;         /* which step failed, for the error message */
};

static int fail(struct job *j, const char *step) {
  j->err = errno;
  j->step = step;
  return -1;
}

static int enter_netns(struct job *j) {
  if (j->netns[0] == '\0') return 0;
  int ns = open(j->netns, O_RDONLY | O_CLOEXEC);
  if (ns < 0) return fail(j, "open network namespace");
  int rc = setns(ns, CLONE_NEWNET);
  int saved = errno;
  close(ns);
  errno = saved;
  if (rc < 0) return fail(j, "setns(CLONE_NEWNET)");
  return 0;
}

static void netns_create(struct job *j) {
  /* The pin file must not exist: two callers racing for one name must not share a namespace. */
  int f = open(j->path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (f < 0) {
    fail(j, "create namespace pin file");
    return;
  }
  close(f);
  if (unshare(CLONE_NEWNET) < 0) {
    fail(j, "unshare(CLONE_NEWNET)");
    unlink(j->path);
    return;
  }
  char self[64];
  snprintf(self, sizeof self, "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
  if (mount(self, j->path, "none", MS_BIND, NULL) < 0) {
    fail(j, "bind-mount the new namespace");
    unlink(j->path);
    return;
  }
  j->fd = -1;
}

static void netlink_socket(struct job *j) {
  if (enter_netns(j) < 0) return;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, j->protocol);
  if (fd < 0) {
    fail(j, "socket(AF_NETLINK)");
    return;
  }
  int one = 1;
  /* Extended acks carry the kernel's own text for an error (e.g. "Exclusivity flag on"). */
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  int size = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  /* The kernel answers rtnetlink requests synchronously; a reply that takes seconds is a bug. */
  struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    fail(j, "bind(AF_NETLINK)");
    close(fd);
    return;
  }
  j->fd = fd;
}

static void tap_open(struct job *j) {
  if (enter_netns(j) < 0) return;
  /* The netdev is created in the namespace of the thread that opens /dev/net/tun. */
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    fail(j, "open /dev/net/tun");
    return;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | j->flags);
  memcpy(ifr.ifr_name, j->ifname, strnlen(j->ifname, IFNAMSIZ - 1));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    fail(j, "ioctl(TUNSETIFF)");
    close(fd);
    return;
  }
  memcpy(j->ifname, ifr.ifr_name, IFNAMSIZ);
  j->ifname[IFNAMSIZ - 1] = '\0';
  j->fd = fd;
}

static void *run_job(void *arg) {
  struct job *j = arg;
  switch (j->op) {
  case OP_NETNS_CREATE:
    netns_create(j);
    break;
  case OP_NETLINK_SOCKET:
    netlink_socket(j);
    break;
  case OP_TAP_OPEN:
    tap_open(j);
    break;
  }
  return NULL;
}

/* Runs the job on a fresh thread and waits: the thread's namespaces die with it. */
static int run_on_thread(struct job *j) {
  j->fd = -1;
  j->err = 0;
  j->step = "";
  pthread_t t;
  int rc = pthread_create(&t, NULL, run_job, j);
  if (rc != 0) {
    j->err = rc;
    j->step = "pthread_create";
    return -1;
  }
  pthread_join(t, NULL);
  return j->err == 0 ? 0 : -1;
}

static napi_value throw_job(napi_env env, struct job *j, const char *subject) {
  char what[MAX_PATH_LEN + 128];
  snprintf(what, sizeof what, "%s (%s)", j->step, subject);
  return throw_errno(env, j->err, what);
}

/* ---- exported functions ---- */

/* netnsCreate(path): a new network namespace, pinned by a bind mount at path. */
static napi_value js_netns_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  static struct job j;
  memset(&j, 0, sizeof j);
  j.op = OP_NETNS_CREATE;
  if (argc < 1 || arg_string(env, argv[0], j.path, sizeof j.path) < 0 || j.path[0] != '/')
    return throw_type(env, "netnsCreate(path): path must be an absolute path");
  if (run_on_thread(&j) < 0) return throw_job(env, &j, j.path);
  return undefined(env);
}

/* makeSharedMount(dir): like iproute2 for /run/netns, so pins propagate to peer mount namespaces. */
static napi_value js_make_shared_mount(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char dir[MAX_PATH_LEN];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || arg_string(env, argv[0], dir, sizeof dir) < 0 || dir[0] != '/')
    return throw_type(env, "makeSharedMount(dir): dir must be an absolute path");
  if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) == 0) return undefined(env);
  if (errno != EINVAL) return throw_errno(env, errno, "mount --make-rshared");
  /* Not a mount point yet: make it one, then share it. */
  if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0) return throw_errno(env, errno, "mount --rbind dir dir");
  if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0) return throw_errno(env, errno, "mount --make-rshared");
  return undefined(env);
}

/* umount(path, flags): umount2(2). */
static napi_value js_umount(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char path[MAX_PATH_LEN];
  int32_t flags = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || arg_string(env, argv[0], path, sizeof path) < 0 || arg_int(env, argv[1], &flags) < 0)
    return throw_type(env, "umount(path, flags): expected a string and an int");
  if (umount2(path, flags) < 0) {
    char what[MAX_PATH_LEN + 16];
    snprintf(what, sizeof what, "umount2 %s", path);
    return throw_errno(env, errno, what);
  }
  return undefined(env);
}

/* netlinkSocket(netnsPath, protocol): fd of a bound netlink socket in that namespace ("" = ours). */
static napi_value js_netlink_socket(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  static struct job j;
  memset(&j, 0, sizeof j);
  j.op = OP_NETLINK_SOCKET;
  int32_t proto = 0;
  if (argc < 2 || arg_string(env, argv[0], j.netns, sizeof j.netns) < 0 || arg_int(env, argv[1], &proto) < 0)
    return throw_type(env, "netlinkSocket(netnsPath, protocol): expected a string and an int");
  j.protocol = proto;
  if (run_on_thread(&j) < 0) return throw_job(env, &j, j.netns[0] ? j.netns : "current namespace");
  return int_value(env, j.fd);
}

/* netlinkSend(fd, buffer): one datagram to the kernel. */
static napi_value js_netlink_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  void *data;
  size_t len;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || arg_int(env, argv[0], &fd) < 0 || napi_get_buffer_info(env, argv[1], &data, &len) != 0)
    return throw_type(env, "netlinkSend(fd, buffer): expected an int and a Buffer");
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, errno, "sendto(netlink)");
  return int_value(env, (int32_t)n);
}

/* netlinkRecv(fd): the next datagram, sized exactly (peeked first, so nothing is truncated). */
static napi_value js_netlink_recv(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || arg_int(env, argv[0], &fd) < 0) return throw_type(env, "netlinkRecv(fd): expected an int");
  ssize_t size;
  do {
    size = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
  } while (size < 0 && errno == EINTR);
  if (size < 0) return throw_errno(env, errno == EAGAIN ? ETIMEDOUT : errno, "recv(netlink)");
  void *buf = malloc(size > 0 ? (size_t)size : 1);
  if (!buf) return throw_errno(env, ENOMEM, "recv(netlink)");
  ssize_t n;
  do {
    n = recv(fd, buf, (size_t)size, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    int e = errno;
    free(buf);
    return throw_errno(env, e == EAGAIN ? ETIMEDOUT : e, "recv(netlink)");
  }
  napi_value out;
  void *copy;
  napi_status st = napi_create_buffer_copy(env, (size_t)n, buf, &copy, &out);
  free(buf);
  if (st != 0) return throw_errno(env, ENOMEM, "netlinkRecv: buffer");
  return out;
}

/* tapOpen(netnsPath, name, extraFlags): {fd, name} of a new TAP created inside that namespace. */
static napi_value js_tap_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  static struct job j;
  memset(&j, 0, sizeof j);
  j.op = OP_TAP_OPEN;
  int32_t flags = 0;
  if (argc < 3 || arg_string(env, argv[0], j.netns, sizeof j.netns) < 0 ||
      arg_string(env, argv[1], j.ifname, sizeof j.ifname) < 0 || arg_int(env, argv[2], &flags) < 0)
    return throw_type(env, "tapOpen(netnsPath, name, flags): expected two strings (name < 16 bytes) and an int");
  j.flags = flags & (IFF_VNET_HDR | IFF_MULTI_QUEUE);
  if (run_on_thread(&j) < 0) return throw_job(env, &j, j.ifname);
  napi_value out, name;
  napi_create_object(env, &out);
  napi_set_named_property(env, out, "fd", int_value(env, j.fd));
  napi_create_string_utf8(env, j.ifname, NAPI_AUTO_LENGTH, &name);
  napi_set_named_property(env, out, "name", name);
  return out;
}

static void export_fn(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  export_fn(env, exports, "netnsCreate", js_netns_create);
  export_fn(env, exports, "makeSharedMount", js_make_shared_mount);
  export_fn(env, exports, "umount", js_umount);
  export_fn(env, exports, "netlinkSocket", js_netlink_socket);
  export_fn(env, exports, "netlinkSend", js_netlink_send);
  export_fn(env, exports, "netlinkRecv", js_netlink_recv);
  export_fn(env, exports, "tapOpen", js_tap_open);
  napi_value v;
  napi_create_int32(env, 1, &v);
  napi_set_named_property(env, exports, "abiVersion", v);
  return exports;
}
