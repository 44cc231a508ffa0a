import { describe, expect, it } from "vitest";
import { compareDebianVersions, parseDebianVersion, satisfies, upstreamVersion } from "./debian-version.ts";

describe("Debian version order", () => {
  const ascending = [
    "1.0~rc1-1",
    "1.0-1",
    "1.0-1+b1",
    "1.0-2",
    "1.0a-1",
    "1.0+ds1-1",
    "1.0.1-1",
    "1.7.24~ds1-6+deb13u1",
    "1.10-1",
    "2.1.9+ds1-5",
    "1:0.1-1",
  ];
  it("orders the dpkg reference cases", () => {
    for (let i = 0; i + 1 < ascending.length; i++) {
      expect(
        compareDebianVersions(ascending[i]!, ascending[i + 1]!),
        `${ascending[i]} < ${ascending[i + 1]}`,
      ).toBeLessThan(0);
      expect(compareDebianVersions(ascending[i + 1]!, ascending[i]!)).toBeGreaterThan(0);
    }
  });
  it("treats leading zeros and missing revision as dpkg does", () => {
    expect(compareDebianVersions("1.01", "1.1")).toBe(0);
    expect(compareDebianVersions("1.0", "1.0-0")).toBe(0);
    expect(compareDebianVersions("1.0~", "1.0")).toBeLessThan(0);
  });
  it("checks relations", () => {
    expect(satisfies("2.41-12", ">=", "2.38")).toBe(true);
    expect(satisfies("2.36-9", ">=", "2.38")).toBe(false);
    expect(satisfies("14.2.0-19", "=", "14.2.0-19")).toBe(true);
    expect(satisfies("1.0", "<<", "1.0")).toBe(false);
    expect(satisfies("1.0", "<=", "1.0")).toBe(true);
    expect(satisfies("1.1", ">>", "1.0")).toBe(true);
  });
  it("extracts the upstream part and rejects nonsense", () => {
    expect(upstreamVersion("1:2.75-10+deb13u1+b3")).toBe("2.75");
    expect(upstreamVersion("6.12.117-1")).toBe("6.12.117");
    expect(parseDebianVersion("3:1.2-3-4")).toEqual({ epoch: 3, upstream: "1.2-3", revision: "4" });
    expect(() => parseDebianVersion("x:1")).toThrow(/invalid epoch/);
    expect(() => parseDebianVersion("abc")).toThrow(/must start with a digit/);
  });
});
