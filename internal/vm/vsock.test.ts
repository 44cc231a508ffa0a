import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  connectVsock,
  LINEAR_TX_CREDIT_WINDOW_BYTES,
  VSOCK_CREDIT_WINDOW_BYTES,
  VsockListener,
  vsockCreditWindow,
  vsockDaemonArgs,
  vsockListenPath,
} from "./vsock.ts";

const dir = mkdtempSync(join(tmpdir(), "beetroot-vsock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("vsock host side", () => {
  it("grants the guest a credit window small enough that every TX packet stays linear", () => {
    // Linux's linear limit for a vsock TX skb: SKB_WITH_OVERHEAD(4096 << 3) = 32768 - 320, of
    // which 44 bytes are the packet header (include/linux/virtio_vsock.h, virtio_vsock_alloc_skb).
    const linearPayloadLimit = 32768 - 320 - 44;
    expect(VSOCK_CREDIT_WINDOW_BYTES).toBeLessThanOrEqual(linearPayloadLimit);
    // vhost-device-vsock's tx ring indexes with wrapping u32 counters modulo its size.
    expect(2 ** 32 % VSOCK_CREDIT_WINDOW_BYTES).toBe(0);
    expect(vsockDaemonArgs(3, "/r/vhost-user.sock", "/r/vsock.sock")).toEqual([
      "--vm",
      `guest-cid=3,socket=/r/vhost-user.sock,uds-path=/r/vsock.sock,tx-buffer-size=${VSOCK_CREDIT_WINDOW_BYTES}`,
    ]);
  });

  it("grants the large window only to kernels whose TX packets are linear", () => {
    expect(vsockCreditWindow({ linearVsockTx: false })).toBe(VSOCK_CREDIT_WINDOW_BYTES);
    expect(vsockCreditWindow({ linearVsockTx: true })).toBe(LINEAR_TX_CREDIT_WINDOW_BYTES);
    expect(2 ** 32 % LINEAR_TX_CREDIT_WINDOW_BYTES).toBe(0);
    expect(vsockDaemonArgs(3, "/v", "/u", LINEAR_TX_CREDIT_WINDOW_BYTES)[1]).toMatch(
      /,tx-buffer-size=262144$/,
    );
  });

  it("accepts guest dial-backs on <uds>_<port>, queued or awaited", async () => {
    const uds = join(dir, "a.sock");
    const l = await VsockListener.listen(uds, 1024);
    expect(l.path).toBe(vsockListenPath(uds, 1024));
    const early = createConnection({ path: `${uds}_1024` });
    const first = await l.accept(1000);
    const later = l.accept(1000);
    createConnection({ path: `${uds}_1024` }).end("hi");
    const second = await later;
    const got = await new Promise<string>((r) => second.once("data", (d) => r(d.toString())));
    expect(got).toBe("hi");
    first.destroy();
    early.destroy();
    second.destroy();
    await expect(l.accept(50)).rejects.toThrow(/no vsock connection from the guest on .*_1024 within 50 ms/);
    const ac = new AbortController();
    const aborted = l.accept(5000, ac.signal);
    ac.abort(new Error("QEMU exited"));
    await expect(aborted).rejects.toThrow("QEMU exited");
    await l.close();
  });

  it("speaks CONNECT/OK to reach a guest port and keeps the bytes after the reply", async () => {
    const uds = join(dir, "b.sock");
    // Stands in for vhost-device-vsock: port 52 listens in the "guest", others refuse.
    const server = createServer((s) => {
      s.once("data", (d) => {
        const line = d.toString();
        if (line === "CONNECT 52\n") {
          s.write("OK 1073741824\nhello");
          s.pipe(s);
        } else s.destroy();
      });
    });
    await new Promise<void>((r) => server.listen(uds, r));
    const s = await connectVsock(uds, 52, 1000);
    const first = await new Promise<string>((r) => s.once("data", (d) => r(d.toString())));
    expect(first).toBe("hello");
    s.write("echo");
    expect(await new Promise<string>((r) => s.once("data", (d) => r(d.toString())))).toBe("echo");
    s.destroy();
    await expect(connectVsock(uds, 53, 1000)).rejects.toThrow(/vsock CONNECT 53 via .*: connection closed/);
    await expect(connectVsock(join(dir, "none.sock"), 52, 1000)).rejects.toThrow(/ENOENT/);
    server.close();
  });
});
