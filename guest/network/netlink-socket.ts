/**
 * A NETLINK_ROUTE socket for the guest: socket/bind/sendto/recvfrom through vminitd's Node-API
 * addon (guest/native), the transport under internal/rtnetlink's code, so vminitd configures its
 * NICs with the same tested message encoder and parser the host uses. Bun-only (the addon is
 * loaded by process.dlopen; x86-64 syscall numbers).
 */
import { constants } from "node:os";
import type { NetlinkTransport } from "../../internal/rtnetlink/socket.ts";
import { sys } from "../native/vminitd-sys.ts";

const NR = { socket: 41, sendto: 44, recvfrom: 45, bind: 49, setsockopt: 54, close: 3 } as const;

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

function fail(call: string, errno: number): never {
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

/** Repeats a call interrupted by a signal; any other failure throws. */
function retry(what: string, call: () => number): number {
  for (;;) {
    const r = call();
    if (r >= 0) return r;
    if (r !== -EINTR) fail(what, -r);
  }
}

/** A bound rtnetlink socket in the calling process' network namespace. */
export function netlinkTransport(): NetlinkTransport {
  const fd = sys(NR.socket, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) fail("socket(AF_NETLINK)", -fd);
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  sys(NR.setsockopt, fd, SOL_NETLINK, NETLINK_EXT_ACK, one, 4);
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(10n, 0);
  sys(NR.setsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16);
  const bound = sys(NR.bind, fd, sockaddrNl(), 12);
  if (bound < 0) {
    sys(NR.close, fd);
    fail("bind(AF_NETLINK)", -bound);
  }
  const kernel = sockaddrNl();
  return {
    netns: "",
    send(datagram) {
      retry("sendto(netlink)", () => sys(NR.sendto, fd, datagram, datagram.length, 0, kernel, 12));
    },
    recv() {
      // Peek at the size first so no datagram is ever truncated.
      const size = retry("recv(netlink)", () =>
        sys(NR.recvfrom, fd, null, 0, MSG_PEEK | MSG_TRUNC, null, null),
      );
      const buf = Buffer.alloc(Math.max(size, 1));
      const n = retry("recv(netlink)", () => sys(NR.recvfrom, fd, buf, buf.length, 0, null, null));
      return buf.subarray(0, n);
    },
    close() {
      sys(NR.close, fd);
    },
  };
}
