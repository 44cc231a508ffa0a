/**
 * crun's --console-socket: a unix socket on which crun, while creating a process with a terminal,
 * connects and passes the pty master with SCM_RIGHTS. Neither Bun nor Node can receive file
 * descriptors, so this is vminitd's native addon (sys/libc.ts), on a non-blocking socket polled
 * from the event loop (crun runs meanwhile; a blocking accept would freeze vminitd). Bun-only.
 */
import { rmSync } from "node:fs";
import { sockaddrUnix } from "../sockaddr.ts";
import {
  AF_UNIX,
  acceptNonBlocking,
  bind,
  close,
  listen,
  receiveFd,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  socket,
} from "../sys/libc.ts";

const POLL_MS = 5;

export class ConsoleSocket {
  private constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  static listen(path: string): ConsoleSocket {
    rmSync(path, { force: true });
    const fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK);
    try {
      bind(fd, sockaddrUnix(path), path);
      listen(fd, 1);
    } catch (err) {
      close(fd);
      throw err;
    }
    return new ConsoleSocket(path, fd);
  }

  /**
   * Waits for crun to connect and pass the pty master. `gaveUp` ends the wait early (crun exited
   * without connecting); the deadline bounds it in any case.
   */
  async receive(timeoutMs: number, gaveUp: () => boolean): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let conn: number | null = null;
    try {
      for (;;) {
        if (conn === null) conn = acceptNonBlocking(this.fd);
        if (conn !== null) {
          const fd = receiveFd(conn);
          if (fd !== null) return fd;
        }
        if (gaveUp()) throw new Error("crun exited without passing a terminal");
        if (Date.now() > deadline) throw new Error(`no terminal from crun within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } finally {
      if (conn !== null) close(conn);
    }
  }

  close(): void {
    close(this.fd);
    rmSync(this.path, { force: true });
  }
}
