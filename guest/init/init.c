// /sbin/init of the beetroot guest: mounts /proc, then becomes Bun running vminitd.
//
// Bun cannot start without /proc: JavaScriptCore asks glibc for the main thread's stack bounds
// (pthread_getattr_np), which glibc reads from /proc/self/maps, and Bun aborts when that fails.
// The kernel starts init with nothing mounted but devtmpfs, so this launcher mounts /proc first.
// vminitd does everything else (it finds /proc mounted and leaves it).
//
// If Bun cannot be started, the VM powers off instead of panicking: the host sees QEMU exit and
// the console says why.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUN "/usr/bin/bun"
#define VMINITD "/usr/lib/beetroot/vminitd.js"

int main(void) {
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0 && errno != EBUSY) {
    dprintf(2, "beetroot-init: mount /proc: %s\n", strerror(errno));
  }
  // The uptime at which Bun is started, for vminitd's boot timeline (Bun's own start-up is slow
  // under TCG, and this separates it from the kernel's part).
  char uptime[64] = "BEETROOT_INIT_UPTIME=";
  int fd = open("/proc/uptime", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    size_t off = strlen(uptime);
    ssize_t n = read(fd, uptime + off, sizeof uptime - off - 1);
    close(fd);
    if (n > 0) {
      uptime[off + n] = 0;
      char *space = strchr(uptime + off, ' ');
      if (space) *space = 0;
    }
  }
  char *const argv[] = {BUN, VMINITD, NULL};
  // A fresh environment: the kernel's (HOME=/ TERM=linux plus stray boot words) is not ours to pass on.
  char *const envp[] = {
      "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
      "HOME=/root",
      "TERM=linux",
      // No transpiler cache: the root filesystem is read-only and vminitd is already plain JS.
      "BUN_RUNTIME_TRANSPILER_CACHE_PATH=0",
      // JavaScriptCore's JIT off, interpreter only: under TCG every JIT tier's output is new guest
      // code QEMU must translate again, and its compiler threads compete with the main thread on
      // one vCPU; for an I/O-bound PID 1 that costs more than it wins (docs/boot-time.md).
      // vminitd's system calls go through a Node-API addon because bun:ffi needs the JIT.
      "BUN_JSC_useJIT=0",
      uptime,
      NULL,
  };
  execve(BUN, argv, envp);
  dprintf(2, "beetroot-init: exec %s: %s; powering off\n", BUN, strerror(errno));
  sync();
  reboot(RB_POWER_OFF);
  return 1;
}
