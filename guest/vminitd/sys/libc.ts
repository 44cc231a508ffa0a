/**
 * glibc calls vminitd needs as PID 1 that neither Bun nor Node expose: mount, reboot, waitpid on
 * arbitrary pids, AF_VSOCK sockets, the clock and the hostname. Bun-only (bun:ffi).
 *
 * errno is read right after each call, on the same thread, before any other JS runs: nothing
 * between the foreign call's return and the read can call into libc.
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { errnoName } from "./errno.ts";

const { i32, u32, i64, u64, ptr: p, void: v } = FFIType;

const lib = dlopen("libc.so.6", {
  __errno_location: { args: [], returns: p },
  mount: { args: [p, p, p, u64, p], returns: i32 },
  umount2: { args: [p, i32], returns: i32 },
  reboot: { args: [i32], returns: i32 },
  sync: { args: [], returns: v },
  sethostname: { args: [p, u64], returns: i32 },
  clock_settime: { args: [i32, p], returns: i32 },
  waitpid: { args: [i32, p, i32], returns: i32 },
  kill: { args: [i32, i32], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  socketpair: { args: [i32, i32, i32, p], returns: i32 },
  connect: { args: [i32, p, u32], returns: i32 },
  close: { args: [i32], returns: i32 },
  prctl: { args: [i32, u64, u64, u64, u64], returns: i32 },
  pipe2: { args: [p, i32], returns: i32 },
  bind: { args: [i32, p, u32], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
  accept4: { args: [i32, p, p, i32], returns: i32 },
  recvmsg: { args: [i32, p, i32], returns: i64 },
  ioctl: { args: [i32, u64, p], returns: i32 },
});

const fn = lib.symbols;

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

function errno(): number {
  return read.i32(fn.__errno_location() as number, 0);
}

/** Runs a call returning an int; -1 becomes a SyscallError naming the call and its arguments. */
function check(call: string, detail: string, result: unknown): number {
  const r = result as number;
  if (r === -1) throw new SyscallError(call, errno(), detail);
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
    fn.mount(cstr(source), cstr(target), cstr(fstype), BigInt(flags), data === null ? NULL : cstr(data)),
  );
}

export function umount2(target: string, flags: number): void {
  check("umount2", target, fn.umount2(cstr(target), flags));
}

export const RebootCommand = {
  powerOff: 0x4321fedc,
  restart: 0x01234567,
} as const;

export function reboot(cmd: number): void {
  check("reboot", "", fn.reboot(cmd));
}

export function sync(): void {
  fn.sync();
}

export function sethostname(name: string): void {
  const b = Buffer.from(name, "utf8");
  check("sethostname", name, fn.sethostname(b, BigInt(b.length)));
}

const CLOCK_REALTIME = 0;

export function setRealtimeClock(epochMs: number): void {
  const ts = new BigInt64Array(2);
  ts[0] = BigInt(Math.floor(epochMs / 1000));
  ts[1] = BigInt(Math.floor((epochMs % 1000) * 1e6));
  check("clock_settime", "CLOCK_REALTIME", fn.clock_settime(CLOCK_REALTIME, ts));
}

export const WNOHANG = 1;

/** waitpid(pid, WNOHANG): the reaped pid and its raw wait status, or null when it has not exited. */
export function waitpidNoHang(pid: number): { pid: number; status: number } | null {
  const status = new Int32Array(1);
  const r = check("waitpid", String(pid), fn.waitpid(pid, status, WNOHANG));
  return r === 0 ? null : { pid: r, status: status[0] ?? 0 };
}

/** kill(2); false when the process is already gone (ESRCH). */
export function kill(pid: number, signal: number): boolean {
  const r = fn.kill(pid, signal) as number;
  if (r === 0) return true;
  const e = errno();
  if (e === 3) return false;
  throw new SyscallError("kill", e, `${pid} signal ${signal}`);
}

export const AF_UNIX = 1;
export const AF_VSOCK = 40;
export const SOCK_STREAM = 1;
export const SOCK_CLOEXEC = 0o2000000;

export function socket(domain: number, type: number): number {
  return check("socket", `domain ${domain}`, fn.socket(domain, type, 0));
}

export function socketpair(domain: number, type: number): [number, number] {
  const fds = new Int32Array(2);
  check("socketpair", `domain ${domain}`, fn.socketpair(domain, type, 0, fds));
  return [fds[0] ?? -1, fds[1] ?? -1];
}

/** Blocking connect(2) of `fd` to the encoded socket address. */
export function connect(fd: number, address: Uint8Array, describe: string): void {
  check("connect", describe, fn.connect(fd, ptr(address), address.byteLength));
}

export function close(fd: number): void {
  fn.close(fd);
}

const PR_SET_CHILD_SUBREAPER = 36;

/** Makes this process adopt orphaned descendants, as PID 1 does; for running the reaper off-guest. */
export function becomeSubreaper(): void {
  check("prctl", "PR_SET_CHILD_SUBREAPER", fn.prctl(PR_SET_CHILD_SUBREAPER, 1n, 0n, 0n, 0n));
}

export const O_CLOEXEC = 0o2000000;
export const SOCK_NONBLOCK = 0o4000;
const EAGAIN = 11;

/** pipe2(O_CLOEXEC): [read end, write end]. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check("pipe2", "", fn.pipe2(fds, O_CLOEXEC));
  return [fds[0] ?? -1, fds[1] ?? -1];
}

export function bind(fd: number, address: Uint8Array, describe: string): void {
  check("bind", describe, fn.bind(fd, ptr(address), address.byteLength));
}

export function listen(fd: number, backlog: number): void {
  check("listen", "", fn.listen(fd, backlog));
}

/** accept4 on a non-blocking socket: the new fd (non-blocking, cloexec), or null when none is waiting. */
export function acceptNonBlocking(fd: number): number | null {
  const r = fn.accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC) as number;
  if (r >= 0) return r;
  const e = errno();
  if (e === EAGAIN) return null;
  throw new SyscallError("accept4", e, "");
}

const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x4000_0000;

/**
 * recvmsg for one file descriptor passed with SCM_RIGHTS (crun's --console-socket protocol).
 * Returns null when nothing is there yet (non-blocking socket); throws when the peer closed
 * without sending a descriptor.
 */
export function receiveFd(fd: number): number | null {
  const data = new Uint8Array(256);
  const iov = new BigUint64Array(2);
  iov[0] = BigInt(ptr(data));
  iov[1] = BigInt(data.byteLength);
  const control = new Uint8Array(64);
  // struct msghdr on x86-64: name, namelen(+pad), iov, iovlen, control, controllen, flags(+pad).
  const msg = new BigUint64Array(7);
  msg[2] = BigInt(ptr(iov));
  msg[3] = 1n;
  msg[4] = BigInt(ptr(control));
  msg[5] = BigInt(control.byteLength);
  const n = Number(fn.recvmsg(fd, msg, MSG_CMSG_CLOEXEC) as number | bigint);
  if (n < 0) {
    const e = errno();
    if (e === EAGAIN) return null;
    throw new SyscallError("recvmsg", e, "console socket");
  }
  const controllen = Number(msg[5]);
  const view = new DataView(control.buffer);
  // struct cmsghdr: len u64, level i32, type i32, data.
  if (controllen >= 20 && view.getInt32(8, true) === SOL_SOCKET && view.getInt32(12, true) === SCM_RIGHTS) {
    return view.getInt32(16, true);
  }
  if (n === 0) throw new Error("console socket: peer closed without passing a terminal");
  throw new Error(`console socket: ${n} bytes without a file descriptor`);
}

const TIOCSWINSZ = 0x5414;

export function setWindowSize(fd: number, rows: number, cols: number): void {
  const ws = new Uint16Array([rows, cols, 0, 0]);
  check("ioctl", "TIOCSWINSZ", fn.ioctl(fd, BigInt(TIOCSWINSZ), ws));
}
