/**
 * Stream sockets vminitd opens itself (AF_VSOCK has no Bun or Node API): raw connected fds (for
 * the native output pump, which Bun must never touch), or handed to Bun's net layer. Measured with
 * Bun 1.4.5: `net.connect({ fd })` adopts a connected stream socket and yields a working net.Socket
 * (a Duplex); `new net.Socket({ fd })` does not (it closes at once).
 * Bun-only (the socket calls are vminitd's addon, guest/native).
 */
import { connect as netConnect, type Socket } from "node:net";
import { AF_UNIX, AF_VSOCK, sockaddrUnix, sockaddrVm } from "../sockaddr.ts";
import { close, connect, SOCK_CLOEXEC, SOCK_STREAM, socket } from "./libc.ts";

/** A connected stream socket fd; the socket is closed again when connect fails. */
function connectedFd(domain: number, address: Uint8Array, describe: string): number {
  const fd = socket(domain, SOCK_STREAM | SOCK_CLOEXEC);
  try {
    connect(fd, address, describe);
  } catch (err) {
    close(fd);
    throw err;
  }
  return fd;
}

export function adoptSocket(fd: number): Socket {
  return netConnect({ fd } as unknown as Parameters<typeof netConnect>[0]);
}

/**
 * A blocking, close-on-exec stream socket connected to (cid, port) over vsock, as a bare fd;
 * connecting blocks for at most the kernel's connect timeout (2 s).
 */
export function connectVsock(cid: number, port: number): number {
  return connectedFd(AF_VSOCK, sockaddrVm(cid, port), `vsock ${cid}:${port}`);
}

/** The same over a unix socket, for exercising vsock paths where there is no vsock transport. */
export function connectUnix(path: string): number {
  return connectedFd(AF_UNIX, sockaddrUnix(path), path);
}

/** connectVsock adopted into net. */
export function dialVsock(cid: number, port: number): Socket {
  return adoptSocket(connectVsock(cid, port));
}

/** connectUnix adopted into net. */
export function dialUnix(path: string): Socket {
  return adoptSocket(connectUnix(path));
}
