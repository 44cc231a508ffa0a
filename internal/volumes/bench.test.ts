import { describe, expect, it } from "vitest";
import { parseBenchOutput } from "./bench.ts";

describe("bench volumes output", () => {
  const o = { json: false, sizeMiB: 256, files: 10_000 };

  it("turns the container's phase lines into rates", () => {
    const r = parseBenchOutput(
      [
        "write 10.00 12.00",
        "read 20.00 21.00",
        "create 30.00 33.00",
        "stat 33.00 34.00",
        "unlink 34.00 35.00",
      ].join("\n"),
      o,
    );
    expect(r.writeMiBps).toBe(128);
    expect(r.readMiBps).toBe(256);
    expect(r.smallFilesPerSec).toBe(2000);
  });

  it("fails naming a phase the container did not report", () => {
    expect(() => parseBenchOutput("write 1 2\nread 2 3\n", o)).toThrow(/no "create" timing/);
  });
});
