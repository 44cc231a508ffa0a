/**
 * The system calls vminitd needs as PID 1 that neither Bun nor Node expose: mount, reboot, wait4
 * on arbitrary pids, AF_VSOCK sockets, the clock and the hostname. Bun-only: they go through the
 * vminitd_sys Node-API addon (guest/native), which works with JavaScriptCore's JIT off, unlike
 * bun:ffi (docs/boot-time.md). Each call returns its result or -errno, so no errno has to be read
 * back afterwards. Syscall numbers and struct layouts are x86-64's, the only guest architecture.
 */
import { receiveFd as receiveFdRaw, sys } from "../../native/vminitd-sys.ts";
import { errnoName } from "./errno.ts";

/** x86-64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
const NR = {
  close: 3,
  ioctl: 16,
  fcntl: 72,
  socket: 41,
  connect: 42,
  bind: 49,
  listen: 50,
  socketpair: 53,
  wait4: 61,
  kill: 62,
  personality: 135,
  prctl: 157,
  sync: 162,
  mount: 165,
  umount2: 166,
  reboot: 169,
  sethostname: 170,
  clock_settime: 227,
  accept4: 288,
  pipe2: 293,
} as const;

const ESRCH = 3;
const EAGAIN = 11;

export class SyscallError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    detail: string,
  ) {
    super(`${call}${detail ? ` ${detail}` : ""}: ${errnoName(errno)} (errno ${errno})`);
    this.name = "SyscallError";
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

/** Runs a call; -errno becomes a SyscallError naming the call and its arguments. */
function check(call: string, detail: string, r: number): number {
  if (r < 0) throw new SyscallError(call, -r, detail);
  return r;
}

function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}

const NULL = null;

export function mount(
  source: string,
  target: string,
  fstype: string,
  flags: number,
  data: string | null,
): void {
  check(
    "mount",
    `${fstype} on ${target}`,
    sys(NR.mount, cstr(source), cstr(target), cstr(fstype), flags, data === null ? NULL : cstr(data)),
  );
}

export function umount2(target: string, flags: number): void {
  check("umount2", target, sys(NR.umount2, cstr(target), flags));
}

const LINUX_REBOOT_MAGIC1 = 0xfee1dead;
const LINUX_REBOOT_MAGIC2 = 672274793;

export const RebootCommand = {
  powerOff: 0x4321fedc,
  restart: 0x01234567,
} as const;

export function reboot(cmd: number): void {
  check("reboot", "", sys(NR.reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, cmd, NULL));
}

export function sync(): void {
  sys(NR.sync);
}

/** personality(2) flag: programs exec'd from now on get a fixed address-space layout. */
export const ADDR_NO_RANDOMIZE = 0x0040000;
/** personality(2) with this argument only reads the current persona. */
const PERSONALITY_QUERY = 0xffff_ffff;

/** Adds flags to this process's personality (inherited by children, kept across exec); returns it. */
export function addPersonalityFlags(flags: number): number {
  const current = check("personality", "query", sys(NR.personality, PERSONALITY_QUERY));
  const wanted = current | flags;
  check("personality", `0x${wanted.toString(16)}`, sys(NR.personality, wanted));
  return wanted;
}

export function sethostname(name: string): void {
  const b = Buffer.from(name, "utf8");
  check("sethostname", name, sys(NR.sethostname, b, b.length));
}

const CLOCK_REALTIME = 0;

export function setRealtimeClock(epochMs: number): void {
  const ts = new BigInt64Array(2);
  ts[0] = BigInt(Math.floor(epochMs / 1000));
  ts[1] = BigInt(Math.floor((epochMs % 1000) * 1e6));
  check("clock_settime", "CLOCK_REALTIME", sys(NR.clock_settime, CLOCK_REALTIME, ts));
}

export const WNOHANG = 1;

/** waitpid(pid, WNOHANG): the reaped pid and its raw wait status, or null when it has not exited. */
export function waitpidNoHang(pid: number): { pid: number; status: number } | null {
  const status = new Int32Array(1);
  const r = check("waitpid", String(pid), sys(NR.wait4, pid, status, WNOHANG, NULL));
  return r === 0 ? null : { pid: r, status: status[0] ?? 0 };
}

/** kill(2); false when the process is already gone (ESRCH). */
export function kill(pid: number, signal: number): boolean {
  const r = sys(NR.kill, pid, signal);
  if (r === 0) return true;
  if (r === -ESRCH) return false;
  throw new SyscallError("kill", -r, `${pid} signal ${signal}`);
}

export const AF_UNIX = 1;
export const AF_VSOCK = 40;
export const SOCK_STREAM = 1;
export const SOCK_CLOEXEC = 0o2000000;

export function socket(domain: number, type: number): number {
  return check("socket", `domain ${domain}`, sys(NR.socket, domain, type, 0));
}

export function socketpair(domain: number, type: number): [number, number] {
  const fds = new Int32Array(2);
  check("socketpair", `domain ${domain}`, sys(NR.socketpair, domain, type, 0, fds));
  return [fds[0] ?? -1, fds[1] ?? -1];
}

/** Blocking connect(2) of `fd` to the encoded socket address. */
export function connect(fd: number, address: Uint8Array, describe: string): void {
  check("connect", describe, sys(NR.connect, fd, address, address.byteLength));
}

export function close(fd: number): void {
  sys(NR.close, fd);
}

const F_DUPFD_CLOEXEC = 1030;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;

/** Sets O_NONBLOCK on the open file `fd` refers to (shared with its duplicates). */
export function setNonBlocking(fd: number): void {
  const flags = check("fcntl", "F_GETFL", sys(NR.fcntl, fd, F_GETFL, 0));
  if (!(flags & O_NONBLOCK)) check("fcntl", "F_SETFL", sys(NR.fcntl, fd, F_SETFL, flags | O_NONBLOCK));
}

/** A close-on-exec duplicate of `fd` (the same open file), closed independently of it. */
export function dupCloexec(fd: number): number {
  return check("fcntl", "F_DUPFD_CLOEXEC", sys(NR.fcntl, fd, F_DUPFD_CLOEXEC, 0));
}

const PR_SET_CHILD_SUBREAPER = 36;

/** Makes this process adopt orphaned descendants, as PID 1 does; for running the reaper off-guest. */
export function becomeSubreaper(): void {
  check("prctl", "PR_SET_CHILD_SUBREAPER", sys(NR.prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
}

export const O_CLOEXEC = 0o2000000;
export const SOCK_NONBLOCK = 0o4000;
/** pipe2(O_CLOEXEC): [read end, write end]. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check("pipe2", "", sys(NR.pipe2, fds, O_CLOEXEC));
  return [fds[0] ?? -1, fds[1] ?? -1];
}

export function bind(fd: number, address: Uint8Array, describe: string): void {
  check("bind", describe, sys(NR.bind, fd, address, address.byteLength));
}

export function listen(fd: number, backlog: number): void {
  check("listen", "", sys(NR.listen, fd, backlog));
}

/** accept4 on a non-blocking socket: the new fd (non-blocking, cloexec), or null when none is waiting. */
export function acceptNonBlocking(fd: number): number | null {
  const r = sys(NR.accept4, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (r >= 0) return r;
  if (r === -EAGAIN) return null;
  throw new SyscallError("accept4", -r, "");
}

/**
 * recvmsg for one file descriptor passed with SCM_RIGHTS (crun's --console-socket protocol).
 * Returns null when nothing is there yet (non-blocking socket); throws when the peer closed
 * without sending a descriptor.
 */
export function receiveFd(fd: number): number | null {
  const r = receiveFdRaw(fd);
  if (r >= 0) return r;
  if (r === -EAGAIN) return null;
  if (r === -1000) throw new Error("console socket: peer closed without passing a terminal");
  if (r < -1000) throw new Error(`console socket: ${-1000 - r} bytes without a file descriptor`);
  throw new SyscallError("recvmsg", -r, "console socket");
}

const TIOCSWINSZ = 0x5414;

export function setWindowSize(fd: number, rows: number, cols: number): void {
  const ws = new Uint16Array([rows, cols, 0, 0]);
  check("ioctl", "TIOCSWINSZ", sys(NR.ioctl, fd, TIOCSWINSZ, ws));
}
