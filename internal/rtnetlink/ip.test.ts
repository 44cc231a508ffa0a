import { isIPv4, isIPv6 } from "node:net";
import { describe, expect, it } from "vitest";
import {
  AddressError,
  bytesToIp,
  bytesToMac,
  ipToBytes,
  isIPv4Text,
  isIPv6Text,
  macToBytes,
  networkOf,
  parsePrefix,
} from "./ip.ts";

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

describe("IP text validation agrees with node:net", () => {
  // Deterministic pseudo-random strings over the characters that matter, so a failure reproduces.
  function* candidates(count: number): Generator<string> {
    const alphabet = "0123456789abcdefABCDEF:.%z";
    let seed = 0x2545f491;
    const next = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 0x100000000;
    };
    const known = [
      "1.2.3.4",
      "01.2.3.4",
      "256.1.1.1",
      "::",
      "::1",
      "1::",
      "1:2:3:4:5:6:7::",
      "::ffff:1.2.3.4",
      "1:2:3:4:5:6:7:8",
      "1:2:3:4:5:6:7:8::",
      "fe80::1%eth0",
      "1.2.3.4::",
      ":1",
      "1:",
      "12345::",
      "::1.2.3",
    ];
    yield* known;
    for (let i = 0; i < count; i++) {
      const len = 1 + Math.floor(next() * 20);
      let s = "";
      for (let j = 0; j < len; j++) s += alphabet[Math.floor(next() * alphabet.length)];
      yield s;
    }
    // Mutations of valid addresses hit the interesting boundaries far more often than noise.
    for (let i = 0; i < count; i++) {
      const base = known[Math.floor(next() * known.length)] ?? "::";
      const at = Math.floor(next() * (base.length + 1));
      const ch = alphabet[Math.floor(next() * alphabet.length)] ?? ":";
      yield next() < 0.5 ? base.slice(0, at) + ch + base.slice(at) : base.slice(0, at) + base.slice(at + 1);
    }
  }

  it("on 40 000 generated strings", () => {
    for (const s of candidates(20_000)) {
      expect([s, isIPv4Text(s)]).toEqual([s, isIPv4(s)]);
      expect([s, isIPv6Text(s)]).toEqual([s, isIPv6(s)]);
    }
  });
});
