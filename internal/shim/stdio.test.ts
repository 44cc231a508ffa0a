import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../log/logger.ts";
import { attachStdio, parseStdioTarget } from "./stdio.ts";
import type { VsockListener } from "./vmm.ts";

const log = createLogger({ fd: null });

describe("parseStdioTarget", () => {
  it("reads FIFO paths and containerd's URI forms", () => {
    expect(parseStdioTarget("")).toEqual({ kind: "none" });
    expect(parseStdioTarget("/run/containerd/fifo/1/c-stdout")).toEqual({
      kind: "fifo",
      path: "/run/containerd/fifo/1/c-stdout",
    });
    expect(parseStdioTarget("file:///var/log/c.log")).toEqual({ kind: "file", path: "/var/log/c.log" });
    expect(parseStdioTarget("binary:///usr/bin/logger?tag=x&verbose=")).toEqual({
      kind: "binary",
      path: "/usr/bin/logger",
      args: ["tag", "x", "verbose"],
    });
  });

  it("refuses relative paths and unknown schemes by name", () => {
    expect(() => parseStdioTarget("relative/fifo")).toThrow(/is not absolute/);
    expect(() => parseStdioTarget("tcp://1.2.3.4:5")).toThrow("stdio URI scheme tcp is not supported");
  });
});

describe("attachStdio with file:// and binary:// sinks", () => {
  let dir: string;
  let port = 30_000;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "beetroot-stdio-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A vsock listener over a unix socket; `dial(port)` plays the guest. */
  async function listen(): Promise<VsockListener> {
    const p = port++;
    const server = createServer();
    const first = new Promise<Socket>((resolve) => server.once("connection", resolve));
    await new Promise<void>((r) => server.listen(join(dir, `v_${p}`), r));
    return { port: p, accept: () => first, close: () => server.close() };
  }
  const dial = (p: number) =>
    new Promise<Socket>((resolve) => {
      const s = connect(join(dir, `v_${p}`), () => resolve(s));
    });

  it("appends output to a file:// target and drains on EOF", async () => {
    const file = join(dir, "logs", "c.log");
    const io = await attachStdio({
      containerId: "c",
      execId: "",
      namespace: "ns",
      terminal: false,
      paths: { stdin: "", stdout: `file://${file}`, stderr: `file://${file}` },
      listenVsock: listen,
      log,
    });
    expect(io.guest.stdinPort).toBe(0);
    const out = await dial(io.guest.stdoutPort);
    const err = await dial(io.guest.stderrPort);
    out.end("to stdout\n");
    err.end("to stderr\n");
    await io.drained;
    expect(readFileSync(file, "utf8").split("\n").sort()).toEqual(["", "to stderr", "to stdout"]);
    expect(io.bytesReceived()).toBe(20);
    await io.close();
  });

  it("feeds a binary:// logger on fds 3 and 4 after it closed fd 5", async () => {
    const script = join(dir, "logger.sh");
    writeFileSync(
      script,
      `#!/bin/sh\nexec 5>&-\ncat <&3 > "${dir}/out.$CONTAINER_ID.$CONTAINER_NAMESPACE" &\ncat <&4 > "${dir}/err.$1" &\nwait\n`,
    );
    chmodSync(script, 0o755);
    const io = await attachStdio({
      containerId: "c1",
      execId: "",
      namespace: "ns1",
      terminal: false,
      paths: { stdin: "", stdout: `binary://${script}?tagged`, stderr: `binary://${script}?tagged` },
      listenVsock: listen,
      log,
    });
    const out = await dial(io.guest.stdoutPort);
    const err = await dial(io.guest.stderrPort);
    out.end("hello out\n");
    err.end("hello err\n");
    await io.drained;
    const deadline = Date.now() + 5_000;
    const read = (f: string) => {
      try {
        return readFileSync(join(dir, f), "utf8");
      } catch {
        return "";
      }
    };
    while ((read("out.c1.ns1") === "" || read("err.tagged") === "") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(read("out.c1.ns1")).toBe("hello out\n");
    expect(read("err.tagged")).toBe("hello err\n");
    await io.close();
  });

  it("refuses a file:// stdin", async () => {
    await expect(
      attachStdio({
        containerId: "c",
        execId: "",
        namespace: "ns",
        terminal: false,
        paths: { stdin: "file:///etc/passwd", stdout: "", stderr: "" },
        listenVsock: listen,
        log,
      }),
    ).rejects.toThrow("stdin cannot be a file:// URI");
  });
});
