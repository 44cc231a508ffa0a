/**
 * A NETLINK_ROUTE socket for the guest, through Bun FFI (libc socket/bind/sendto/recv): the
 * transport under internal/network's rtnetlink code, so vminitd configures its NICs with the same
 * tested message encoder and parser the host uses. Bun-only.
 */
import { dlopen, FFIType, read } from "bun:ffi";
import { constants } from "node:os";
import type { NetlinkTransport } from "../../internal/rtnetlink/socket.ts";

const { i32, i64, u32, u64, ptr: p } = FFIType;

const libc = dlopen("libc.so.6", {
  __errno_location: { args: [], returns: p },
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, p, u32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, p, u32], returns: i32 },
  sendto: { args: [i32, p, u64, i32, p, u32], returns: i64 },
  recv: { args: [i32, p, u64, i32], returns: i64 },
  close: { args: [i32], returns: i32 },
}).symbols;

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SOL_NETLINK = 270;
const NETLINK_EXT_ACK = 11;
const MSG_PEEK = 2;
const MSG_TRUNC = 0x20;
const EINTR = 4;
const EAGAIN = 11;

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v, k]));

function fail(call: string): never {
  const errno = read.i32(libc.__errno_location() as number, 0);
  const name = errnoNames.get(errno) ?? `errno ${errno}`;
  const err = new Error(`${call}: ${name}`) as Error & { code: string; errno: number };
  err.code = errno === EAGAIN ? "ETIMEDOUT" : name;
  err.errno = errno;
  throw err;
}

function sockaddrNl(): Buffer {
  const sa = Buffer.alloc(12);
  sa.writeUInt16LE(AF_NETLINK, 0);
  return sa;
}

/** A bound rtnetlink socket in the calling process' network namespace. */
export function ffiNetlinkTransport(): NetlinkTransport {
  const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE) as number;
  if (fd < 0) fail("socket(AF_NETLINK)");
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  libc.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(10n, 0);
  libc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16);
  if ((libc.bind(fd, sockaddrNl(), 12) as number) < 0) {
    libc.close(fd);
    fail("bind(AF_NETLINK)");
  }
  const kernel = sockaddrNl();
  const retry = (call: () => unknown, what: string): number => {
    for (;;) {
      const r = Number(call());
      if (r >= 0) return r;
      if (read.i32(libc.__errno_location() as number, 0) !== EINTR) fail(what);
    }
  };
  return {
    netns: "",
    send(datagram) {
      retry(() => libc.sendto(fd, datagram, BigInt(datagram.length), 0, kernel, 12), "sendto(netlink)");
    },
    recv() {
      // Peek at the size first so no datagram is ever truncated.
      const size = retry(() => libc.recv(fd, null, 0n, MSG_PEEK | MSG_TRUNC), "recv(netlink)");
      const buf = Buffer.alloc(Math.max(size, 1));
      const n = retry(() => libc.recv(fd, buf, BigInt(buf.length), 0), "recv(netlink)");
      return buf.subarray(0, n);
    },
    close() {
      libc.close(fd);
    },
  };
}
