/**
 * Stream sockets vminitd opens itself (AF_VSOCK has no Bun or Node API): raw connected fds (for
 * the native pumps, which Bun must never touch), or adopted by Bun's native sockets for TTRPC.
 * Bun-only (the socket calls are vminitd's addon, guest/native).
 */
import { AF_UNIX, AF_VSOCK, sockaddrUnix, sockaddrVm } from "../sockaddr.ts";
import { BunSocketStream } from "./bun-socket.ts";
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

/** connectVsock adopted by Bun. */
export function dialVsock(cid: number, port: number): Promise<BunSocketStream> {
  return BunSocketStream.adopt(connectVsock(cid, port));
}

/** connectUnix adopted by Bun. */
export function dialUnix(path: string): Promise<BunSocketStream> {
  return BunSocketStream.adopt(connectUnix(path));
}
