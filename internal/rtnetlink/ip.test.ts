import { describe, expect, it } from "vitest";
import { AddressError, bytesToIp, bytesToMac, ipToBytes, macToBytes, networkOf, parsePrefix } from "./ip.ts";

describe("IP text ⇄ bytes", () => {
  it("round-trips IPv4 and IPv6 in RFC 5952 form", () => {
    for (const [text, canon] of [
      ["10.1.2.3", "10.1.2.3"],
      ["fd00:1::2", "fd00:1::2"],
      ["fd00:0:0:0:0:0:0:1", "fd00::1"],
      ["::", "::"],
      ["::1", "::1"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["::ffff:10.0.0.1", "::ffff:a00:1"],
      ["1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"],
    ] as const) {
      expect(bytesToIp(ipToBytes(text))).toBe(canon);
    }
    expect(Array.from(ipToBytes("fd00::2"))).toEqual([0xfd, 0, ...Array(13).fill(0), 2]);
  });

  it("rejects what is not an address", () => {
    expect(() => ipToBytes("10.1.2")).toThrow(AddressError);
    expect(() => parsePrefix("10.1.2.3")).toThrow(/lacks a \/prefix-length/);
    expect(() => parsePrefix("10.1.2.3/33")).toThrow(/too long for IPv4/);
    expect(() => parsePrefix("fd00::/x")).toThrow(/bad prefix length/);
    expect(() => macToBytes("02:00:00:00:00")).toThrow(/not a MAC/);
  });

  it("computes network prefixes", () => {
    expect(networkOf(parsePrefix("10.124.10.77/24"))).toEqual(parsePrefix("10.124.10.0/24"));
    expect(networkOf(parsePrefix("fd00:1::abcd/64"))).toEqual(parsePrefix("fd00:1::/64"));
    expect(networkOf(parsePrefix("10.1.2.3/0")).address).toBe("0.0.0.0");
    expect(bytesToMac(macToBytes("02:AB:00:00:00:01"))).toBe("02:ab:00:00:00:01");
  });
});
