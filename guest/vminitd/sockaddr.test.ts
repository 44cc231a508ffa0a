import { describe, expect, it } from "vitest";
import { sockaddrUnix, sockaddrVm } from "./sockaddr.ts";

describe("sockaddrVm", () => {
  it("lays out struct sockaddr_vm little-endian in 16 bytes", () => {
    expect(Buffer.from(sockaddrVm(2, 1024)).toString("hex")).toBe(
      "28000000" + "00040000" + "02000000" + "00000000",
    );
  });
  it("rejects out-of-range values", () => {
    expect(() => sockaddrVm(2, -1)).toThrow(/port -1/);
    expect(() => sockaddrVm(2 ** 32, 1)).toThrow(/cid/);
  });
});

describe("sockaddrUnix", () => {
  it("is family + NUL-terminated path", () => {
    expect(Buffer.from(sockaddrUnix("/a")).toString("hex")).toBe("0100" + "2f61" + "00");
  });
  it("refuses paths longer than sun_path", () => {
    expect(() => sockaddrUnix(`/${"x".repeat(120)}`)).toThrow(/too long/);
  });
});
