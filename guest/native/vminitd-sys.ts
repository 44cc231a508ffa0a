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
}

/** A syscall argument: an integer, a bigint, null for 0, or a byte view whose address is passed. */
export type SyscallArg = number | bigint | null | ArrayBufferView;

const ABI_VERSION = 1;

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
