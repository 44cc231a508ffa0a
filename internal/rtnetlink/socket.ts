import { constants } from "node:os";
import {
  NETLINK_ROUTE,
  NLM_F_ACK,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
} from "./constants.ts";
import {
  encodeMessage,
  NetlinkParseError,
  type NlMessage,
  type OutgoingMessage,
  parseErrorMessage,
  parseMessages,
} from "./message.ts";

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** The kernel refused a request: errno, its name, and the kernel's extended-ack text if any. */
export class NetlinkError extends Error {
  readonly code: string;
  constructor(
    readonly errno: number,
    readonly operation: string,
    readonly kernelMessage?: string,
  ) {
    const name = errnoNames.get(errno) ?? `errno ${errno}`;
    super(`${operation}: ${name}${kernelMessage ? ` (${kernelMessage})` : ""}`);
    this.name = "NetlinkError";
    this.code = name;
  }
}

export type Request = Omit<OutgoingMessage, "seq">;

/**
 * Moves datagrams to and from the kernel on a NETLINK_ROUTE socket that is already bound in
 * the right namespace. On the host the Node addon provides it; in the guest, Bun FFI (see
 * guest/network), so both run the same rtnetlink code.
 */
export interface NetlinkTransport {
  /** Path of the namespace, for messages ("" = the caller's own). */
  readonly netns: string;
  send(datagram: Buffer): void;
  /** The next datagram; throws (ETIMEDOUT) rather than block forever. */
  recv(): Buffer;
  close(): void;
}

/**
 * What the library needs from the platform to reach the kernel: a netlink socket opened inside a
 * network namespace. On the host a small native addon provides it; in the guest, Bun FFI.
 */
export interface NetlinkSockets {
  netlinkSocket(netnsPath: string, protocol: number): number;
  netlinkSend(fd: number, datagram: Buffer): number;
  netlinkRecv(fd: number): Buffer;
  close(fd: number): void;
}

export function nativeTransport(native: NetlinkSockets, netnsPath = ""): NetlinkTransport {
  const fd = native.netlinkSocket(netnsPath, NETLINK_ROUTE);
  return {
    netns: netnsPath,
    send: (d) => {
      native.netlinkSend(fd, d);
    },
    recv: () => native.netlinkRecv(fd),
    close: () => native.close(fd),
  };
}

/**
 * A NETLINK_ROUTE socket bound in one network namespace. Calls are synchronous: rtnetlink
 * answers a request before sendmsg returns, so a round trip costs microseconds, and a
 * synchronous API cannot interleave two callers' replies on one socket.
 */
export class RtNetlinkSocket {
  private seq: number;
  private closed = false;

  constructor(private readonly transport: NetlinkTransport) {
    this.seq = Math.floor(Math.random() * 0x7fffffff);
  }

  get netns(): string {
    return this.transport.netns;
  }

  /** netnsPath "" = the caller's own namespace. */
  static open(native: NetlinkSockets, netnsPath = ""): RtNetlinkSocket {
    return new RtNetlinkSocket(nativeTransport(native, netnsPath));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.transport.close();
  }

  private send(req: Request, flags: number): number {
    if (this.closed) throw new Error("netlink socket is closed");
    this.seq = (this.seq + 1) >>> 0;
    this.transport.send(encodeMessage({ ...req, flags: req.flags | flags, seq: this.seq }));
    return this.seq;
  }

  private *replies(seq: number, operation: string): Generator<NlMessage> {
    for (;;) {
      const datagram = this.transport.recv();
      for (const m of parseMessages(datagram)) {
        // Replies to an earlier request that timed out, or notifications: not ours.
        if (m.seq !== seq) continue;
        if (m.type === NLMSG_OVERRUN) throw new NetlinkError(constants.errno.ENOBUFS, operation, "overrun");
        yield m;
      }
    }
  }

  /** A request the kernel acknowledges (create/change/delete). */
  request(req: Request, operation: string): void {
    const seq = this.send(req, NLM_F_ACK);
    for (const m of this.replies(seq, operation)) {
      if (m.type !== NLMSG_ERROR) continue;
      const e = parseErrorMessage(m);
      if (e.errno !== 0) throw new NetlinkError(e.errno, operation, e.message);
      return;
    }
  }

  /** A GET for one object: the reply message. */
  get(req: Request, operation: string): NlMessage {
    const seq = this.send(req, 0);
    for (const m of this.replies(seq, operation)) {
      if (m.type === NLMSG_ERROR) {
        const e = parseErrorMessage(m);
        throw new NetlinkError(e.errno === 0 ? constants.errno.EPROTO : e.errno, operation, e.message);
      }
      return m;
    }
    throw new Error("unreachable");
  }

  /** A dump: every object message up to NLMSG_DONE. Restarted if the kernel says it was interrupted. */
  dump(req: Request, operation: string): NlMessage[] {
    for (let attempt = 0; attempt < 5; attempt++) {
      const seq = this.send(req, 0);
      const out: NlMessage[] = [];
      let interrupted = false;
      for (const m of this.replies(seq, operation)) {
        if ((m.flags & NLM_F_DUMP_INTR) !== 0) interrupted = true;
        if (m.type === NLMSG_DONE) {
          if (m.payload.length >= 4) {
            const err = m.payload.readInt32LE(0);
            if (err < 0) throw new NetlinkError(-err, operation);
          }
          break;
        }
        if (m.type === NLMSG_ERROR) {
          const e = parseErrorMessage(m);
          if (e.errno !== 0) throw new NetlinkError(e.errno, operation, e.message);
          break;
        }
        if (m.type === NLMSG_NOOP) continue;
        out.push(m);
        if ((m.flags & NLM_F_MULTI) === 0) break;
      }
      if (!interrupted) return out;
    }
    throw new NetlinkParseError(`${operation}: dump interrupted five times in a row`);
  }
}
