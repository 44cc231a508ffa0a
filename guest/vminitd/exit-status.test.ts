import { describe, expect, it } from "vitest";
import { decodeWaitStatus } from "./exit-status.ts";

describe("decodeWaitStatus", () => {
  it("decodes normal exits", () => {
    expect(decodeWaitStatus(0)).toEqual({ exitCode: 0, signal: null, coreDumped: false });
    expect(decodeWaitStatus(3 << 8)).toEqual({ exitCode: 3, signal: null, coreDumped: false });
    expect(decodeWaitStatus(255 << 8).exitCode).toBe(255);
  });
  it("maps signals to 128+n", () => {
    expect(decodeWaitStatus(9)).toEqual({ exitCode: 137, signal: 9, coreDumped: false });
    expect(decodeWaitStatus(15)).toEqual({ exitCode: 143, signal: 15, coreDumped: false });
    expect(decodeWaitStatus(11 | 0x80)).toEqual({ exitCode: 139, signal: 11, coreDumped: true });
  });
  it("refuses a stop status", () => {
    expect(() => decodeWaitStatus((19 << 8) | 0x7f)).toThrow(/stop/);
  });
});
