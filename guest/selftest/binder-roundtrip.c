// binder-roundtrip: proves the guest kernel's binder driver works the way Android uses it.
//
//   1. mounts a binderfs instance (unless one is already mounted at the given directory),
//   2. allocates a fresh binder device through binder-control (BINDER_CTL_ADD),
//   3. forks: the child becomes the context manager (handle 0) of that device, the parent sends it a
//      BC_TRANSACTION and waits for BR_REPLY; both sides check the payload they receive and the
//      sender pid the driver reports,
//   4. removes the device and unmounts what it mounted.
//
// Exit status 0 only when every step succeeded; each step prints one line so a failure says where.
// Usage: binder-roundtrip [binderfs-dir]   (default /dev/binderfs)
//
// Built static (`gcc -static -O2`) so it runs in the guest without any library.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/android/binder.h>
#include <linux/android/binderfs.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAP_BYTES (128 * 1024)
#define TIMEOUT_SECONDS 20
#define TXN_CODE 0x42454554u /* "BEET" */

static const char *role = "main";

static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("binder-roundtrip[%s pid=%d]: ", role, (int)getpid());
  vprintf(fmt, ap);
  printf("\n");
  fflush(stdout);
  va_end(ap);
}

static void die(const char *fmt, ...) {
  va_list ap;
  int err = errno;
  va_start(ap, fmt);
  printf("binder-roundtrip[%s pid=%d]: FAIL: ", role, (int)getpid());
  vprintf(fmt, ap);
  if (err != 0) printf(" (errno %d: %s)", err, strerror(err));
  printf("\n");
  fflush(stdout);
  va_end(ap);
  exit(1);
}

struct binder {
  int fd;
  void *map;
};

static struct binder binder_open(const char *dev) {
  struct binder b;
  struct binder_version version = {0};
  b.fd = open(dev, O_RDWR | O_CLOEXEC);
  if (b.fd < 0) die("open %s", dev);
  if (ioctl(b.fd, BINDER_VERSION, &version) < 0) die("BINDER_VERSION");
  if (version.protocol_version != BINDER_CURRENT_PROTOCOL_VERSION)
    die("kernel speaks binder protocol %d, expected %d", version.protocol_version,
        BINDER_CURRENT_PROTOCOL_VERSION);
  // The driver delivers transaction buffers into this read-only mapping of the receiver.
  b.map = mmap(NULL, MAP_BYTES, PROT_READ, MAP_PRIVATE, b.fd, 0);
  if (b.map == MAP_FAILED) die("mmap %s", dev);
  return b;
}

// One BINDER_WRITE_READ: writes `wlen` bytes of commands, then reads returns into `rbuf`.
static size_t binder_talk(struct binder *b, const void *wbuf, size_t wlen, void *rbuf, size_t rlen) {
  struct binder_write_read bwr = {0};
  bwr.write_buffer = (binder_uintptr_t)(uintptr_t)wbuf;
  bwr.write_size = wlen;
  bwr.read_buffer = (binder_uintptr_t)(uintptr_t)rbuf;
  bwr.read_size = rlen;
  for (;;) {
    if (ioctl(b->fd, BINDER_WRITE_READ, &bwr) == 0) break;
    if (errno != EINTR) die("BINDER_WRITE_READ");
  }
  if (bwr.write_consumed != wlen) die("driver consumed %llu of %zu command bytes", bwr.write_consumed, wlen);
  return bwr.read_consumed;
}

static void free_buffer(struct binder *b, binder_uintptr_t buffer) {
  struct {
    uint32_t cmd;
    binder_uintptr_t buffer;
  } __attribute__((packed)) cmd = {BC_FREE_BUFFER, buffer};
  binder_talk(b, &cmd, sizeof cmd, NULL, 0);
}

// Waits for the next return that is not BR_NOOP / BR_SPAWN_LOOPER, copying its payload out.
// Returns the BR_* code; `txn` is filled for BR_TRANSACTION / BR_REPLY.
static uint32_t next_return(struct binder *b, struct binder_transaction_data *txn) {
  static uint8_t rbuf[512];
  static size_t have = 0, pos = 0;
  for (;;) {
    while (pos < have) {
      uint32_t cmd;
      memcpy(&cmd, rbuf + pos, sizeof cmd);
      pos += sizeof cmd;
      size_t size = _IOC_SIZE(cmd);
      if (pos + size > have) die("truncated return 0x%x", cmd);
      if (cmd == BR_NOOP || cmd == BR_SPAWN_LOOPER) {
        pos += size;
        continue;
      }
      if ((cmd == BR_TRANSACTION || cmd == BR_REPLY) && txn) memcpy(txn, rbuf + pos, sizeof *txn);
      pos += size;
      return cmd;
    }
    have = binder_talk(b, NULL, 0, rbuf, sizeof rbuf);
    pos = 0;
  }
}

static void send_txn(struct binder *b, uint32_t bc, uint32_t handle, const char *payload) {
  struct {
    uint32_t cmd;
    struct binder_transaction_data txn;
  } __attribute__((packed)) w;
  memset(&w, 0, sizeof w);
  w.cmd = bc;
  w.txn.target.handle = handle;
  w.txn.code = TXN_CODE;
  w.txn.data_size = strlen(payload) + 1;
  w.txn.offsets_size = 0;
  w.txn.data.ptr.buffer = (binder_uintptr_t)(uintptr_t)payload;
  w.txn.data.ptr.offsets = 0;
  binder_talk(b, &w, sizeof w, NULL, 0);
}

static void expect_payload(const struct binder_transaction_data *txn, const char *want, const char *what) {
  const char *got = (const char *)(uintptr_t)txn->data.ptr.buffer;
  if (txn->data_size != strlen(want) + 1 || memcmp(got, want, txn->data_size) != 0)
    die("%s payload mismatch: got %llu bytes \"%.*s\", want \"%s\"", what, (unsigned long long)txn->data_size,
        (int)(txn->data_size > 200 ? 200 : txn->data_size), got, want);
}

static int run_context_manager(const char *dev, int ready_fd, pid_t client) {
  role = "server";
  alarm(TIMEOUT_SECONDS);
  struct binder b = binder_open(dev);
  if (ioctl(b.fd, BINDER_SET_CONTEXT_MGR, &(int32_t){0}) < 0) die("BINDER_SET_CONTEXT_MGR");
  uint32_t enter = BC_ENTER_LOOPER;
  binder_talk(&b, &enter, sizeof enter, NULL, 0);
  say("context manager registered on %s", dev);
  if (write(ready_fd, "R", 1) != 1) die("signal readiness");
  close(ready_fd);

  struct binder_transaction_data txn;
  uint32_t br = next_return(&b, &txn);
  if (br != BR_TRANSACTION) die("expected BR_TRANSACTION, got 0x%x", br);
  if (txn.code != TXN_CODE) die("transaction code 0x%x, want 0x%x", txn.code, TXN_CODE);
  if (txn.sender_pid != client) die("driver reports sender pid %d, want %d", txn.sender_pid, (int)client);
  char want[96];
  snprintf(want, sizeof want, "ping from client %d", (int)client);
  expect_payload(&txn, want, "request");
  say("BR_TRANSACTION from pid %d: \"%s\"", txn.sender_pid, want);

  char reply[96];
  snprintf(reply, sizeof reply, "pong from context manager %d", (int)getpid());
  free_buffer(&b, txn.data.ptr.buffer);
  send_txn(&b, BC_REPLY, 0, reply);
  br = next_return(&b, NULL);
  if (br != BR_TRANSACTION_COMPLETE) die("expected BR_TRANSACTION_COMPLETE after BC_REPLY, got 0x%x", br);
  say("BC_REPLY delivered");
  return 0;
}

static int run_client(const char *dev, pid_t server) {
  role = "client";
  struct binder b = binder_open(dev);
  char request[96];
  snprintf(request, sizeof request, "ping from client %d", (int)getpid());
  send_txn(&b, BC_TRANSACTION, 0, request);
  say("BC_TRANSACTION to handle 0: \"%s\"", request);

  struct binder_transaction_data txn;
  uint32_t br = next_return(&b, &txn);
  if (br != BR_TRANSACTION_COMPLETE) die("expected BR_TRANSACTION_COMPLETE, got 0x%x", br);
  br = next_return(&b, &txn);
  if (br == BR_DEAD_REPLY) die("BR_DEAD_REPLY: the context manager died");
  if (br == BR_FAILED_REPLY) die("BR_FAILED_REPLY");
  if (br != BR_REPLY) die("expected BR_REPLY, got 0x%x", br);
  char want[96];
  snprintf(want, sizeof want, "pong from context manager %d", (int)server);
  expect_payload(&txn, want, "reply");
  say("BR_REPLY: \"%s\"", want);
  free_buffer(&b, txn.data.ptr.buffer);
  return 0;
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/dev/binderfs";
  char control[512], dev[512];
  int mounted = 0;
  alarm(TIMEOUT_SECONDS);

  snprintf(control, sizeof control, "%s/binder-control", dir);
  if (access(control, F_OK) != 0) {
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) die("mkdir %s", dir);
    // Not MS_NODEV: binder-control and the devices it allocates are device nodes in this mount.
    if (mount("binder", dir, "binder", MS_NOSUID | MS_NOEXEC, NULL) < 0)
      die("mount binderfs on %s", dir);
    mounted = 1;
    say("mounted binderfs on %s", dir);
  } else {
    say("using the binderfs mounted on %s", dir);
  }

  struct binderfs_device device;
  memset(&device, 0, sizeof device);
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  snprintf(device.name, sizeof device.name, "selftest-%d-%ld%09ld", (int)getpid(), (long)now.tv_sec,
           now.tv_nsec);
  int ctl = open(control, O_RDONLY | O_CLOEXEC);
  if (ctl < 0) die("open %s", control);
  if (ioctl(ctl, BINDER_CTL_ADD, &device) < 0) die("BINDER_CTL_ADD %s", device.name);
  close(ctl);
  snprintf(dev, sizeof dev, "%s/%s", dir, device.name);
  say("BINDER_CTL_ADD allocated %s (major %u minor %u)", dev, device.major, device.minor);

  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) die("pipe");
  pid_t client = getpid();
  pid_t server = fork();
  if (server < 0) die("fork");
  if (server == 0) {
    close(ready[0]);
    _exit(run_context_manager(dev, ready[1], client));
  }
  close(ready[1]);
  char byte;
  ssize_t n;
  while ((n = read(ready[0], &byte, 1)) < 0 && errno == EINTR) {
  }
  if (n != 1) {
    errno = 0;
    die("context manager exited before it was ready");
  }
  close(ready[0]);

  int rc = run_client(dev, server);
  int status = 0;
  if (waitpid(server, &status, 0) < 0) die("waitpid context manager");
  role = "main";
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    errno = 0;
    if (WIFSIGNALED(status)) die("context manager killed by signal %d", WTERMSIG(status));
    die("context manager exited with %d", WEXITSTATUS(status));
  }

  if (unlink(dev) < 0) die("remove %s", dev);
  if (mounted && umount2(dir, MNT_DETACH) < 0) die("unmount %s", dir);
  say("OK: transaction and reply round-tripped through %s", dev);
  return rc;
}
