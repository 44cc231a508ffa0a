/**
 * Loads vminitd_sys (vminitd_sys.c beside this file), the Node-API addon behind vminitd's libc
 * calls (guest/vminitd/sys/libc.ts) and the guest's netlink socket (guest/network).
 * In the guest image it sits beside vminitd; BEETROOT_VMINITD_SYS names another build (tests
 * that run these modules under Bun on the host). Loading happens once, at the first import.
 */
import { GUEST_PATHS } from "../vminitd/paths.ts";

interface VminitdSys {
  readonly abiVersion: number;
  syscall(nr: number, ...args: SyscallArg[]): number;
  receiveFd(fd: number): number;
  pump(inFd: number, outFd: number, cancelFd: number): Promise<PumpResult>;
}

/** How a pump ended (see pump()). Errnos are 0 when that side saw no error. */
export interface PumpResult {
  /** Bytes read from the input (all of them reached the output unless writeErrno is set). */
  readonly bytes: number;
  /** The input's error; EIO from a pty master means its last slave closed (its EOF). */
  readonly readErrno: number;
  /** The first write error; the pump then read on and dropped until EOF. */
  readonly writeErrno: number;
  /** Ended because cancelFd became readable or hung up, before EOF. */
  readonly cancelled: boolean;
  /** At least one splice(2) moved bytes (false: the read/write fallback did all of it). */
  readonly spliced: boolean;
}

/** A syscall argument: an integer, a bigint, null for 0, or a byte view whose address is passed. */
export type SyscallArg = number | bigint | null | ArrayBufferView;

const ABI_VERSION = 2;

function load(path: string): VminitdSys {
  const mod = { exports: {} as VminitdSys };
  process.dlopen(mod, path);
  if (mod.exports.abiVersion !== ABI_VERSION) {
    throw new Error(
      `${path} is vminitd_sys ABI ${String(mod.exports.abiVersion)}, vminitd needs ${ABI_VERSION}`,
    );
  }
  return mod.exports;
}

const addon = load(process.env.BEETROOT_VMINITD_SYS || GUEST_PATHS.sysAddon);

/** One raw system call: its result, or -errno. */
export function sys(nr: number, ...args: SyscallArg[]): number {
  return addon.syscall(nr, ...args);
}

/** A descriptor received with SCM_RIGHTS; -errno; or -1000 - n when n bytes came without one. */
export function receiveFd(fd: number): number {
  return addon.receiveFd(fd);
}

/**
 * Copies inFd (a pipe's read end or a pty master) into outFd (a stream socket) on a thread of its
 * own until EOF — splice(2) for a pipe, read/write otherwise — and settles then. outFd is made
 * non-blocking and must be used by nobody else meanwhile; nothing is closed. Closing the other end
 * of cancelFd (a pipe's read end) or writing to it ends the pump early. vminitd_sys.c has the details.
 */
export function pump(inFd: number, outFd: number, cancelFd: number): Promise<PumpResult> {
  return addon.pump(inFd, outFd, cancelFd);
}
