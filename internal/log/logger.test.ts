import { describe, expect, it } from "vitest";
import { formatLine } from "./logger.ts";

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
