import { execFileSync } from "node:child_process";
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kmsgSink } from "./kmsg.ts";
import { createLogger, formatLine } from "./logger.ts";

describe("formatLine", () => {
  it("writes logrus text format with quoted values where needed", () => {
    const line = formatLine(
      "info",
      "vm started",
      { id: "abc", pid: 42, why: "KVM probe failed" },
      new Date(0),
    );
    expect(line).toBe(
      'time=1970-01-01T00:00:00.000Z level=info msg="vm started" id=abc pid=42 why="KVM probe failed"\n',
    );
  });
  it("skips undefined fields and escapes newlines", () => {
    expect(formatLine("warn", "a\nb", { x: undefined }, new Date(0))).toBe(
      'time=1970-01-01T00:00:00.000Z level=warn msg="a\\nb"\n',
    );
  });
});

describe("createLogger after the reader is gone", () => {
  it("sends warnings and errors to the orphan sink once a write hits EPIPE, for with() loggers too", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetroot-log-"));
    try {
      const fifo = join(dir, "log");
      execFileSync("mkfifo", [fifo]);
      const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      const orphaned: string[] = [];
      const log = createLogger({ fd: writer, orphaned: (level, line) => orphaned.push(`${level}|${line}`) });
      log.error("while read");
      const buf = Buffer.alloc(4096);
      const n = readSync(reader, buf);
      expect(buf.subarray(0, n).toString()).toMatch(/level=error msg="while read"/);
      closeSync(reader);
      log.info("lost: below warn");
      const child = log.with({ id: "c1" });
      child.warn("teardown failed", { step: "cni" });
      log.error("after");
      expect(orphaned).toHaveLength(2);
      expect(orphaned[0]).toMatch(/^warn\|time=.* level=warn msg="teardown failed" id=c1 step=cni\n$/);
      expect(orphaned[1]).toMatch(/^error\|.*msg=after\n$/);
      closeSync(writer);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("kmsgSink", () => {
  it("writes one prioritised, tagged record per line and cuts long ones", () => {
    const dir = mkdtempSync(join(tmpdir(), "beetroot-kmsg-"));
    try {
      const path = join(dir, "kmsg");
      writeFileSync(path, "");
      const sink = kmsgSink("containerd-shim-beetroot-v1[7]", path);
      sink("error", 'time=x level=error msg="cni del failed"\n');
      sink("warn", `msg=${"y".repeat(2000)}\n`);
      sink("warn", `msg=${"é".repeat(2000)}\n`);
      const [first, second, third] = readFileSync(path, "utf8").split("\n");
      expect(first).toBe('<3>containerd-shim-beetroot-v1[7]: time=x level=error msg="cni del failed"');
      expect(second?.startsWith("<4>containerd-shim-beetroot-v1[7]: msg=yyy")).toBe(true);
      expect(second?.endsWith("y…")).toBe(true);
      expect(Buffer.byteLength(second ?? "")).toBe(900);
      // The limit is the kernel's, in bytes: two-byte characters are cut whole, below it.
      expect(third?.endsWith("é…")).toBe(true);
      expect(third).not.toContain("\ufffd");
      expect(Buffer.byteLength(third ?? "")).toBeLessThanOrEqual(900);
      expect(Buffer.byteLength(third ?? "")).toBeGreaterThanOrEqual(899);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a missing device loses the lines without throwing", () => {
    expect(() => kmsgSink("t", "/nonexistent/kmsg")("error", "x\n")).not.toThrow();
  });
});
