import { describe, expect, it } from "vitest";
import { createLogger, formatLine } from "./log.ts";

const at = new Date("2025-01-02T03:04:05.678Z");

describe("formatLine", () => {
  it("writes logfmt with quoting only where needed", () => {
    expect(
      formatLine("info", "mounted", { target: "/dev/pts", opts: "a b", n: 3, gone: undefined }, at),
    ).toBe('time=2025-01-02T03:04:05.678Z level=info msg=mounted target=/dev/pts opts="a b" n=3\n');
  });
  it("quotes values containing = so a line parses back unambiguously", () => {
    expect(formatLine("warn", "x", { data: "mode=0755" }, at)).toContain('data="mode=0755"');
  });
});

describe("createLogger", () => {
  it("filters by level and merges fields", () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), level: "info", now: () => at }).with({ c: "x" });
    log.debug("hidden");
    log.error("shown", { e: 1 });
    expect(lines).toEqual(["time=2025-01-02T03:04:05.678Z level=error msg=shown c=x e=1\n"]);
  });
  it("survives a writer that throws", () => {
    const log = createLogger({
      write: () => {
        throw new Error("EIO");
      },
    });
    expect(() => log.info("x")).not.toThrow();
  });
});
