/**
 * glibc calls vminitd needs as PID 1 that neither Bun nor Node expose: mount, reboot, waitpid on
 * arbitrary pids, AF_VSOCK sockets, the clock and the hostname. Bun-only (bun:ffi).
 *
 * errno is read right after each call, on the same thread, before any other JS runs: nothing
 * between the foreign call's return and the read can call into libc.
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { errnoName } from "./errno.ts";

const { i32, u32, u64, ptr: p, void: v } = FFIType;

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
