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

/**
 * The credit window vhost-device-vsock grants the guest per connection (its `tx_buffer_size`,
 * advertised as `buf_alloc`). Guest kernels with Linux commit 6693731487a8 ("vsock/virtio: Allocate
 * nonlinear SKBs for handling large transmit buffers": 6.17, and 6.12.y — our 6.12.117 has it) put
 * the payload of a TX packet larger than ~32 KiB (SKB_WITH_OVERHEAD(PAGE_SIZE << 3) minus the 44-byte
 * header) into page fragments, one virtqueue descriptor each. vhost-device-vsock 0.3.0 parses TX
 * chains with virtio-vsock 0.12, which accepts the header plus ONE data descriptor holding the whole
 * payload: a multi-descriptor packet is dropped without a word, yet the guest already counted it
 * against its credit. Measured: a 64 KiB write arrives as 0 bytes; after a window's worth of dropped
 * packets the credit is gone and the guest writer blocks forever.
 *
 * A packet never carries more than the peer's credit, so a window at or below the linear limit
 * means every TX packet is linear (one descriptor) whatever the guest's program writes. 16 KiB is
 * the largest power of two below the limit (the daemon's ring buffer indexes with wrapping u32
 * counters modulo its size, which stays consistent only for powers of two). Cost: throughput —
 * TCG, 1 vCPU, 256 MiB through vminitd: 4 KiB 19 MB/s, 16 KiB 37 MB/s, 32 KiB (unsafe) 52 MB/s.
 */
export const VSOCK_CREDIT_WINDOW_BYTES = 16 * 1024;

/**
 * The window for beetroot's own kernel, whose TX packets are always linear
 * (assets/kernel/patches/0001-vsock-linear-tx-packets.patch): the credit no longer has to stay
 * under the split limit, and a larger window keeps the guest writing while the host drains.
 * Measured with a splice pump in the guest (TCG, 1 vCPU): 64 KiB 117 MB/s, 256 KiB 150 MB/s.
 */
export const LINEAR_TX_CREDIT_WINDOW_BYTES = 256 * 1024;

/** The credit window for a guest kernel: large only when its TX packets are known to be linear. */
export function vsockCreditWindow(kernel: { readonly linearVsockTx: boolean }): number {
  return kernel.linearVsockTx ? LINEAR_TX_CREDIT_WINDOW_BYTES : VSOCK_CREDIT_WINDOW_BYTES;
}

/** vhost-device-vsock's command line for one VM (its `--vm` keys accept dashes or underscores). */
export function vsockDaemonArgs(
  guestCid: number,
  vhostUserSocket: string,
  udsPath: string,
  windowBytes: number = VSOCK_CREDIT_WINDOW_BYTES,
): string[] {
  return [
    "--vm",
    `guest-cid=${guestCid},socket=${vhostUserSocket},uds-path=${udsPath},tx-buffer-size=${windowBytes}`,
  ];
}

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
