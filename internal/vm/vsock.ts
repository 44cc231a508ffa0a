import { unlinkSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * The host side of vsock through vhost-device-vsock, which maps the guest's AF_VSOCK onto plain
 * unix sockets (the Firecracker convention):
 *   guest → host: a guest connect to (CID 2, port P) arrives as a connection on `<uds>_<P>`, so
 *                 the host listens there BEFORE the guest boots;
 *   host → guest: connect to `<uds>`, write `CONNECT <P>\n`, read `OK <host port>\n`, then the
 *                 stream is the guest's accepted socket.
 */

export function vsockListenPath(udsPath: string, port: number): string {
  return `${udsPath}_${port}`;
}

export class VsockListener {
  private readonly queue: Socket[] = [];
  private readonly waiters: Array<(s: Socket) => void> = [];

  private constructor(
    readonly path: string,
    private readonly server: Server,
  ) {
    server.on("connection", (s) => {
      const w = this.waiters.shift();
      if (w) w(s);
      else this.queue.push(s);
    });
  }

  static listen(udsPath: string, port: number): Promise<VsockListener> {
    const path = vsockListenPath(udsPath, port);
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve(new VsockListener(path, server));
      });
    });
  }

  /** The next connection from the guest; rejects on timeout or abort. */
  accept(timeoutMs: number, abort?: AbortSignal): Promise<Socket> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        abort?.removeEventListener("abort", onAbort);
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      const waiter = (s: Socket) => {
        done();
        resolve(s);
      };
      const onAbort = () => {
        done();
        reject(abort?.reason instanceof Error ? abort.reason : new Error("aborted"));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no vsock connection from the guest on ${this.path} within ${timeoutMs} ms`));
      }, timeoutMs);
      if (abort?.aborted) return onAbort();
      abort?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  close(): Promise<void> {
    for (const s of this.queue.splice(0)) s.destroy();
    return new Promise((resolve) => {
      this.server.close(() => {
        // net.Server unlinks its socket file on close; be sure even if it was never bound.
        try {
          unlinkSync(this.path);
        } catch {}
        resolve();
      });
    });
  }
}

/** Longest line vhost-device-vsock answers a CONNECT with ("OK <u32>\n"). */
const MAX_REPLY = 32;

/** Opens a stream to a listening port in the guest. */
export function connectVsock(udsPath: string, port: number, timeoutMs: number): Promise<Socket> {
  const what = `vsock CONNECT ${port} via ${udsPath}`;
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path: udsPath });
    let reply = Buffer.alloc(0);
    const detach = () => {
      clearTimeout(timer);
      socket.off("readable", onReadable);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    const fail = (msg: string) => {
      detach();
      socket.destroy();
      reject(new Error(`${what}: ${msg}`));
    };
    const onError = (err: Error) => fail(err.message);
    // vhost-device-vsock closes the connection when nothing listens on the port.
    const onClose = () => fail("connection closed (nothing listening on that port?)");
    // Read in paused mode so that no byte after the reply line is consumed: the caller gets the
    // stream exactly where the guest's data begins.
    const onReadable = () => {
      for (let chunk = socket.read() as Buffer | null; chunk; chunk = socket.read() as Buffer | null) {
        reply = Buffer.concat([reply, chunk]);
        const nl = reply.indexOf(10);
        if (nl < 0) {
          if (reply.length > MAX_REPLY) fail("malformed reply");
          continue;
        }
        const line = reply.subarray(0, nl).toString("latin1");
        if (!/^OK \d+$/.test(line)) return fail(`refused (${JSON.stringify(line)})`);
        detach();
        const rest = reply.subarray(nl + 1);
        if (rest.length) socket.unshift(rest);
        return resolve(socket);
      }
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on("error", onError);
    socket.on("close", onClose);
    socket.once("connect", () => socket.write(`CONNECT ${port}\n`));
    socket.on("readable", onReadable);
  });
}
